"""When a replay presses each key, and how long each prompt plays.

Keys go in *relative to what the caller heard*, not at their bare recorded times. A caller
presses a key in reaction to a prompt: while it plays (barge-in) or some time after it ended.
The recorded call's clock also holds what a replay does not reproduce — a hook's real network
time, a worker's synthesis latency — and those shift everything after them. So each input is
tied to its *anchor*, the last thing the caller could hear start or stop before it (a prompt's
start, a prompt's end, or the call's start), with its delay after it; the replay presses the
key that long after the same anchor (the n-th prompt, the n-th prompt end) happens in the
replay. Time lost or gained before the anchor does not accumulate, and a key pressed 0.4 s into
a prompt is pressed 0.4 s into that prompt again.

Prompts play as long as they played when recorded, so barge-in, type-ahead and timeouts replay
faithfully whatever voice spoke them: the n-th prompt, if its text is the recorded n-th
prompt's, plays the recorded duration; one cut short (barge-in, hang-up) plays at least
`CUT_MARGIN` longer than it was heard, so the same key cuts it again. Any other prompt (the flow
changed) plays the `FakeChannel` estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ivrkit.prompts import FilledPrompt
from ivrkit.replay.recording import Rec
from ivrkit.trace import TraceEvent

#: Kinds of record the caller perceives: what keys are timed against.
ANCHORS = ("call_start", "prompt", "prompt_end")
#: A prompt cut short when recorded plays at least this much longer than it was heard.
CUT_MARGIN = 0.5
#: How much later than an input an anchor may be recorded and still count as before it: a
#: worker file rounds `t` to 0.1 ms, so a key pressed as a prompt ended (and handled after its
#: end) could otherwise look 50 µs early — and cut a prompt the caller had heard to its end.
ROUNDING = 1e-3

Anchor = tuple[str, int]  # (kind, ordinal among the records of that kind)


@dataclass(frozen=True, slots=True)
class Timed:
    """An input of the replay: a key (`digit`), words the caller said (`said`), the worker
    stopping the call (`stop`, its reason), or the caller's hang-up (all three None), given
    `delay` seconds after `anchor`; `at` is its recorded time, the fallback."""

    digit: str | None
    at: float
    anchor: Anchor
    delay: float
    placeholder: bool = False
    said: str | None = None
    stop: str | None = None


def anchors(records: Sequence[Rec | TraceEvent]) -> list[tuple[Anchor, float, int]]:
    """(anchor, time, record index) of every perceptible record, in order."""
    counts: dict[str, int] = {}
    out = []
    for i, r in enumerate(records):
        if r.kind in ANCHORS:
            n = counts.get(r.kind, 0)
            counts[r.kind] = n + 1
            out.append(((r.kind, n), r.t, i))
    return out


def timed(records: tuple[Rec, ...], digit: str | None, at: float, index: int, *, placeholder: bool = False,
          said: str | None = None, stop: str | None = None) -> Timed:
    """The input recorded at `at` (its record at `index`) tied to the last anchor before it:
    recorded no later than it arrived, and before its own record (a prompt started *because*
    of the key is not what the caller reacted to)."""
    best: tuple[Anchor, float] = (("call_start", 0), 0.0)
    for anchor, t, i in anchors(records):
        if i >= index:
            break
        if t <= at + ROUNDING and not _stopped_by(records, i, index):
            best = (anchor, t)
    return Timed(digit, at, best[0], max(0.0, at - best[1]), placeholder, said, stop)


def _stopped_by(records: tuple[Rec, ...], i: int, index: int) -> bool:
    """The record at `i` is a prompt cut short by the input recorded at `index` (a barge-in's
    prompt end is recorded just before its key, a hang-up's just before the call's end, at the
    same time): what the input did, not what the caller heard before it."""
    r = records[i]
    return (r.kind == "prompt_end" and bool(r.data.get("interrupted"))
            and not any(records[j].kind == "key" for j in range(i + 1, index)))


class PromptTimes:
    """`FakeChannel(prompt_seconds=...)` for a replay: the recorded duration of each prompt."""

    def __init__(self, records: tuple[Rec, ...]) -> None:
        ends = {}
        for r in records:
            if r.kind == "prompt_end" and r.data.get("id") not in ends:
                ends[r.data.get("id")] = r
        self._recorded: list[tuple[str, float | None, bool]] = []
        for r in records:
            if r.kind == "prompt":
                end = ends.get(r.data.get("id"))
                played = None if end is None else end.t - r.t
                self._recorded.append((str(r.data.get("text", "")), played, bool(end and end.data.get("interrupted"))))
        self._played = 0

    def __call__(self, prompt: FilledPrompt, estimate: float) -> float:
        n, self._played = self._played, self._played + 1
        if n >= len(self._recorded):
            return estimate
        text, played, cut = self._recorded[n]
        if text != prompt.log_text or played is None:
            return estimate
        return max(estimate, played + CUT_MARGIN) if cut else played
