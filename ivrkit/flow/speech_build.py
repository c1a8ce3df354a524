"""Building the press-or-say parts of a flow: `input:`, an option's `say:` words, their checks.

Split from `state_build.py` (the state level) so that one stays about states and this one about
what a caller may *say*. The checks are the ones a grammar needs to be unambiguous and
useful: every phrase is plain words (a recogniser's grammar is made of them), no phrase
chooses two options, and a state that takes speech has something to say.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from ivrkit.flow.model import InputMode, Settings
from ivrkit.flow.source import Reporter, loc_join, mapping_items
from ivrkit.flow.spec import INPUT_MODES, key_names
from ivrkit.flow.values import Reader
from ivrkit.spoken import PHRASE, normalise


def input_modes(node: yaml.Node, reader: Reader, loc: str) -> tuple[InputMode, ...] | None:
    """`input: dtmf`, `input: [dtmf, speech]`: the ways a caller may answer."""
    items = reader.string_list(node, loc, "input")
    if not items:
        reader.bad(node, loc, "input must name at least one of: dtmf, speech", "e.g. input: [dtmf, speech]", "bad-value")
        return None
    out: list[InputMode] = []
    for value, item in items:
        mode = next((m for m in INPUT_MODES if m == value.strip().lower()), None)
        if mode is None:
            hint = "in-band tones are the flow's dtmf: setting, not an input" if value.lower() in ("inband", "rfc4733") else None
            reader.bad(item, loc, f"input '{value}' is not one of: {', '.join(INPUT_MODES)}", hint, "bad-value")
            return None
        if mode in out:
            reader.bad(item, loc, f"input '{value}' is named twice", code="bad-value")
            return None
        out.append(mode)
    return tuple(out)


class OptionWords:
    """The `say:` phrases of one menu's options, and where each was written (for the checks)."""

    def __init__(self, report: Reporter, reader: Reader) -> None:
        self.report = report
        self.reader = reader
        self.words: dict[str, tuple[str, ...]] = {}  # key -> phrases
        self._seen: dict[str, tuple[str, yaml.Node]] = {}  # phrase -> (key, node)

    def option(self, key: str | None, node: yaml.MappingNode, loc: str) -> yaml.Node | None:
        """An option written as `{to: state, say: [words]}`: records its phrases under `key`
        and returns the `to:` node (None when the mapping is unusable, reported)."""
        allowed = key_names("option")
        fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for name, key_node, value in mapping_items(node, self.reader.source, loc, self.report):
            if name not in allowed:
                self.report.add(self.reader.pos(key_node), loc_join(loc, name), "unknown-key",
                                f"unknown key '{name}' in a menu option", "an option is {to: state, say: [words]}")
                continue
            fields[name] = (key_node, value)
        if "to" not in fields:
            self.reader.bad(node, loc, "a menu option written as a mapping needs 'to' (the state it leads to)",
                            "e.g. {to: billing, say: [billing, bills]}", "missing-key")
            return None
        if "say" in fields and key is not None:
            self._phrases(key, fields["say"][1], loc_join(loc, "say"))
        return fields["to"][1]

    def _phrases(self, key: str, node: yaml.Node, loc: str) -> None:
        phrases: list[str] = []
        for value, item in self.reader.string_list(node, loc, "say entry"):
            phrase = normalise(value)
            if not PHRASE.match(phrase):
                digit = any(c.isdigit() for c in phrase)
                self.report.add(self.reader.pos(item), loc, "bad-phrase",
                                f"say entry {value!r} is not plain words: a recogniser's grammar is made of words",
                                "write a digit as a word (two, not 2)" if digit else 'words of letters, e.g. "card payments"')
                continue
            if phrase in self._seen:
                other, first = self._seen[phrase]
                if other != key:
                    self.report.add(self.reader.pos(item), loc, "same-word",
                                    f"'{phrase}' chooses option '{other}' (line {first.start_mark.line + 1}) and option '{key}'",
                                    "a spoken phrase must choose one option; drop it from one of them")
                continue
            self._seen[phrase] = (key, item)
            phrases.append(phrase)
        if phrases:
            self.words[key] = tuple(phrases)

    def check(self, name: str, settings: Settings, options: Mapping[str, str], where: yaml.Node, loc: str) -> None:
        """A menu that takes speech needs words; words on a menu that does not take speech are
        never heard (a warning: `input:` may be meant to come from `defaults:` later)."""
        self.words = {k: v for k, v in self.words.items() if k in options}
        if settings.speech and not self.words:
            self.report.add(self.reader.pos(where), loc, "speech-no-words",
                            f"menu '{name}' takes speech (input: {', '.join(settings.input)}) but no option has words to say",
                            'give options words: "1": {to: billing, say: [billing, bills]}')
        elif self.words and not settings.speech:
            first = next(iter(self.words))
            self.report.add(self.reader.pos(where), loc, "unused-words",
                            f"option '{first}' of menu '{name}' has say: words, but the state takes only keys",
                            "add input: [dtmf, speech] to the state or to defaults", "warning")
        elif settings.speech and "dtmf" not in settings.input:
            keyless = [k for k in options if k not in self.words]
            if keyless:
                self.report.add(self.reader.pos(where), loc, "unreachable-option",
                                f"menu '{name}' takes only speech, but option '{keyless[0]}' has no words: no caller can choose it",
                                "add say: words to it, or input: [dtmf, speech]", "warning")



def expect_phrases(fields: Mapping[str, tuple[yaml.Node, yaml.Node]], reader: Reader,
                   loc: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """A navigate step's `expect: {say: [...], unexpected: [...]}`: phrases of plain words,
    each in one list (a phrase in both could never decide the step). None: reported."""
    lists: dict[str, list[str]] = {"say": [], "unexpected": []}
    seen: dict[str, str] = {}
    ok = True
    for name, phrases in lists.items():
        if name not in fields:
            continue
        sub = loc_join(loc, name)
        for value, item in reader.string_list(fields[name][1], sub, f"{name} entry"):
            phrase = normalise(value)
            if not PHRASE.match(phrase):
                reader.bad(item, sub, f"{name} entry {value!r} is not plain words: a recogniser's grammar is made of words",
                           "write a digit as a word (two, not 2)", "bad-phrase")
                ok = False
            elif phrase in seen:
                reader.bad(item, sub, f"'{phrase}' is in both say and unexpected" if seen[phrase] != name
                           else f"'{phrase}' is listed twice", code="same-word")
                ok = False
            else:
                seen[phrase] = name
                phrases.append(phrase)
    if ok and not lists["say"]:
        reader.bad(fields["say"][1], loc_join(loc, "say"), "say needs at least one phrase", "e.g. [for billing]", "bad-value")
        return None
    return (tuple(lists["say"]), tuple(lists["unexpected"])) if ok else None
