"""Per-flow figures over many call traces, in one pass with memory bounded per flow.

Why streaming: a busy worker's `--trace-dir` holds one file per call, tens of thousands a day.
Each file is read (by `ivrkit.replay.recording`, which knows both trace formats), folded into
its flow's counters and dropped; what stays is bounded by the flow's size (states, keys, edges),
not by the number of calls. Medians come from times rounded to `TIME_STEP`, counted — exact to
that step, and bounded by the longest call rather than by how many calls there were.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivrkit.coverage.taken import taken
from ivrkit.errors import ReplayError
from ivrkit.flow.model import Flow
from ivrkit.replay.recording import Recording, read_recording
from ivrkit.trace import TraceEvent

#: Resolution of the time-to-terminal medians, in seconds.
TIME_STEP = 0.1
#: How a call ended when its trace has no `call_end` (the worker died mid-call).
UNFINISHED = "unfinished"
#: Calls that reached a person: a transfer or a dial-out that did not fail.
_PERSON = ("transfer", "dial")


@dataclass(slots=True)
class FlowFigures:
    """Everything the report says about one flow; counters only, no per-call list."""

    flow: str
    calls: int = 0
    ended_by: Counter[str] = field(default_factory=Counter)
    to_person: int = 0  # calls with a transfer or dial record
    reached: Counter[str] = field(default_factory=Counter)  # calls that entered each state
    order: dict[str, int] = field(default_factory=dict)  # state → first seen position (funnel order)
    hung_up_in: Counter[str] = field(default_factory=Counter)  # caller hung up while in the state
    entries: Counter[str] = field(default_factory=Counter)  # every entry, re-entries too
    asks: dict[str, str] = field(default_factory=dict)  # state → what it waited for (menu, collect, confirm)
    no_input: Counter[str] = field(default_factory=Counter)
    no_match: Counter[str] = field(default_factory=Counter)
    invalid_keys: Counter[tuple[str, str]] = field(default_factory=Counter)  # (menu, key)
    terminal_times: dict[tuple[str, str], Counter[int]] = field(default_factory=dict)  # (ended_by, state) → steps
    edges: Counter[str] = field(default_factory=Counter)  # edge ids of `build_graph(flow)`, when the flow is known
    moves: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (from, to, why) of every transition

    @property
    def contained(self) -> int:
        """Calls that ended without reaching a person."""
        return self.calls - self.to_person

    def asked(self) -> list[str]:
        """States that waited for the caller, in funnel order."""
        return [s for s in self.funnel() if s in self.asks or self.no_input[s] or self.no_match[s]]

    def funnel(self) -> list[str]:
        """States in the order callers first reached them (most reached first on a tie)."""
        return sorted(self.reached, key=lambda s: (-self.reached[s], self.order[s]))

    def median_time(self, ended_by: str, state: str) -> float:
        """Median seconds from the call's start to its end in `state` (to `TIME_STEP`)."""
        steps = self.terminal_times[(ended_by, state)]
        half, seen = (sum(steps.values()) + 1) // 2, 0
        for step in sorted(steps):
            seen += steps[step]
            if seen >= half:
                return step * TIME_STEP
        return 0.0

    def add(self, rec: Recording, flow: Flow | None) -> None:
        """Fold one call in."""
        self.calls += 1
        entered: set[str] = set()
        person: str | None = None  # the state that reached a person (a dial's error there undoes it)
        end_by, end_state, end_t = UNFINISHED, None, 0.0
        last_key: tuple[str, str] | None = None  # (state, digit) of the menu key just consumed
        for r in rec.records:
            kind, state = r.kind, r.state or ""
            if kind == "state":
                self.entries[state] += 1
                if state not in entered:
                    entered.add(state)
                    self.reached[state] += 1
                    self.order.setdefault(state, len(self.order))
                last_key = None
            elif kind == "wait":
                self.asks.setdefault(state, str(r.data.get("for", "")))
            elif kind == "no_input":
                self.no_input[state] += 1
            elif kind == "no_match":
                self.no_match[state] += 1
                if last_key is not None and last_key[0] == state:
                    self.invalid_keys[last_key] += 1
                last_key = None
            elif kind == "key" and r.data.get("consumed") == state and "entry" not in r.data:
                last_key = (state, str(r.data.get("digit")))  # a menu's key (a collect's carry `entry`)
            elif kind == "transition":
                self.moves[(str(r.data.get("from")), str(r.data.get("to")), str(r.data.get("why")))] += 1
                last_key = None
            elif kind in _PERSON:
                person = state
            elif (kind == "error" and person == state) or (kind == "transfer_done" and r.data.get("ok") is False):
                person = None  # the dial or transfer failed: nobody answered
            elif kind == "call_end":
                end_by, end_state, end_t = str(r.data.get("ended_by")), state, r.t
        self.ended_by[end_by] += 1
        self.to_person += person is not None
        if end_state is not None:
            if end_by == "caller_hangup":
                self.hung_up_in[end_state] += 1
            elif end_by in ("transfer", "hangup"):
                times = self.terminal_times.setdefault((end_by, end_state), Counter())
                times[round(end_t / TIME_STEP)] += 1
        if flow is not None:
            self.edges.update(taken(flow, (TraceEvent(*r) for r in rec.records))[0])


@dataclass(slots=True)
class Report:
    """Figures per flow, plus the files that were not call traces."""

    flows: dict[str, FlowFigures] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "file: why", at most `MAX_SKIPPED`
    skipped_count: int = 0

    def add(self, rec: Recording, flows: Mapping[str, Flow]) -> None:
        name = rec.flow_name or "(unnamed flow)"
        figures = self.flows.get(name)
        if figures is None:
            figures = self.flows[name] = FlowFigures(name)
        figures.add(rec, flows.get(name))


#: Files listed by name among those that could not be read (the rest are only counted).
MAX_SKIPPED = 20


def trace_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every `*.jsonl` file under `paths` (a folder is walked; a file is taken as given), in
    name order per folder, without listing a whole tree first."""
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            yield p
            continue
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".jsonl"):
                    yield Path(root) / name


def aggregate(paths: Iterable[str | Path], flows: Mapping[str, Flow] | None = None) -> Report:
    """The report over every trace file under `paths`; `flows` by name lets it count graph edges."""
    report = Report()
    for path in trace_files(paths):
        try:
            rec = read_recording(path)
        except ReplayError as e:
            report.skipped_count += 1
            if len(report.skipped) < MAX_SKIPPED:
                report.skipped.append(str(e))
            continue
        report.add(rec, flows or {})
    return report
