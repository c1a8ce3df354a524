"""The console phone's key script: `--keys "1,wait 3s,1234#,hangup"`, or the same lines on stdin.

Why a script language and not just a key string: a caller's behaviour is keys *and time* —
type-ahead during a prompt, a pause long enough to trip the inter-digit timeout, hanging up in
the middle of a PIN. A script makes those runs repeatable from a shell or a CI job.

Grammar (items separated by commas or new lines, case-insensitive, blank items ignored)::

    1234#          keys, pressed one after the other at once (spaces inside are ignored)
    wait 3s        wait 3 seconds (also `wait 500ms`, `wait 1.5s`, `wait 2` = seconds)
    say: billing   the caller says these words (also `"billing`): heard where the state takes
                   speech (`input: [dtmf, speech]`), as a recogniser would hand them over
    hangup         the caller hangs up (also `hang up`, `q`)

Anything else is an error naming the item and what to write instead — a script with a typo
must not press keys the author did not mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivrkit.channel import DTMF_KEYS
from ivrkit.errors import IvrkitError

__all__ = ["HangUp", "KeyScriptError", "Press", "Say", "Step", "Wait", "parse_key_script", "parse_script_line"]


class KeyScriptError(IvrkitError):
    """A key script item could not be understood. The message names the item and the fix.

    Raised by `parse_key_script` (`ivrkit console --keys`, before the call starts) and by
    `parse_script_line` (a line piped in during the call: it is printed and the caller hangs up).
    """


@dataclass(frozen=True, slots=True)
class Press:
    """Press these keys in order, with no time between them. Normalised: 0-9 * # A-D."""

    keys: str


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


@dataclass(frozen=True, slots=True)
class Say:
    """The caller says `text` (typed speech: what a recogniser would have heard)."""

    text: str


Step = Press | Wait | HangUp | Say

_WAIT = re.compile(r"wait\s*(?P<n>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s|sec|secs|seconds?)?", re.IGNORECASE)
_SAY = re.compile(r'say\s*:\s*(?P<said>.*)|"(?P<quoted>.*)', re.IGNORECASE | re.DOTALL)
_HANGUP_WORDS = frozenset({"hangup", "hang up", "q", "quit"})
_HELP = 'write keys (0-9 * # A-D, e.g. "1234#"), "wait 3s" / "wait 500ms", "say: words", or "hangup"'
MAX_WAIT = 3600.0


def parse_script_line(item: str, *, where: str) -> Step | None:
    """One item (`where` says which, for the message). Blank → None."""
    text = item.strip()
    if not text:
        return None
    lowered = " ".join(text.lower().split())
    if lowered in _HANGUP_WORDS:
        return HangUp()
    said = _SAY.fullmatch(text)
    if said is not None:
        words = (said["said"] or said["quoted"] or "").strip().strip('"').strip()
        if not words:
            raise KeyScriptError(f"{where}: {text!r} says nothing; write e.g. \"say: billing\"")
        return Say(words)
    if lowered.startswith("wait"):
        m = _WAIT.fullmatch(text)
        if m is None:
            raise KeyScriptError(f"{where}: {text!r} is not a wait; write e.g. \"wait 3s\" or \"wait 500ms\"")
        seconds = float(m["n"]) / (1000.0 if (m["unit"] or "s").lower() == "ms" else 1.0)
        if seconds > MAX_WAIT:
            raise KeyScriptError(f"{where}: {text!r} waits longer than {MAX_WAIT:.0f} s; is the unit right?")
        return Wait(seconds)
    compact = "".join(text.split())
    bad = [ch for ch in compact if ch.upper() not in DTMF_KEYS]
    if bad:
        raise KeyScriptError(
            f"{where}: {text!r} is not keys, a wait or hangup ({bad[0]!r} is not a phone key); {_HELP}"
        )
    return Press(compact.upper())


def parse_key_script(text: str, *, source: str = "--keys") -> tuple[Step, ...]:
    """Parse a whole script (commas or new lines between items); errors name the item number."""
    steps: list[Step] = []
    items = [part for line in text.splitlines() for part in line.split(",")] if text else []
    for n, item in enumerate(items, start=1):
        step = parse_script_line(item, where=f"{source}: item {n}")
        if step is not None:
            steps.append(step)
    return tuple(steps)
