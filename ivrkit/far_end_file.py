"""Reading a far end file (`ivrkit console --far-end far.yaml`) into a `ScriptedIvr`.

Why the flow loader's parts: a far end file is a small YAML file a person writes next to a
flow, and its mistakes deserve the same file:line:col messages, carets and "did you mean" as a
flow's (`ivrkit.flow.source`, `ivrkit.flow.values`). Its form is in `ivrkit.far_end`.
"""

from __future__ import annotations

import os

import yaml

from ivrkit.errors import FlowLoadError, FlowValidationError, Issue
from ivrkit.far_end import ScriptedIvr
from ivrkit.flow.source import Reporter, Source, compose, did_you_mean, loc_join, mapping_items
from ivrkit.flow.values import Reader, kind_of

__all__ = ["load_far_end", "load_far_end_text"]

_TOP = ("start", "menus", "invalid", "reply_after", "voice")
_MENU = ("say", "keys")
_KEYS = frozenset("0123456789*#ABCDabcd")


def load_far_end(path: str | os.PathLike[str]) -> ScriptedIvr:
    """A `ScriptedIvr` from a far end file. Raises `FlowValidationError` with every problem at
    its file:line:col, or `FlowLoadError` when the file cannot be read or parsed."""
    display = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowLoadError([Issue(display, 1, 1, f"cannot read far end file '{display}': "
                                   f"{getattr(exc, 'strerror', None) or exc}", "file-unreadable")]) from None
    return load_far_end_text(text, display)


def load_far_end_text(text: str, filename: str = "<string>") -> ScriptedIvr:
    source = Source(filename, os.path.abspath(filename), text)
    report = Reporter()
    reader = Reader(report, source)
    root = compose(source)
    ivr = _build(root, reader) if root is not None else None
    if root is None:
        reader.report.add(source.pos(None), "", "empty", "the far end file is empty", "see `ivrkit console --help`")
    if ivr is None or report.has_errors:
        raise FlowValidationError(report.issues)
    return ivr


def _fields(node: yaml.Node, reader: Reader, loc: str, allowed: tuple[str, ...],
            what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
    if not isinstance(node, yaml.MappingNode):
        reader.bad(node, loc, f"{what} must be a mapping, not {kind_of(node)}")
        return None
    out = {}
    for key, key_node, value in mapping_items(node, reader.source, loc, reader.report):
        if key not in allowed:
            reader.report.add(reader.pos(key_node), loc_join(loc, key), "unknown-key", f"unknown key '{key}' in {what}",
                              did_you_mean(key, allowed) or f"{what} keys are: {', '.join(allowed)}")
            continue
        out[key] = (key_node, value)
    return out


def _build(root: yaml.Node, reader: Reader) -> ScriptedIvr | None:
    top = _fields(root, reader, "", _TOP, "the far end file")
    if top is None:
        return None
    for need in ("start", "menus"):
        if need not in top:
            reader.bad(root, "", f"the far end file needs '{need}'", code="missing-key")
    if "menus" not in top or "start" not in top:
        return None
    menus: dict[str, tuple[str, dict[str, str]]] = {}
    targets: list[tuple[str, yaml.Node, str]] = []
    menus_node = top["menus"][1]
    if not isinstance(menus_node, yaml.MappingNode) or not menus_node.value:
        reader.bad(menus_node, "menus", "menus must be a mapping of menu names to {say, keys}")
        return None
    for name, _, node in mapping_items(menus_node, reader.source, "menus", reader.report):
        loc = loc_join("menus", name)
        f = _fields(node, reader, loc, _MENU, "a far end menu")
        if f is None:
            continue
        if "say" not in f:
            reader.bad(node, loc, f"menu '{name}' needs 'say' (its prompt)", code="missing-key")
            continue
        say = reader.text(f["say"][1], loc_join(loc, "say"), "say")
        entries: dict[str, str] = {}
        if "keys" in f:
            entries = _entries(f["keys"][1], reader, loc_join(loc, "keys"), targets)
        if say is not None:
            menus[name] = (say, entries)
    start = reader.text(top["start"][1], "start", "start")
    for where, node, target in targets + ([("start", top["start"][1], start)] if start is not None else []):
        if target not in menus and not any(i.loc.startswith(loc_join("menus", target)) for i in reader.report.issues):
            reader.report.add(reader.pos(node), where, "unknown-menu", f"no menu '{target}'",
                              did_you_mean(target, menus) or f"menus: {', '.join(menus)}")
    invalid = reader.text(top["invalid"][1], "invalid", "invalid") if "invalid" in top else None
    reply = reader.duration(top["reply_after"][1], "reply_after", "reply_after") if "reply_after" in top else 0.3
    voice = reader.text(top["voice"][1], "voice", "voice") if "voice" in top else "en-us"
    if reader.report.has_errors or start is None or reply is None or voice is None:
        return None
    return ScriptedIvr(menus, start, invalid=invalid, reply_after=reply, voice=voice)


def _entries(node: yaml.Node, reader: Reader, loc: str, targets: list[tuple[str, yaml.Node, str]]) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        reader.bad(node, loc, f"keys must be a mapping of keys entered to the next menu, not {kind_of(node)}",
                   'e.g. {"2": billing, "4321#": told}')
        return {}
    out: dict[str, str] = {}
    for keys, key_node, value in mapping_items(node, reader.source, loc, reader.report):
        bad = [c for c in keys if c not in _KEYS]
        if not keys or bad:
            reader.report.add(reader.pos(key_node), loc_join(loc, keys), "bad-key",
                              f"'{keys}' is not keys: use 0-9 * # A-D", 'quote keys: "1", "#", "4321#"')
            continue
        target = reader.text(value, loc_join(loc, keys), "the next menu")
        if target is not None:
            out[keys.upper()] = target
            targets.append((loc_join(loc, keys), value, target))
    return out
