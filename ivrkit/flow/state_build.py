"""Building one `State` (and its menu/collect/goto/transfer/send_dtmf/dial) from its node.

Split from `build.py` so each module stays about one concept: `build.py` handles the file
level (top keys, includes, prompts table, hooks), this one the state level. It sees only the
shared `BuildContext` (reporter, cross-state record, prompt builder), never the file builder.
"""

from __future__ import annotations

import re
import string
from types import MappingProxyType
from typing import Literal

import yaml

from ivrkit.errors import ConditionSyntaxError
from ivrkit.flow.build_context import BuildContext, Document
from ivrkit.flow.conditions import Condition
from ivrkit.flow.model import (
    Amd,
    Branch,
    Collect,
    Dial,
    HookRef,
    Menu,
    Navigate,
    NavStep,
    SendDtmf,
    Settings,
    State,
    Transfer,
)
from ivrkit.flow.prompt_build import VarUse
from ivrkit.flow.source import Pos, Reporter, did_you_mean, loc_join, mapping_items
from ivrkit.flow.spec import ACTIONS, DTMF_KEYS, SECTIONS, SETTING_NAMES, key_names
from ivrkit.flow.speech_build import OptionWords, expect_phrases
from ivrkit.flow.values import Reader, kind_of
from ivrkit.prompts import Prompt
from ivrkit.voice.amd import AmdSettings

_COMMENT_KEY = re.compile(r"^\s*#\s*:")
_FORMATTER = string.Formatter()
_SEND_DTMF_CHARS = set(DTMF_KEYS) | {"w", "W"}
Items = dict[str, tuple[yaml.Node, yaml.Node]]


class StateBuilder:
    def __init__(self, ctx: BuildContext, defaults: Settings) -> None:
        self.ctx = ctx
        self.report: Reporter = ctx.report
        self.defaults = defaults
        self.prompts = ctx.prompts

    # -- the states mapping -------------------------------------------------------------
    def states(self, doc: Document, items: Items, out: dict[str, State]) -> None:
        if "states" not in items:
            return
        reader = Reader(self.report, doc.source)
        node = items["states"][1]
        if not isinstance(node, yaml.MappingNode) or not node.value:
            reader.bad(node, "states", f"states must be a mapping of state name: state, not {kind_of(node)}",
                       "write states: {main: {menu: ...}}")
            return
        defs = self.ctx.info.state_defs
        for name, key_node, value in mapping_items(node, doc.source, "states", self.report):
            loc = loc_join("states", name)
            pos = reader.pos(key_node)
            if name in defs:
                self.report.add(pos, loc, "duplicate-state", f"state '{name}' is defined twice: here and at {defs[name][0]}",
                                "rename one of them (states of included files share one namespace)")
                continue
            defs[name] = (pos, loc)
            if name.startswith("_ivrkit"):
                self.report.add(pos, loc, "reserved-state", f"state name '{name}' is reserved by ivrkit",
                                "names starting with _ivrkit are ivrkit's own states; rename it")
            state = self.state(name, value, reader, loc, str(pos))
            if state is not None:
                out[name] = state

    def state(self, name: str, node: yaml.Node, reader: Reader, loc: str, where: str) -> State | None:
        if not isinstance(node, yaml.MappingNode) or not node.value:
            reader.bad(node, loc, f"state '{name}' must be a mapping with an action (say, menu, collect, …), not {kind_of(node)}",
                       'e.g. {say: "Goodbye.", hangup: true}')
            return None
        allowed = key_names("state")
        fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        setting_items: list[tuple[str, yaml.Node, yaml.Node]] = []
        errors_before = len(self.report.issues)
        unknown = False
        for key, key_node, value in mapping_items(node, reader.source, loc, self.report):
            if key not in allowed:
                unknown = True
                self.report.add(reader.pos(key_node), loc_join(loc, key), "unknown-key", f"unknown key '{key}' in state '{name}'",
                                did_you_mean(key, allowed) or f"state keys are: {', '.join(allowed)}")
                continue
            if key in SETTING_NAMES:
                setting_items.append((key, key_node, value))
            else:
                fields[key] = (key_node, value)
        settings = self.ctx.settings(self.defaults, node, reader, loc, "settings", setting_items) if setting_items else self.defaults
        actions = [k for k in fields if k in ACTIONS]
        hangup = False
        if "hangup" in fields:
            hangup = bool(reader.boolean(fields["hangup"][1], loc_join(loc, "hangup"), "hangup"))
        for extra in actions[1:]:
            self.report.add(reader.pos(fields[extra][0]), loc_join(loc, extra), "two-actions",
                            f"state '{name}' has two actions: '{actions[0]}' and '{extra}'",
                            "a state does one thing; split it into two states linked by next:")
        kwargs: dict[str, object] = {}
        if "run" in fields:
            kwargs["run"] = self.run(fields["run"][1], reader, loc_join(loc, "run"))
        if "say" in fields:
            kwargs["say"] = self.prompts.prompt(fields["say"][1], reader, loc_join(loc, "say"))
        action = actions[0] if actions else None
        if action is not None:
            a_node = fields[action][1]
            a_loc = loc_join(loc, action)
            if action == "menu":
                kwargs["menu"] = self.menu(name, a_node, reader, a_loc, settings)
            elif action == "collect":
                kwargs["collect"] = self.collect(name, a_node, reader, a_loc, settings)
            elif action == "goto":
                kwargs["goto"] = self.goto(a_node, reader, a_loc) or ()
            elif action == "transfer":
                kwargs["transfer"] = self.transfer(a_node, reader, a_loc)
            elif action == "send_dtmf":
                kwargs["send_dtmf"] = self.send_dtmf(a_node, reader, a_loc)
            elif action == "dial":
                kwargs["dial"] = self.dial(a_node, reader, a_loc)
            elif action == "navigate":
                kwargs["navigate"] = self.navigate(a_node, reader, a_loc)
        for key in ("next", "on_error"):
            if key in fields and not reader.is_null(fields[key][1]):
                kwargs[key] = self.ctx.state_ref(fields[key][1], reader, loc_join(loc, key), key)
        if not unknown:  # a misspelled key may be its action, next: or hangup:, already reported once
            self._continuation(name, action, hangup, fields, reader, loc, node)
        if any(i.severity == "error" for i in self.report.issues[errors_before:]):
            return None
        return State(name=name, where=where, settings=settings, hangup=hangup, **kwargs)  # type: ignore[arg-type]

    def _continuation(self, name: str, action: str | None, hangup: bool, fields: dict[str, tuple[yaml.Node, yaml.Node]],
                      reader: Reader, loc: str, node: yaml.Node) -> None:
        """Every state must say how it ends, and only in one way."""
        has_next = "next" in fields and not reader.is_null(fields["next"][1])
        if hangup and action in ("menu", "collect", "goto", "transfer"):
            self.report.add(reader.pos(fields["hangup"][0]), loc_join(loc, "hangup"), "two-actions",
                            f"state '{name}' has '{action}' and hangup: true", "hang up in a state of its own")
        if has_next and (hangup or action in ("menu", "goto")):
            why = "hangup: true ends the call" if hangup else f"'{action}' decides where to go"
            self.report.add(reader.pos(fields["next"][0]), loc_join(loc, "next"), "unused-next",
                            f"state '{name}' has next: but {why}", "remove next:")
        if not has_next and not hangup and action in (None, "collect", "send_dtmf", "dial", "navigate"):
            what = {None: "say/run", "collect": "collect", "send_dtmf": "send_dtmf", "dial": "dial",
                    "navigate": "navigate"}[action]
            self.report.add(reader.pos(node), loc, "missing-next", f"state '{name}' ({what}) does not say what comes next",
                            "add next: <state>, or hangup: true")

    # -- actions -------------------------------------------------------------------------
    def _section(self, node: yaml.Node, reader: Reader, loc: str, section: str, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            reader.bad(node, loc, f"{what} must be a mapping, not {kind_of(node)}")
            return None
        allowed = key_names(section)
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, key_node, value in mapping_items(node, reader.source, loc, self.report):
            if key not in allowed:
                self.report.add(reader.pos(key_node), loc_join(loc, key), "unknown-key", f"unknown key '{key}' in {what}",
                                did_you_mean(key, allowed) or f"{what} keys are: {', '.join(allowed)}")
                continue
            out[key] = (key_node, value)
        missing = [k.name for k in SECTIONS[section] if k.required and k.name not in out]
        for key in missing:
            reader.bad(node, loc, f"{what} needs '{key}'", code="missing-key")
        return None if missing else out

    def run(self, node: yaml.Node, reader: Reader, loc: str) -> HookRef | None:
        if isinstance(node, yaml.ScalarNode):
            return self.ctx.hook(node, reader, loc, "run")
        f = self._section(node, reader, loc, "run", "run")
        if f is None:
            return None
        sets = tuple(v for v, n in reader.string_list(f["sets"][1], loc_join(loc, "sets"), "sets entry")) if "sets" in f else ()
        timeout = reader.duration(f["timeout"][1], loc_join(loc, "timeout"), "timeout") if "timeout" in f else None
        return self.ctx.hook(f["hook"][1], reader, loc_join(loc, "hook"), "hook", sets, timeout)

    def _retry_prompts(self, f: dict[str, tuple[yaml.Node, yaml.Node]], reader: Reader, loc: str,
                       settings: Settings, keys: tuple[str, ...] = ("no_input", "no_match")) -> dict[str, object]:
        out: dict[str, object] = {}
        for key in keys:
            if key in f:
                prompts = self.prompts.prompt_list(f[key][1], reader, loc_join(loc, key)) or ()
                out[key] = prompts
                self._unplayable(f[key][1], key, len(prompts), settings.retries, reader, loc)
        if keys[0] == "no_input" and "on_max_retries" in f and not reader.is_null(f["on_max_retries"][1]):
            out["on_max_retries"] = self.ctx.state_ref(f["on_max_retries"][1], reader, loc_join(loc, "on_max_retries"), "on_max_retries")
        return out

    def _unplayable(self, node: yaml.Node, key: str, count: int, retries: int, reader: Reader, loc: str) -> None:
        """The n-th failure plays the n-th prompt only while n < retries: the `retries`-th one
        leaves the state at once. Prompts past that can never play — say so."""
        playable = max(retries - 1, 0)
        if count <= playable:
            return
        at = node.value[playable] if isinstance(node, yaml.SequenceNode) and len(node.value) > playable else node
        what = key.removeprefix("confirm_").replace("_", "-")
        self.report.add(reader.pos(at), loc_join(loc, key), "unplayable-prompt",
                        f"{key} has {count} prompt{'s' if count > 1 else ''} but only {playable} can play: with retries: "
                        f"{retries} the {_ordinal(retries)} {what} leaves the state (on_max_retries) without a prompt",
                        f"set retries: {count + 1} on this state or in defaults, or drop the prompts that cannot play",
                        "warning")

    def menu(self, name: str, node: yaml.Node, reader: Reader, loc: str, settings: Settings) -> Menu | None:
        f = self._section(node, reader, loc, "menu", "menu")
        if f is None:
            return None
        prompt = self.prompts.prompt(f["prompt"][1], reader, loc_join(loc, "prompt"))
        said = OptionWords(self.report, reader)
        options = self.options(f["options"][0], f["options"][1], reader, loc_join(loc, "options"), said)
        said.check(name, settings, options, f["options"][0], loc_join(loc, "options"))
        keys: dict[str, object] = {}
        for key in ("repeat_key", "back_key"):
            if key in f:
                value = reader.dtmf_key(f[key][1], loc_join(loc, key), key)
                keys[key] = value
                if value is not None and value in options:
                    self.report.add(reader.pos(f[key][1]), loc_join(loc, key), "key-clash",
                                    f"{key} '{value}' is also a menu option", "use another key for one of them")
        if keys.get("repeat_key") is not None and keys.get("repeat_key") == keys.get("back_key"):
            self.report.add(reader.pos(f["back_key"][1]), loc_join(loc, "back_key"), "key-clash", "back_key and repeat_key are the same key")
        if settings.terminator is not None and settings.terminator in options:
            self.report.add(reader.pos(f["options"][0]), loc_join(loc, "options"), "terminator-clash",
                            f"menu option '{settings.terminator}' is also the terminator key of state '{name}'",
                            "set terminator: null (or another key) on this state or in defaults, or use another option key")
        if prompt is None:
            return None
        return Menu(prompt=prompt, options=MappingProxyType(options), words=MappingProxyType(said.words),
                    **keys, **self._retry_prompts(f, reader, loc, settings))  # type: ignore[arg-type]

    def options(self, key_node: yaml.Node, node: yaml.Node, reader: Reader, loc: str, said: OptionWords) -> dict[str, str]:
        out: dict[str, str] = {}
        self._comment_keys(key_node, node, reader, loc)
        if not isinstance(node, yaml.MappingNode) or not node.value:
            hint = 'options map quoted keys to states: {"1": pin, "2": cards}'
            if reader.is_null(node):
                hint = 'an unquoted # starts a comment in YAML, which can swallow a key; ' + hint
            reader.bad(node, loc, f"menu options must be a non-empty mapping, not {kind_of(node)}", hint)
            return out
        seen: dict[str, yaml.Node] = {}
        for raw, k_node, value in mapping_items(node, reader.source, loc, self.report):
            sub = loc_join(loc, raw)
            if k_node.tag.endswith(":null") or raw == "":
                self.report.add(reader.pos(k_node), sub, "key-not-string", "a menu option has an empty key",
                                'an unquoted # starts a YAML comment; quote the key: "#": agent')
                continue
            key = reader.check_key(k_node, raw, sub, "menu key")
            to: yaml.Node | None = value
            if isinstance(value, yaml.MappingNode):  # {to: state, say: [words]}
                to = said.option(key, value, sub)
                sub = loc_join(sub, "to")
            target = self.ctx.state_ref(to, reader, sub, f"option '{raw}'") if to is not None else None
            if key is None or target is None:
                continue
            if key in seen:
                self.report.add(reader.pos(k_node), sub, "duplicate-key",
                                f"menu key '{raw}' is the same key as '{seen[key].value}' on line {seen[key].start_mark.line + 1}")
                continue
            seen[key] = k_node
            out[key] = target
        return out

    def _comment_keys(self, key_node: yaml.Node, node: yaml.Node, reader: Reader, loc: str) -> None:
        """Find `#: state` lines in/after the options block: YAML read them as comments."""
        lines = reader.source.lines
        indent = key_node.start_mark.column
        first = key_node.start_mark.line + 1 if not (isinstance(node, yaml.MappingNode) and node.flow_style) else node.end_mark.line + 1
        last = node.end_mark.line if isinstance(node, yaml.MappingNode) and node.flow_style is False else first
        i = min(first, len(lines))
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            inside = i <= last
            if not inside and stripped and not stripped.startswith("#"):
                break
            if not inside and stripped and len(line) - len(line.lstrip()) <= indent:
                break
            if _COMMENT_KEY.match(line) or (stripped.startswith("#") and re.match(r"^#\s*:\s*\S", stripped)):
                pos = reader.source.pos(node)
                col = len(line) - len(line.lstrip()) + 1
                self.report.add(Pos(pos.file, i + 1, col, line), loc, "key-not-string",
                                f"'{stripped}' is a YAML comment, so menu key # is missing", 'quote the key: "#": ' + stripped.split(":", 1)[1].strip())
            i += 1

    def collect(self, name: str, node: yaml.Node, reader: Reader, loc: str, settings: Settings) -> Collect | None:
        f = self._section(node, reader, loc, "collect", "collect")
        if f is None:
            return None
        prompt = self.prompts.prompt(f["prompt"][1], reader, loc_join(loc, "prompt"))
        into = reader.identifier(f["into"][1], loc_join(loc, "into"), "into")
        kw: dict[str, object] = {}
        if into is not None:
            self.ctx.info.settable.update((into, f"{into}_reason"))
        for key in ("min_digits", "max_digits"):
            if key in f:
                value = reader.integer(f[key][1], loc_join(loc, key), key, minimum=0 if key == "min_digits" else 1)
                if value is not None:
                    kw[key] = value
        lo, hi = kw.get("min_digits", 1), kw.get("max_digits", 20)
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            at = f["min_digits"][1] if "min_digits" in f else f["max_digits"][1]
            self.report.add(reader.pos(at), loc_join(loc, "min_digits"), "digit-range", f"min_digits ({lo}) is greater than max_digits ({hi})",
                            "make min_digits <= max_digits")
        if "sensitive" in f:
            kw["sensitive"] = bool(reader.boolean(f["sensitive"][1], loc_join(loc, "sensitive"), "sensitive"))
        if "pattern" in f:
            pattern = reader.str_only(f["pattern"][1], loc_join(loc, "pattern"), "pattern")
            if pattern is not None:
                try:
                    re.compile(pattern)
                    kw["pattern"] = pattern
                except (re.error, RecursionError, OverflowError) as exc:
                    self.report.add(reader.pos(f["pattern"][1]), loc_join(loc, "pattern"), "bad-pattern",
                                    f"pattern {pattern!r} is not a valid regular expression: {exc}",
                                    'in YAML double quotes a backslash must be doubled ("\\\\d{4}"); single quotes keep it (\'\\d{4}\')')
        if "validate" in f:
            kw["validate"] = self.ctx.hook(f["validate"][1], reader, loc_join(loc, "validate"), "validate")
        if "confirm" in f:
            kw["confirm"] = self.prompts.prompt(f["confirm"][1], reader, loc_join(loc, "confirm"))
        for key in ("clear_key", "back_key"):
            if key in f:
                kw[key] = reader.dtmf_key(f[key][1], loc_join(loc, key), key)
                if kw[key] is not None and kw[key] == settings.terminator:
                    self.report.add(reader.pos(f[key][1]), loc_join(loc, key), "terminator-clash",
                                    f"{key} '{kw[key]}' is also the terminator key of state '{name}'",
                                    "use another key, or set terminator: on this state")
                elif isinstance(kw[key], str) and str(kw[key]).isdigit():
                    self.report.add(reader.pos(f[key][1]), loc_join(loc, key), "key-clash",
                                    f"{key} '{kw[key]}' is a digit: callers cannot enter {kw[key]} in this collect",
                                    'use * or a letter key (A-D) for it', "warning")
        if kw.get("clear_key") is not None and kw.get("clear_key") == kw.get("back_key"):
            self.report.add(reader.pos(f["back_key"][1]), loc_join(loc, "back_key"), "key-clash", "back_key and clear_key are the same key")
        kw.update(self._retry_prompts(f, reader, loc, settings))
        kw.update(self._retry_prompts(f, reader, loc, settings, ("confirm_no_input", "confirm_no_match")))
        for key in ("confirm_no_input", "confirm_no_match"):
            if key in f:
                if "confirm" not in f:
                    self.report.add(reader.pos(f[key][0]), loc_join(loc, key), "unused-key",
                                    f"{key} is never played: this collect has no confirm", "add confirm:, or remove it",
                                    "warning")
        if prompt is None or into is None:
            return None
        return Collect(prompt=prompt, into=into, **kw)  # type: ignore[arg-type]

    def goto(self, node: yaml.Node, reader: Reader, loc: str) -> tuple[Branch, ...] | None:
        if isinstance(node, yaml.ScalarNode):
            target = self.ctx.state_ref(node, reader, loc, "goto")
            return (Branch(target, None, str(reader.pos(node))),) if target is not None else None
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            reader.bad(node, loc, f"goto must be a state name or a list of {{if:, then:}} ending in {{else:}}, not {kind_of(node)}")
            return None
        arms: list[Branch] = []
        has_else = False
        for i, item in enumerate(node.value):
            sub = f"{loc}[{i}]"
            if has_else:
                reader.bad(item, sub, "this goto arm comes after else: and can never be taken", "make else: the last arm", "unreachable-arm")
                continue
            f = self._section(item, reader, sub, "goto_arm", "goto arm")
            if f is None:
                continue
            if "else" in f:
                if "if" in f or "then" in f:
                    reader.bad(item, sub, "an else: arm has no if:/then:", 'write {else: state}', "bad-goto")
                    continue
                target = self.ctx.state_ref(f["else"][1], reader, loc_join(sub, "else"), "else")
                has_else = True
                if target is not None:
                    arms.append(Branch(target, None, str(reader.pos(item))))
                continue
            if "if" not in f or "then" not in f:
                reader.bad(item, sub, "a goto arm needs both if: and then: (or is {else: state})", code="bad-goto")
                continue
            condition = self.condition(f["if"][1], reader, loc_join(sub, "if"))
            target = self.ctx.state_ref(f["then"][1], reader, loc_join(sub, "then"), "then")
            if condition is not None and target is not None:
                arms.append(Branch(target, condition, str(reader.pos(item))))
        if not has_else:
            reader.bad(node, loc, "goto has no else: arm, so a call could match no condition and get stuck",
                       "end the list with {else: <state>}", "goto-no-else")
        return tuple(arms)

    def condition(self, node: yaml.Node, reader: Reader, loc: str) -> Condition | None:
        text = reader.text(node, loc, "if")
        if text is None:
            return None
        try:
            condition = Condition.parse(text)
        except ConditionSyntaxError as exc:
            quoted = 1 if isinstance(node, yaml.ScalarNode) and node.style in ('"', "'") else 0
            pos = reader.pos(node, exc.col - 1 + quoted)
            self.report.add(pos, loc, "bad-condition", f"condition {text!r}: {exc}",
                            "conditions use names, constants, == != < <= > >= in, and/or/not, + -, len()")
            return None
        pos = reader.pos(node)
        for var in sorted(condition.names):
            self.ctx.info.var_uses.append(VarUse(var, pos, loc))
        return condition

    def _templated(self, node: yaml.Node, reader: Reader, loc: str, what: str) -> str | None:
        text = reader.text(node, loc, what)
        if text is not None and not self.prompts.templates(text, node, reader, loc):
            return None
        return text

    def transfer(self, node: yaml.Node, reader: Reader, loc: str) -> Transfer | None:
        if isinstance(node, yaml.ScalarNode):
            to = self._templated(node, reader, loc, "transfer")
            return Transfer(to) if to is not None else None
        f = self._section(node, reader, loc, "transfer", "transfer")
        if f is None:
            return None
        to = self._templated(f["to"][1], reader, loc_join(loc, "to"), "to")
        announce = self.prompts.prompt(f["announce"][1], reader, loc_join(loc, "announce")) if "announce" in f else None
        dialtone = bool(reader.boolean(f["play_dialtone"][1], loc_join(loc, "play_dialtone"), "play_dialtone")) if "play_dialtone" in f else False
        return Transfer(to, announce, dialtone) if to is not None else None

    def send_dtmf(self, node: yaml.Node, reader: Reader, loc: str) -> SendDtmf | None:
        pace = None
        digits_node, digits_loc = node, loc
        if isinstance(node, yaml.MappingNode):
            f = self._section(node, reader, loc, "send_dtmf", "send_dtmf")
            if f is None:
                return None
            digits_node, digits_loc = f["digits"][1], loc_join(loc, "digits")
            pace = reader.duration(f["pace"][1], loc_join(loc, "pace"), "pace") if "pace" in f else None
        text = self._templated(digits_node, reader, digits_loc, "send_dtmf")
        if text is None:
            return None
        out: list[str] = []
        offset = 0
        for literal, field_name, _spec, _conv in _FORMATTER.parse(text):
            for j, ch in enumerate(literal):
                if ch not in _SEND_DTMF_CHARS and ch.upper() not in DTMF_KEYS:
                    quoted = 1 if isinstance(digits_node, yaml.ScalarNode) and digits_node.style in ('"', "'") else 0
                    self.report.add(reader.pos(digits_node, offset + j + quoted), digits_loc, "bad-dtmf-key",
                                    f"send_dtmf {text!r} has {ch!r}, which is not a DTMF key",
                                    "use 0-9 * # A-D, w for a 0.5 s pause, and {variable}; quote the string")
                    return None
            out.append("".join(c if c in "wW" else c.upper() for c in literal))
            offset += len(literal)
            if field_name is not None:
                out.append("{" + field_name + "}")
                offset += len(field_name) + 2
        if not text:
            reader.bad(digits_node, digits_loc, "send_dtmf has no digits", code="bad-value")
            return None
        return SendDtmf("".join(out), pace)

    def dial(self, node: yaml.Node, reader: Reader, loc: str) -> Dial | None:
        if isinstance(node, yaml.ScalarNode):
            to = self._templated(node, reader, loc, "dial")
            return Dial(to) if to is not None else None
        f = self._section(node, reader, loc, "dial", "dial")
        if f is None:
            return None
        to = self._templated(f["to"][1], reader, loc_join(loc, "to"), "to")
        trunk = reader.text(f["trunk"][1], loc_join(loc, "trunk"), "trunk") if "trunk" in f else None
        timeout = reader.duration(f["timeout"][1], loc_join(loc, "timeout"), "timeout") if "timeout" in f else None
        amd = self.amd(f["amd"][1], reader, loc_join(loc, "amd")) if "amd" in f else None
        hold, bridge = self._hold_bridge(f, reader, loc)
        if to is None or amd is False or bridge is None:
            return None
        return Dial(to, trunk, 30.0 if timeout is None else timeout, amd if isinstance(amd, Amd) else None, hold, bridge)

    def _hold_bridge(self, f: dict[str, tuple[yaml.Node, yaml.Node]], reader: Reader,
                     loc: str) -> tuple[Prompt | None, bool | None]:
        """A dial's or navigate's `hold:` prompt and `bridge:` flag (None: a bad flag, reported)."""
        hold = self.prompts.prompt(f["hold"][1], reader, loc_join(loc, "hold")) if "hold" in f else None
        if "bridge" not in f:
            return hold, False
        bridge = reader.boolean(f["bridge"][1], loc_join(loc, "bridge"), "bridge")
        return hold, bridge

    def navigate(self, node: yaml.Node, reader: Reader, loc: str) -> Navigate | None:
        f = self._section(node, reader, loc, "navigate", "navigate")
        if f is None:
            return None
        on_fail = None
        if "on_fail" in f and not reader.is_null(f["on_fail"][1]):
            on_fail = self.ctx.state_ref(f["on_fail"][1], reader, loc_join(loc, "on_fail"), "on_fail")
        steps_node = f["steps"][1]
        if not isinstance(steps_node, yaml.SequenceNode) or not steps_node.value:
            reader.bad(steps_node, loc_join(loc, "steps"), f"steps must be a non-empty list, not {kind_of(steps_node)}",
                       'e.g. [{listen: 800ms}, {send: "1"}]')
            return None
        steps = [self.nav_step(item, reader, f"{loc}.steps[{i}]") for i, item in enumerate(steps_node.value)]
        if any(step is None for step in steps):
            return None
        hold, bridge = self._hold_bridge(f, reader, loc)
        hang_up = reader.boolean(f["hang_up"][1], loc_join(loc, "hang_up"), "hang_up") if "hang_up" in f else False
        if bridge is None or hang_up is None:
            return None
        if bridge and hang_up:
            reader.bad(f["hang_up"][1], loc_join(loc, "hang_up"), "navigate cannot both bridge and hang up the dialled leg",
                       "bridge: true puts the caller through; hang_up: true ends the leg after the steps", "leg-conflict")
            return None
        self.ctx.info.settable.add("navigate_failed")
        return Navigate(tuple(step for step in steps if step is not None), on_fail, hold, bridge, hang_up)

    def nav_step(self, node: yaml.Node, reader: Reader, loc: str) -> NavStep | None:
        f = self._section(node, reader, loc, "nav_step", "navigate step")
        if f is None:
            return None
        actions = [k for k in _STEP_ACTIONS if k in f]
        if len(actions) != 1:
            reader.bad(node, loc, "a navigate step does exactly one of listen, send, pause, expect"
                       + (f", not {' and '.join(actions)}" if actions else ""), 'e.g. {listen: 800ms} or {send: "1#"}',
                       "bad-step")
            return None
        kind = actions[0]
        where = str(reader.pos(node))
        extra = [k for k in f if k not in (kind, "timeout", "pace")
                 or (k == "timeout" and kind not in ("listen", "expect")) or (k == "pace" and kind != "send")]
        for key in extra:
            self.report.add(reader.pos(f[key][0]), loc_join(loc, key), "unused-key", f"{key} does nothing in a {kind} step",
                            "timeout: belongs to listen/expect, pace: to send")
        if extra:
            return None
        timeout = reader.duration(f["timeout"][1], loc_join(loc, "timeout"), "timeout") if "timeout" in f else 10.0
        if timeout is None:
            return None
        value = f[kind][1]
        sub = loc_join(loc, kind)
        if kind == "send":
            sent = self.send_dtmf(value, reader, sub)
            pace = reader.duration(f["pace"][1], loc_join(loc, "pace"), "pace") if "pace" in f else None
            return NavStep("send", where, keys=sent.digits, pace=pace) if sent is not None else None
        if kind == "expect" and isinstance(value, yaml.MappingNode):
            return self.expect_words(value, reader, sub, where, timeout)
        if kind == "expect":
            what = reader.text(value, sub, "expect")
            if what not in ("speech", "tone"):
                if what is not None:
                    reader.bad(value, sub, f"expect must be speech or tone, not {what!r}",
                               "or words: {expect: {say: [for billing]}}", code="bad-value")
                return None
            return NavStep("expect", where, timeout=timeout, expect="speech" if what == "speech" else "tone")
        seconds = reader.duration(value, sub, kind)
        if seconds is None:
            return None
        if kind == "listen":
            return NavStep("listen", where, silence=seconds, timeout=timeout)
        return NavStep("pause", where, seconds=seconds)

    def expect_words(self, node: yaml.MappingNode, reader: Reader, loc: str, where: str, timeout: float) -> NavStep | None:
        f = self._section(node, reader, loc, "expect", "expect")
        lists = expect_phrases(f, reader, loc) if f is not None else None
        if lists is None:
            return None
        self.ctx.info.settable.add("navigate_heard")
        return NavStep("expect", where, timeout=timeout, expect="words", say=lists[0], unexpected=lists[1])

    def amd(self, node: yaml.Node, reader: Reader, loc: str) -> Amd | None | Literal[False]:
        """`amd: true` (Asterisk's defaults), `false`, or a mapping of settings (AMD_KEYS).
        False: a problem was reported."""
        if reader.is_null(node):
            return None
        if isinstance(node, yaml.ScalarNode):
            on = reader.boolean(node, loc, "amd")
            if on is None:
                return False
            if on:
                self.ctx.info.settable.update(("amd", "amd_cause"))
            return Amd() if on else None
        f = self._section(node, reader, loc, "amd", "amd")
        if f is None:
            return False
        into = reader.identifier(f["into"][1], loc_join(loc, "into"), "into") if "into" in f else "amd"
        values: dict[str, int] = {}
        wait = None
        for key in key_names("amd"):
            if key not in f or key == "into":
                continue
            sub = loc_join(loc, key)
            value_node = f[key][1]
            if key == "wait_for_beep":
                wait = None if reader.is_null(value_node) else reader.duration(value_node, sub, key)
            elif key in ("maximum_number_of_words", "silence_threshold"):
                number = reader.integer(value_node, sub, key, minimum=1)
                if number is not None:
                    values[key] = number
            elif isinstance(value_node, yaml.ScalarNode) and value_node.tag != "tag:yaml.org,2002:str":
                # Asterisk's amd.conf gives these in milliseconds; a bare number here is seconds
                reader.bad(value_node, sub, f"amd {key} needs a unit: {value_node.value} would be read as seconds",
                           f"write {key}: {value_node.value}ms (amd.conf's unit) or a duration in s", "bad-value")
            else:
                seconds = reader.duration(value_node, sub, key)
                if seconds is not None and round(seconds * 1000) < 20:
                    reader.bad(value_node, sub, f"amd {key} must be at least 20ms (one audio frame)", code="bad-value")
                elif seconds is not None:
                    values[key] = round(seconds * 1000)
        if into is None or len(values) < sum(1 for k in f if k not in ("into", "wait_for_beep")):
            return False
        self.ctx.info.settable.update((into, f"{into}_cause") + ((f"{into}_beep",) if wait is not None else ()))
        return Amd(AmdSettings(**values), into, wait)


_STEP_ACTIONS = ("listen", "send", "pause", "expect")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
