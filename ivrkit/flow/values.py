"""Typed readers for YAML nodes: each returns a Python value or reports an Issue and returns None.

Why readers over `safe_load` + isinstance: the reader sees the node, so it can quote what was
written (`012`, `yes`) and point at its column; and returning None after reporting lets the
builder carry on and find every other problem in the same run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor

from ivrkit.flow.durations import parse_duration
from ivrkit.flow.model import HookRef
from ivrkit.flow.source import BOOL_TAG, FLOAT_TAG, INT_TAG, NULL_TAG, STR_TAG, Pos, Reporter, Source
from ivrkit.flow.spec import DTMF_KEYS

_CONSTRUCTOR = SafeConstructor()
_HOOK_REF = re.compile(r"^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)\s*$")
_KIND_NAMES = {
    "tag:yaml.org,2002:map": "a mapping", "tag:yaml.org,2002:seq": "a list", NULL_TAG: "empty (null)",
    BOOL_TAG: "a boolean", INT_TAG: "a number", FLOAT_TAG: "a number", STR_TAG: "a string",
}


def kind_of(node: yaml.Node) -> str:
    return _KIND_NAMES.get(node.tag, node.tag)


def yaml_base(node: yaml.Node) -> str | None:
    """The base YAML 1.1 read a number in when it is not plain decimal, else None.

    PyYAML follows YAML 1.1: `012` is octal (10), `0x1f` hexadecimal, `0b101` binary and `1:30`
    base 60 (90). Nobody writing `max_digits: 012` or `timeout: 010` means 10 or 8, so the
    readers refuse these spellings instead of taking a silently different number; `12`, `-3`,
    `1_000` and `1.5` are plain decimal."""
    if not (isinstance(node, yaml.ScalarNode) and node.tag in (INT_TAG, FLOAT_TAG)):
        return None
    text = str(node.value).lstrip("+-").replace("_", "").lower()
    if ":" in text:
        return "base 60"
    if node.tag == FLOAT_TAG:
        return None
    if text.startswith("0x"):
        return "hexadecimal"
    if text.startswith("0b"):
        return "binary"
    if len(text) > 1 and text.startswith("0"):
        return "octal"
    return None


def quote_hint(node: yaml.Node) -> str:
    return f'quote it: "{node.value}"' if isinstance(node, yaml.ScalarNode) else "write a plain value"


@dataclass(slots=True)
class Reader:
    """The reporter plus the file being read; every reader method reports against `source`."""

    report: Reporter
    source: Source

    def pos(self, node: yaml.Node | None, col_offset: int = 0) -> Pos:
        return self.source.pos(node, col_offset)

    def bad(self, node: yaml.Node, loc: str, message: str, hint: str | None = None, code: str = "bad-type") -> None:
        self.report.add(self.pos(node), loc, code, message, hint)

    def is_null(self, node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG

    def text(self, node: yaml.Node, loc: str, what: str) -> str | None:
        """Any non-empty scalar, as written (so `to: +15550100` stays the string it looks like)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == NULL_TAG:
            self.bad(node, loc, f"{what} must be a string, not {kind_of(node)}")
            return None
        return str(node.value)

    def str_only(self, node: yaml.Node, loc: str, what: str) -> str | None:
        """A scalar that YAML read as a string (prompt text: `yes` must not become True)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (STR_TAG, INT_TAG, FLOAT_TAG):
            hint = quote_hint(node) if isinstance(node, yaml.ScalarNode) and node.tag == BOOL_TAG else None
            self.bad(node, loc, f"{what} must be a string, not {kind_of(node)}", hint)
            return None
        return str(node.value)

    def boolean(self, node: yaml.Node, loc: str, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == BOOL_TAG:
            return bool(_CONSTRUCTOR.construct_yaml_bool(node))
        self.bad(node, loc, f"{what} must be true or false, not {kind_of(node)}")
        return None

    def integer(self, node: yaml.Node, loc: str, what: str, minimum: int = 0) -> int | None:
        if not (isinstance(node, yaml.ScalarNode) and node.tag == INT_TAG):
            self.bad(node, loc, f"{what} must be a whole number, not {kind_of(node)}")
            return None
        try:
            value = int(_CONSTRUCTOR.construct_yaml_int(node))
        except ValueError:  # e.g. more digits than int() accepts
            self.bad(node, loc, f"{what} is not a usable number", code="bad-value")
            return None
        if self._not_decimal(node, loc, what, value, ""):
            return None
        if value < minimum:
            self.bad(node, loc, f"{what} must be at least {minimum}, not {value}", code="bad-value")
            return None
        return value

    def _not_decimal(self, node: yaml.Node, loc: str, what: str, value: object, unit: str) -> bool:
        """Report a number YAML read in another base than 10 (see `yaml_base`) as a value other
        than its digits say; True if so. (`04` is octal 4, the same number: accepted.)"""
        base = yaml_base(node)
        if base is None:
            return False
        written = str(node.value)
        if base == "octal":
            meant = int(written.replace("_", ""), 10)
            if meant == value:
                return False
            hint = f"write {what}: {meant} — YAML 1.1 reads a number with a leading 0 as octal"
        else:
            hint = f"write the number in decimal: {what}: {value}"
        self.report.add(self.pos(node), loc, "non-decimal-number",
                        f"{what} {written} is read by YAML as {'an' if base == 'octal' else 'a'} {base} number: "
                        f"{value}{unit}", hint)
        return True

    def duration(self, node: yaml.Node, loc: str, what: str) -> float | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in (INT_TAG, FLOAT_TAG, STR_TAG):
            raw: object = node.value
            try:
                if node.tag == INT_TAG:
                    raw = _CONSTRUCTOR.construct_yaml_int(node)
                elif node.tag == FLOAT_TAG:
                    raw = _CONSTRUCTOR.construct_yaml_float(node)
                if self._not_decimal(node, loc, what, raw, " s"):
                    return None
                return parse_duration(raw)
            except ValueError as exc:
                self.report.add(self.pos(node), loc, "bad-duration", f"{what}: {exc}")
                return None
        self.report.add(self.pos(node), loc, "bad-duration", f"{what} must be a duration like \"5s\", not {kind_of(node)}")
        return None

    def dtmf_key(self, node: yaml.Node, loc: str, what: str) -> str | None:
        """One DTMF key, normalised to upper case; None for an explicit `null` (= no key).

        An *empty* value is an error, not "no key": `terminator: #` reads as empty because an
        unquoted # starts a YAML comment, and taking that as "no terminator" would put the
        caller's # into the collected digits."""
        if self.is_null(node):
            if node.value == "":
                self.report.add(
                    self.pos(node), loc, "key-not-string", f"{what} is empty",
                    f'an unquoted # starts a YAML comment: write {what}: "#" for the pound key, or {what}: null for none',
                )
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.bad(node, loc, f"{what} must be one DTMF key, not {kind_of(node)}")
            return None
        return self.check_key(node, str(node.value), loc, what)

    def check_key(self, node: yaml.Node, key: str, loc: str, what: str) -> str | None:
        if node.tag not in (STR_TAG, INT_TAG) or (node.tag == INT_TAG and len(key) != 1):
            octal = yaml_base(node) == "octal"
            self.report.add(
                self.pos(node), loc, "key-not-string",
                f"{what} {key} was read by YAML as {kind_of(node)}"
                + (" (a leading 0 makes it octal)" if octal else "") + ", not a key",
                f'a key is one quoted character, like "{key[0]}"; "{key}" would be {len(key)} keys — '
                "to take several digits, use a collect state" if node.tag == INT_TAG
                else f'DTMF keys must be quoted strings: "{key}"',
            )
            return None
        if len(key) != 1:
            hint = "quote single keys; to react to several keys, use a collect state and a goto on its variable"
            self.report.add(self.pos(node), loc, "multi-key", f"{what} '{key}' is {len(key)} keys; only single keys are supported", hint)
            return None
        upper = key.upper()
        if upper not in DTMF_KEYS:
            self.report.add(self.pos(node), loc, "bad-dtmf-key", f"{what} '{key}' is not a DTMF key", "use one of 0-9 * # A B C D")
            return None
        return upper

    def identifier(self, node: yaml.Node, loc: str, what: str) -> str | None:
        value = self.text(node, loc, what)
        if value is not None and not value.isidentifier():
            self.bad(node, loc, f"{what} '{value}' is not a valid variable name", "use letters, digits and _ (not starting with a digit)", "bad-value")
            return None
        return value

    def string_list(self, node: yaml.Node, loc: str, what: str) -> list[tuple[str, yaml.Node]]:
        """A list of strings; a single string is accepted as a list of one."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out: list[tuple[str, yaml.Node]] = []
        for i, item in enumerate(items):
            value = self.text(item, f"{loc}[{i}]" if isinstance(node, yaml.SequenceNode) else loc, what)
            if value is not None:
                out.append((value, item))
        return out

    def hook(self, node: yaml.Node, loc: str, what: str, sets: tuple[str, ...] = (), timeout: float | None = None) -> HookRef | None:
        value = self.text(node, loc, what)
        if value is None:
            return None
        match = _HOOK_REF.match(value)
        if match is None:
            self.report.add(self.pos(node), loc, "bad-hook-ref", f"{what} '{value}' is not a module:function reference",
                            "write it like acme.hooks:check_pin")
            return None
        return HookRef(match.group(1), match.group(2), str(self.pos(node)), sets, timeout)
