"""Turning prompt nodes into `Prompt`s: strings, "@name" references, part mappings and lists.

A prompt is written as
  - a string: text to speak (`"@name"` refers to a reusable prompt; `"@@..."` is a literal @);
  - a mapping with one of `text`, `audio`, `digits`, `silence` (`text` here is always literal);
  - a list of those, played in order.
`no_input` / `no_match` take one prompt or a list of prompts (escalating): there each list item
is a whole prompt, and a nested list makes one prompt of several parts.

References are resolved while building (memoised, cycles reported), so the model holds only
plain parts and the runtime never looks names up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from ivrkit.flow.source import Pos, did_you_mean, loc_join, mapping_items
from ivrkit.flow.spec import key_names
from ivrkit.flow.values import Reader, kind_of
from ivrkit.prompts import Prompt, PromptPart, template_names

PART_KEYS = key_names("prompt_part")


@dataclass(slots=True)
class VarUse:
    """A `{name}` (or condition name) somewhere in the file: checked against what can set it."""

    name: str
    pos: Pos
    loc: str


@dataclass(slots=True)
class PromptTableEntry:
    node: yaml.Node
    reader: Reader
    loc: str
    pos: Pos


@dataclass(slots=True)
class PromptBuilder:
    table: dict[str, PromptTableEntry]
    var_uses: list[VarUse]
    resolved: dict[str, Prompt | None] = field(default_factory=dict)
    resolving: list[str] = field(default_factory=list)

    def templates(self, text: str, node: yaml.Node, reader: Reader, loc: str) -> bool:
        """Record `{names}` in `text` as uses; report malformed templates. False when malformed."""
        try:
            names = template_names(text)
        except ValueError as exc:
            reader.report.add(reader.pos(node), loc, "bad-template", str(exc))
            return False
        pos = reader.pos(node)
        for name in names:
            self.var_uses.append(VarUse(name, pos, loc))
        return True

    def named(self, name: str) -> Prompt | None:
        """The reusable prompt `name`, built once; None if it is broken (already reported)."""
        if name in self.resolved:
            return self.resolved[name]
        entry = self.table[name]
        self.resolving.append(name)
        prompt = self.prompt(entry.node, entry.reader, entry.loc)
        self.resolving.pop()
        self.resolved[name] = prompt
        return prompt

    def prompt(self, node: yaml.Node, reader: Reader, loc: str) -> Prompt | None:
        parts: list[PromptPart] = []
        ok = True
        if isinstance(node, yaml.SequenceNode):
            if not node.value:
                reader.bad(node, loc, "a prompt list is empty", code="empty-prompt")
                return None
            for i, item in enumerate(node.value):
                if isinstance(item, yaml.SequenceNode):
                    reader.bad(item, f"{loc}[{i}]", "a prompt part cannot be a list", "flatten the list")
                    ok = False
                    continue
                ok = self._part(item, reader, f"{loc}[{i}]", parts) and ok
        else:
            ok = self._part(node, reader, loc, parts)
        return Prompt(tuple(parts), str(reader.pos(node))) if ok else None

    def prompt_list(self, node: yaml.Node, reader: Reader, loc: str) -> tuple[Prompt, ...] | None:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out: list[Prompt] = []
        ok = True
        for i, item in enumerate(items):
            prompt = self.prompt(item, reader, f"{loc}[{i}]" if isinstance(node, yaml.SequenceNode) else loc)
            ok = ok and prompt is not None
            if prompt is not None:
                out.append(prompt)
        return tuple(out) if ok else None

    def _part(self, node: yaml.Node, reader: Reader, loc: str, parts: list[PromptPart]) -> bool:
        if isinstance(node, yaml.ScalarNode):
            text = reader.str_only(node, loc, "a prompt")
            if text is None:
                return False
            if text.startswith("@") and not text.startswith("@@"):
                return self._ref(text[1:].strip(), node, reader, loc, parts)
            if text.startswith("@@"):
                text = text[1:]
            if not text.strip():
                reader.bad(node, loc, "a prompt is empty", "remove it, or use {silence: 1s} for a pause", "empty-prompt")
                return False
            parts.append(PromptPart("text", text))
            return self.templates(text, node, reader, loc)
        if not isinstance(node, yaml.MappingNode):
            reader.bad(node, loc, f"a prompt must be a string, a mapping or a list, not {kind_of(node)}")
            return False
        found: list[tuple[str, yaml.Node, yaml.Node]] = []
        for key, key_node, value in mapping_items(node, reader.source, loc, reader.report):
            if key not in PART_KEYS:
                reader.report.add(reader.pos(key_node), loc_join(loc, key), "unknown-key",
                                  f"unknown prompt part '{key}'", did_you_mean(key, PART_KEYS) or f"use one of {', '.join(PART_KEYS)}")
                return False
            found.append((key, key_node, value))
        if len(found) != 1:
            reader.bad(node, loc, f"a prompt part needs exactly one of {', '.join(PART_KEYS)}",
                       "write a list to play several parts: [{text: ...}, {audio: ...}]", "bad-prompt")
            return False
        kind, _key_node, value = found[0]
        sub = loc_join(loc, kind)
        if kind == "silence":
            seconds = reader.duration(value, sub, "silence")
            if seconds is None:
                return False
            parts.append(PromptPart("silence", repr(seconds)))
            return True
        text = reader.str_only(value, sub, kind)
        if text is None:
            return False
        if kind == "audio":
            path = os.path.normpath(os.path.join(os.path.dirname(reader.source.path), os.path.expanduser(text)))
            if not os.path.isfile(path):
                reader.report.add(reader.pos(value), sub, "missing-audio", f"audio file '{text}' does not exist (looked for {path})",
                                  "audio paths are relative to the flow file that names them")
                return False
            parts.append(PromptPart("audio", path))
            return True
        parts.append(PromptPart(kind, text))  # type: ignore[arg-type]
        return self.templates(text, value, reader, sub)

    def _ref(self, name: str, node: yaml.Node, reader: Reader, loc: str, parts: list[PromptPart]) -> bool:
        if name not in self.table:
            reader.report.add(reader.pos(node), loc, "unknown-prompt", f"prompt '@{name}' is not defined in prompts:",
                              did_you_mean(name, self.table) or "add it under prompts:, or write @@ for a literal @")
            return False
        if name in self.resolving:
            cycle = " -> ".join("@" + n for n in [*self.resolving[self.resolving.index(name):], name])
            reader.report.add(reader.pos(node), loc, "prompt-cycle", f"prompts refer to each other in a cycle: {cycle}")
            return False
        prompt = self.named(name)
        if prompt is None:
            return False
        parts.extend(prompt.parts)
        return True
