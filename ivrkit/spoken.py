"""What a caller's recognised words mean: a menu phrase, a yes/no, or a string of digits.

One module for the text side of press-or-say, shared by the flow loader (which normalises the
phrases a flow gives its options, and refuses the same phrase on two options) and by the call
(which matches what a recogniser heard against them). Recognisers differ in case, punctuation
and how they write numbers ("4321", "four three two one", "forty three twenty one" never
happens with a digit grammar but does with a cloud STT), so both sides go through `normalise`.

Pure functions; no recogniser, no LiveKit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Spoken digits, as callers say them ("oh" and "o" for zero, as on phone numbers).
DIGIT_WORDS: Mapping[str, str] = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
#: "double four" = 44, "triple seven" = 777 (how people read numbers out in English).
_REPEATS: Mapping[str, int] = {"double": 2, "triple": 3}
#: Answers to a confirm step ("Press 1 to confirm, 2 to re-enter", or say yes / no).
YES_WORDS = frozenset({"yes", "yeah", "yep", "correct", "right", "confirm", "that's right"})
NO_WORDS = frozenset({"no", "nope", "wrong", "incorrect", "re-enter", "reenter"})
_NOT_WORD = re.compile(r"[^a-z0-9' -]+")
#: What a phrase written in a flow may hold: words of letters (and ' -), spaces between them.
PHRASE = re.compile(r"^[a-z][a-z'-]*( [a-z][a-z'-]*)*$")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, single spaces: how a phrase is compared."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def digits_of(text: str) -> str | None:
    """The digits a caller said ("four three two one" / "4321" / "double oh seven" -> "4321",
    "4321", "007"); None when anything in it is not a digit — a collect then counts a no-match
    instead of guessing."""
    out: list[str] = []
    repeat = 1
    for word in normalise(text).replace("-", " ").split():
        if word in _REPEATS:
            if repeat != 1:
                return None
            repeat = _REPEATS[word]
            continue
        if word.isdigit() and (repeat == 1 or len(word) == 1):
            out.append(word * repeat)
        elif word in DIGIT_WORDS:
            out.append(DIGIT_WORDS[word] * repeat)
        else:
            return None
        repeat = 1
    if repeat != 1 or not out:
        return None
    return "".join(out)


def choose(words: Mapping[str, tuple[str, ...]], text: str) -> str | None:
    """The option key whose phrase the caller said. The whole utterance may be the phrase, or
    hold it as whole words ("billing please"); the longest phrase heard wins (so "card
    payments" beats "card"). None: no option's phrase was said."""
    heard = f" {normalise(text)} "
    best: tuple[int, str] | None = None
    for key, phrases in words.items():
        for phrase in phrases:
            if f" {phrase} " in heard and (best is None or len(phrase) > best[0]):
                best = (len(phrase), key)
    return best[1] if best is not None else None


def yes_no(text: str) -> bool | None:
    """True for a yes, False for a no, None for anything else (or both)."""
    said = normalise(text)
    words = set(said.split()) | {said}
    yes, no = bool(words & YES_WORDS), bool(words & NO_WORDS)
    return yes if yes != no else None

