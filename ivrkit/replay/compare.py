"""Did the replay do what the recorded call did? The first difference, in one readable block.

What "matches" means: the caller would have had the same call. The two calls go through the
same *steps* in the same order —
- every state entered (`state` records),
- every prompt: its masked text, and whether it played out, was cut short (a key barged in, the
  caller hung up) or was skipped (type-ahead),
- every action on the line: a transfer or a dial (where to), each digit sent,
- and the outcome: how the call ended (`call_end`'s `ended_by`).
Times are not compared. They decide *what* happens (a key before or after a timeout, during a
prompt or after it), and that is compared; a real worker's hooks and audio take real time that
a replay on the virtual clock does not, so recorded and replayed times differ by that jitter
whenever the calls match. Key records are not compared either: where a key went shows in the
states and prompts after it, and a masked key replayed as a placeholder is discarded for
another reason than when recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ivrkit.replay.recording import Rec, Recording

#: Records shown before and after the divergence, on each side.
BEFORE, AFTER = 4, 2


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the caller would notice, and where it is in its trace."""

    what: str  # state, prompt, action, outcome
    key: tuple[Any, ...]  # what is compared
    text: str
    t: float
    index: int


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first step that differs; None on a side that had no step left (its call had ended)."""

    what: str
    recorded: Step | None
    now: Step | None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """A replayed call next to its recording. `diverged` / `report()`; the records of both."""

    recording: Recording
    flow: str  # the flow file replayed (or its name)
    replayed: tuple[Rec, ...]
    divergence: Divergence | None
    notes: tuple[str, ...] = field(default=())

    @property
    def diverged(self) -> bool:
        return self.divergence is not None

    def report(self) -> str:
        """One block: the match, or the first divergence with the records around it."""
        head = f"{self.recording.name} replayed against {self.flow}"
        d = self.divergence
        if d is None:
            steps = steps_of(self.replayed)
            states = sum(1 for s in steps if s.what == "state")
            prompts = sum(1 for s in steps if s.what == "prompt")
            end = steps[-1].text if steps else "no end"
            return f"{head}: matches ({states} states, {prompts} prompts, {end})"
        when = " / ".join(f"{s.t:.3f} s {side}" for side, s in (("recorded", d.recorded), ("now", d.now)) if s is not None)
        lines = [f"{head}: diverged ({d.what}) at t={when}",
                 f"  recorded: {_shown(d.recorded)}",
                 f"  now:      {_shown(d.now)}"]
        for side, records, step in (("recorded", self.recording.records, d.recorded), ("now", self.replayed, d.now)):
            lines.append(f"  {side}, around it:")
            lines.extend(_around(records, step))
        lines.extend(f"  note: {n}" for n in (*self.notes, *_hook_notes(self.recording.records, self.replayed, d)))
        return "\n".join(lines)


def compare(recording: Recording, flow: str, replayed: Sequence[Rec], notes: Sequence[str] = ()) -> ReplayResult:
    """The recorded call's steps against the replay's: the first that differs, if any."""
    old, new = steps_of(recording.records), steps_of(replayed)
    divergence = None
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a is None or b is None or a.key != b.key:
            divergence = Divergence(_what(a, b), a, b)
            break
    return ReplayResult(recording, flow, tuple(replayed), divergence, tuple(notes))


def steps_of(records: Sequence[Rec]) -> list[Step]:
    """The steps of a call (see the module docstring), in order."""
    ended = {r.data.get("id"): bool(r.data.get("interrupted")) for r in records if r.kind == "prompt_end"}
    steps = []
    for i, r in enumerate(records):
        d = r.data
        if r.kind == "state":
            steps.append(Step("state", ("state", r.state), f"entered state '{r.state}'", r.t, i))
        elif r.kind == "prompt":
            how = "cut short" if ended.get(d.get("id")) else "played"
            steps.append(Step("prompt", ("prompt", d.get("text"), how), f"prompt {d.get('text')!r} ({how})", r.t, i))
        elif r.kind == "prompt_skip":
            steps.append(Step("prompt", ("prompt", d.get("text"), "skipped"), f"prompt {d.get('text')!r} (skipped: "
                              "keys typed ahead)", r.t, i))
        elif r.kind in ("transfer", "dial"):
            steps.append(Step("action", (r.kind, d.get("to")), f"{r.kind} to {d.get('to')}", r.t, i))
        elif r.kind == "dtmf_sent":
            steps.append(Step("action", ("sent", d.get("digit")), f"sent DTMF {d.get('digit')}", r.t, i))
        elif r.kind == "call_end":
            by = str(d.get("ended_by", "")).replace("_", " ")
            steps.append(Step("outcome", ("end", d.get("ended_by")), f"ended by {by} in state '{r.state}'", r.t, i))
    return steps


def _what(a: Step | None, b: Step | None) -> str:
    kinds = [s.what for s in (a, b) if s is not None]
    return kinds[0] if len(set(kinds)) == 1 else " / ".join(kinds)


def _shown(step: Step | None) -> str:
    return "(nothing more: the call had ended)" if step is None else f"{step.text}   (t={step.t:.3f})"


def _around(records: Sequence[Rec], step: Step | None) -> list[str]:
    at = step.index if step is not None else len(records)
    lines = []
    for i in range(max(0, at - BEFORE), min(len(records), at + AFTER + 1)):
        lines.append(f"  {'>' if i == at else ' '}   {records[i]}")
    return lines or ["      (no records)"]


def _hook_notes(recorded: Sequence[Rec], replayed: Sequence[Rec], d: Divergence) -> list[str]:
    """Hooks run for real in a replay: say so when one answered differently before the divergence."""
    stop_old = d.recorded.index if d.recorded is not None else len(recorded)
    stop_new = d.now.index if d.now is not None else len(replayed)
    old = [r for r in recorded[:stop_old] if r.kind == "hook"]
    new = [r for r in replayed[:stop_new] if r.kind == "hook"]
    for a, b in zip(old, new):
        if a.data != b.data:
            return [f"hooks run for real in a replay, and {a.data.get('hook')} answered differently: recorded "
                    f"{_answer(a)}, now {_answer(b)} (variables a hook set may differ too)"]
    return []


def _answer(r: Rec) -> str:
    extra = r.data.get("set") or r.data.get("next")
    return f"{r.data.get('result')!r}" + (f" {extra!r}" if extra else "")
