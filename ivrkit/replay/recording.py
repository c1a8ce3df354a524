"""A recorded call, read from either trace format into one shape.

Two formats reach a replay: the call's own `Trace` as JSON lines (`ivrkit console --trace`,
`Trace.to_jsonl()`, or a `Trace` / its records in a test) — records with `kind`, times on the
call's clock — and the worker's per-call file (`ivrkit.livekit.trace`) — records with `event`,
times `t` from the file's start, a leading `call` record, adapter records without `seq`, and a
closing `job_end`. Both become `Recording.records`: only the call's own records (the adapter's
are not what the flow did), each time in seconds since the call's `call_start`, a key's
`arrived` on that same scale.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ivrkit.channel import CallerInfo
from ivrkit.errors import ReplayError
from ivrkit.trace import Trace, TraceEvent

#: Fields of a worker record that are the file's, not the call record's.
_FILE_FIELDS = ("ts", "t", "event", "seq", "state")

Source = str | Path | Trace | Iterable[TraceEvent | Mapping[str, Any]]


class Rec(NamedTuple):
    """One call record; `t` in seconds since the call started."""

    seq: int
    t: float
    kind: str
    state: str | None
    data: Mapping[str, Any]

    def __str__(self) -> str:
        details = " ".join(f"{k}={v!r}" for k, v in self.data.items() if k != "arrived")
        return f"t={self.t:8.3f} [{self.state}] {self.kind} {details}".rstrip()


@dataclass(frozen=True, slots=True)
class Recording:
    """A recorded call: its records, who called, and what a reader should know about it."""

    name: str  # the file, or "the given trace"
    records: tuple[Rec, ...]
    caller: CallerInfo
    flow_name: str | None = None  # the worker's `call` record names the flow that answered
    notes: tuple[str, ...] = field(default=())

    def of_kind(self, *kinds: str) -> list[Rec]:
        return [r for r in self.records if r.kind in kinds]


def read_recording(source: Source) -> Recording:
    """The recording in `source`: a trace file of either format, a `Trace`, or its records
    (`TraceEvent`s, or dicts as `to_dict()` or a trace file line gives them)."""
    if isinstance(source, (str, Path)):
        name = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ReplayError(f"{name}: cannot read the trace: {getattr(e, 'strerror', None) or e}") from None
        rows = [_json_line(name, n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        name = "the given trace"
        rows = [r.to_dict() if isinstance(r, TraceEvent) else dict(r) for r in source]
    if any("event" in r for r in rows):
        return _worker(name, rows)
    return _call(name, rows)


def _json_line(name: str, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ReplayError(f"{name}:{number}: not JSON ({e.msg}): is this an ivrkit call trace?") from None
    if not isinstance(row, dict):
        raise ReplayError(f"{name}:{number}: a trace line is a JSON object, this is {type(row).__name__}")
    return row


def _call(name: str, rows: list[dict[str, Any]]) -> Recording:
    """The call's own records (console `--trace`, FlowTester): every time on the call clock."""
    records = [_rec(name, r, r.get("kind")) for r in rows]
    start = _start(name, records)
    return Recording(name, _shift(records, start.t, start.t), _caller(start, {}))


def _worker(name: str, rows: list[dict[str, Any]]) -> Recording:
    """The worker's file: `t` from the file's start, `arrived` on the call clock (see
    `ivrkit.livekit.trace`); the `call` record's `clock` converts one to the other."""
    header = next((r for r in rows if r.get("event") == "call"), {})
    records = [_rec(name, r, r.get("event")) for r in rows if "seq" in r]
    start = _start(name, records)
    notes: list[str] = []
    if isinstance(header.get("clock"), (int, float)):
        clock = float(header["clock"])
    else:  # a file written before the `call` record carried it: the closest key says
        keys = [r for r in records if r.kind == "key" and isinstance(r.data.get("arrived"), (int, float))]
        clock = max((r.data["arrived"] - r.t for r in keys), default=0.0)
        if keys:
            notes.append("this worker trace does not say when its clock started (an older worker): key times are "
                         "estimated from the key handled soonest, to within the worker's key latency")
    records = list(_shift(records, start.t, clock + start.t))
    return Recording(name, tuple(records), _caller(start, header), header.get("flow"), tuple(notes))


def _rec(name: str, row: Mapping[str, Any], kind: Any) -> Rec:
    try:
        seq, t = int(row["seq"]), float(row["t"])
    except (KeyError, TypeError, ValueError):
        raise ReplayError(f"{name}: record {dict(row)!r} has no seq and time: is this an ivrkit call trace?") from None
    data = {k: v for k, v in row.items() if k not in _FILE_FIELDS and k != "kind"}
    return Rec(seq, t, str(kind), row.get("state"), data)


def _start(name: str, records: list[Rec]) -> Rec:
    start = next((r for r in records if r.kind == "call_start"), None)
    if start is None:
        raise ReplayError(f"{name}: no call_start record: a replay needs a whole call's trace "
                          "(ivrkit console --trace FILE, or a file from the worker's --trace-dir)")
    return start


def _shift(records: Iterable[Rec], t0: float, arrived0: float) -> tuple[Rec, ...]:
    out = []
    for r in records:
        data = r.data
        if r.kind == "key" and isinstance(data.get("arrived"), (int, float)):
            data = {**data, "arrived": data["arrived"] - arrived0}
        out.append(r._replace(t=r.t - t0, data=data))
    return tuple(out)


def _caller(start: Rec, header: Mapping[str, Any]) -> CallerInfo:
    """Who called, as the recorded call knew it: hooks that read the caller's number see it."""
    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return CallerInfo(number=text(start.data.get("caller_number")), called_number=text(start.data.get("called_number")),
                      call_id=text(start.data.get("call_id")), identity=text(header.get("caller")))
