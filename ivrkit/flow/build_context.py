"""What building one state needs from the file-level build: a small context, not the builder.

`build.Builder` owns the file level (top keys, includes, the prompts table, flow hooks) and
`state_build.StateBuilder` the state level. Both record into the same `BuildInfo` and report
into the same `Reporter`; this module holds that shared part, so the state builder needs no
reference back to its parent (and the two modules no import cycle).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml

from ivrkit.flow.model import HookRef, Settings
from ivrkit.flow.prompt_build import PromptBuilder, VarUse
from ivrkit.flow.source import NULL_TAG, Pos, Reporter, Source, did_you_mean, loc_join, mapping_items
from ivrkit.flow.spec import BUILTIN_VARIABLES, key_names
from ivrkit.flow.speech_build import input_modes
from ivrkit.flow.values import Reader, kind_of


@dataclass(slots=True)
class Document:
    """One composed file. `root` is None for an empty file."""

    source: Source
    root: yaml.Node | None
    is_main: bool


@dataclass(slots=True)
class StateRef:
    target: str
    pos: Pos
    loc: str


@dataclass(slots=True)
class HookUse:
    ref: HookRef
    pos: Pos
    loc: str


@dataclass(slots=True)
class BuildInfo:
    """What the cross-state checks need, with positions. Discarded once the flow is checked."""

    state_defs: dict[str, tuple[Pos, str]] = field(default_factory=dict)
    state_refs: list[StateRef] = field(default_factory=list)
    var_uses: list[VarUse] = field(default_factory=list)
    settable: set[str] = field(default_factory=lambda: set(BUILTIN_VARIABLES))
    hooks: list[HookUse] = field(default_factory=list)
    python_path: list[str] = field(default_factory=list)
    start_pos: Pos | None = None


@dataclass(slots=True)
class BuildContext:
    """The reporter, the cross-state record and the prompt builder, plus the three readers
    (settings, state references, hook references) that record into them from any level."""

    report: Reporter
    info: BuildInfo = field(default_factory=lambda: BuildInfo())
    prompts: PromptBuilder = field(init=False)

    def __post_init__(self) -> None:
        self.prompts = PromptBuilder({}, self.info.var_uses)

    def settings(self, base: Settings, node: yaml.Node, reader: Reader, loc: str, what: str,
                 items: list[tuple[str, yaml.Node, yaml.Node]] | None = None) -> Settings:
        """`base` with the Settings keys of `node` (or of the given `items`) applied."""
        if items is None:
            if reader.is_null(node):
                return base
            if not isinstance(node, yaml.MappingNode):
                reader.bad(node, loc, f"{what} must be a mapping of settings, not {kind_of(node)}")
                return base
            items = []
            allowed = key_names("defaults")
            for key, key_node, value in mapping_items(node, reader.source, loc, self.report):
                if key not in allowed:
                    self.report.add(reader.pos(key_node), loc_join(loc, key), "unknown-key", f"unknown setting '{key}'",
                                    did_you_mean(key, allowed) or f"settings are: {', '.join(allowed)}")
                    continue
                items.append((key, key_node, value))
        changes: dict[str, Any] = {}
        for key, _key_node, value in items:
            sub = loc_join(loc, key)
            parsed: Any
            if key in ("timeout", "inter_digit_timeout", "hook_timeout", "dtmf_pace"):
                parsed = reader.duration(value, sub, key)
            elif key in ("retries", "max_attempts"):
                parsed = reader.integer(value, sub, key, minimum=1)
            elif key == "input":
                parsed = input_modes(value, reader, sub)
            elif key == "terminator":
                # null or "" = no terminator; an empty value is reported by dtmf_key (a # comment?)
                quoted_empty = isinstance(value, yaml.ScalarNode) and value.tag != NULL_TAG and value.value == ""
                changes[key] = None if quoted_empty else reader.dtmf_key(value, sub, "terminator")
                continue
            elif key == "barge_in":
                parsed = reader.boolean(value, sub, key)
            else:  # voice, language
                parsed = None if reader.is_null(value) else reader.text(value, sub, key)
                if parsed is None and not reader.is_null(value):
                    continue
                changes[key] = parsed
                continue
            if parsed is not None:
                changes[key] = parsed
        return dataclasses.replace(base, **changes) if changes else base

    def state_ref(self, node: yaml.Node, reader: Reader, loc: str, what: str) -> str | None:
        target = reader.text(node, loc, what)
        if target is not None:
            self.info.state_refs.append(StateRef(target, reader.pos(node), loc))
        return target

    def hook(self, node: yaml.Node, reader: Reader, loc: str, what: str, sets: tuple[str, ...] = (), timeout: float | None = None) -> HookRef | None:
        ref = reader.hook(node, loc, what, sets, timeout)
        if ref is not None:
            self.info.hooks.append(HookUse(ref, reader.pos(node), loc))
            self.info.settable.update(sets)
        return ref
