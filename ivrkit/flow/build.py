"""Building the Flow model from composed YAML documents (the main file and its includes).

The builder checks everything that can be checked by looking at one node at a time (types,
unknown keys, DTMF keys, durations, regexes, two actions in one state…) and records what the
cross-state checks in `validate.py` need: every state reference with its position, every
variable use, every hook. It never stops at the first problem.
"""

from __future__ import annotations

import os
from types import MappingProxyType

import yaml

from ivrkit.flow.build_context import BuildContext, Document, StateRef
from ivrkit.flow.model import DTMF_MODES, DtmfMode, Flow, HookRef, Settings, State
from ivrkit.flow.prompt_build import PromptTableEntry
from ivrkit.flow.source import Reporter, did_you_mean, loc_join, mapping_items
from ivrkit.flow.spec import key_names
from ivrkit.flow.state_build import StateBuilder
from ivrkit.flow.values import Reader, kind_of


def top_level_items(doc: Document, report: Reporter) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The document's top-level keys (reporting duplicates), or {} after reporting a bad root."""
    reader = Reader(report, doc.source)
    if doc.root is None or (isinstance(doc.root, yaml.ScalarNode) and doc.root.tag.endswith(":null")):
        report.add(doc.source.pos(None), "", "empty-file", "the flow file is empty",
                   "a flow needs at least `start:` and `states:`" if doc.is_main else "an included file needs `states:` or `prompts:`")
        return {}
    if not isinstance(doc.root, yaml.MappingNode):
        reader.bad(doc.root, "", f"a flow file must be a mapping of keys (start:, states: …), not {kind_of(doc.root)}")
        return {}
    section = "top" if doc.is_main else "include"
    allowed = key_names(section)
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, key_node, value in mapping_items(doc.root, doc.source, "", report):
        if key not in allowed:
            if not doc.is_main and key in key_names("top"):
                report.add(doc.source.pos(key_node), key, "not-in-include", f"'{key}' can only be set in the main flow file",
                           "an included file holds states, prompts, include and python_path")
            else:
                report.add(doc.source.pos(key_node), key, "unknown-key", f"unknown top-level key '{key}'",
                           did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}")
            continue
        out[key] = (key_node, value)
    return out


class Builder:
    """Builds a Flow from the main document and its includes, reporting into `report`."""

    def __init__(self, docs: list[Document], report: Reporter) -> None:
        self.docs = docs
        self.report = report
        self.ctx = BuildContext(report)
        self.info = self.ctx.info
        self.items = {id(doc): top_level_items(doc, report) for doc in docs}
        self.prompt_builder = self.ctx.prompts

    def build(self) -> Flow:
        main = self.docs[0]
        items = self.items[id(main)]
        reader = Reader(self.report, main.source)
        name = os.path.splitext(os.path.basename(main.source.file))[0]
        if "flow" in items:
            name = reader.text(items["flow"][1], "flow", "flow") or name
        defaults = Settings()
        if "defaults" in items:
            defaults = self.ctx.settings(Settings(), items["defaults"][1], reader, "defaults", "defaults")
        for doc in self.docs:
            self._python_path(doc)
            self._collect_prompts(doc)
        for entry_name in self.prompt_builder.table:
            self.prompt_builder.named(entry_name)
        call_start, call_end = self._hooks(items, reader)
        tts = self.ctx.hook(items["tts"][1], reader, "tts", "tts") if "tts" in items else None
        stt = self.ctx.hook(items["stt"][1], reader, "stt", "stt") if "stt" in items else None
        dtmf = self._dtmf_mode(items["dtmf"][1], reader) if "dtmf" in items else None
        states_builder = StateBuilder(self.ctx, defaults)
        states: dict[str, State] = {}
        for doc in self.docs:
            states_builder.states(doc, self.items[id(doc)], states)
        start = ""
        if "start" in items:
            start = reader.text(items["start"][1], "start", "start") or ""
            self.info.start_pos = reader.pos(items["start"][1])
        elif items or main.root is not None:
            self.report.add(main.source.pos(main.root), "", "missing-start", "the flow has no `start:` state",
                            "add `start: <state name>` at the top level")
        if items and not any("states" in self.items[id(doc)] for doc in self.docs):
            self.report.add(main.source.pos(main.root), "", "missing-states", "the flow has no `states:`")
        error_state = None
        if "error" in items and not reader.is_null(items["error"][1]):
            error_state = reader.text(items["error"][1], "error", "error")
            if error_state is not None:
                self.info.state_refs.append(StateRef(error_state, reader.pos(items["error"][1]), "error"))
        prompts = {k: v for k, v in self.prompt_builder.resolved.items() if v is not None}
        return Flow(
            name=name, start=start, states=MappingProxyType(states), file=main.source.path, defaults=defaults,
            error_state=error_state, prompts=MappingProxyType(prompts), call_start=call_start, call_end=call_end,
            files=tuple(doc.source.path for doc in self.docs), python_path=tuple(self.info.python_path), tts=tts, stt=stt,
            dtmf=dtmf,
        )

    def _dtmf_mode(self, node: yaml.Node, reader: Reader) -> DtmfMode | None:
        value = reader.text(node, "dtmf", "dtmf")
        if value is None:
            return None
        for mode in DTMF_MODES:
            if value.strip().lower() == mode:
                return mode
        reader.bad(node, "dtmf", f"dtmf '{value}' is not one of {', '.join(DTMF_MODES)}",
                   did_you_mean(value.lower(), DTMF_MODES) or "inband hears tones in the caller's audio; "
                   "rfc4733 takes telephone-events; both takes either, each press once", "bad-value")
        return None

    def _python_path(self, doc: Document) -> None:
        items = self.items[id(doc)]
        if "python_path" not in items:
            return
        reader = Reader(self.report, doc.source)
        base = os.path.dirname(doc.source.path)
        for value, node in reader.string_list(items["python_path"][1], "python_path", "python_path entry"):
            path = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
            if not os.path.isdir(path):
                self.report.add(reader.pos(node), "python_path", "missing-path", f"python_path folder '{value}' does not exist (looked for {path})",
                                "paths are relative to the flow file", "warning")
            self.info.python_path.append(path)

    def _collect_prompts(self, doc: Document) -> None:
        items = self.items[id(doc)]
        if "prompts" not in items:
            return
        reader = Reader(self.report, doc.source)
        node = items["prompts"][1]
        if reader.is_null(node):
            return
        if not isinstance(node, yaml.MappingNode):
            reader.bad(node, "prompts", f"prompts must be a mapping of name: prompt, not {kind_of(node)}")
            return
        table = self.prompt_builder.table
        for key, key_node, value in mapping_items(node, doc.source, "prompts", self.report):
            loc = loc_join("prompts", key)
            pos = reader.pos(key_node)
            if key in table:
                first = table[key].pos
                self.report.add(pos, loc, "duplicate-prompt", f"prompt '{key}' is defined twice: here and at {first}",
                                "rename one of them")
                continue
            table[key] = PromptTableEntry(value, reader, loc, pos)

    def _hooks(self, items: dict[str, tuple[yaml.Node, yaml.Node]], reader: Reader) -> tuple[tuple[HookRef, ...], tuple[HookRef, ...]]:
        out: dict[str, list[HookRef]] = {"call_start": [], "call_end": []}
        if "hooks" not in items or reader.is_null(items["hooks"][1]):
            return (), ()
        node = items["hooks"][1]
        if not isinstance(node, yaml.MappingNode):
            reader.bad(node, "hooks", f"hooks must be a mapping (call_start:, call_end:), not {kind_of(node)}")
            return (), ()
        allowed = key_names("hooks")
        for key, key_node, value in mapping_items(node, reader.source, "hooks", self.report):
            loc = loc_join("hooks", key)
            if key not in allowed:
                self.report.add(reader.pos(key_node), loc, "unknown-key", f"unknown hook point '{key}'",
                                did_you_mean(key, allowed) or f"hook points are: {', '.join(allowed)}")
                continue
            for text, item in reader.string_list(value, loc, "hook"):
                ref = self.ctx.hook(item, reader, loc, "hook")
                if ref is not None:
                    out[key].append(ref)
        return tuple(out["call_start"]), tuple(out["call_end"])
