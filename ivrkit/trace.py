"""The call trace: an ordered record of what happened on one call, for debugging and tests.

Why a trace and not just logs: a test (or a person reading a bug report) needs the *sequence*
— state entered, prompt played, key pressed, timeout, transition — as data, in order, with the
virtual or real time of each step. Every record is already safe to show: prompts appear only as
their masked `log_text`, keys consumed by a sensitive collect as `*` (with `masked`), sensitive
variable values as `****`. The call runtime is the only writer; it masks before recording.

Kinds (`TraceEvent.kind`) and their `data`:
  call_start  {caller_number, called_number, call_id}
  state       {where}                         a state was entered
  hook        {hook, result[, set|next]}      a flow hook returned (failures are `timeout`/`error`)
  prompt      {id, text, barge_in}            a prompt started playing (masked text)
  prompt_end  {id, interrupted[, by]}
  prompt_skip {text, reason}                  not played: keys were already typed ahead
  key         {digit, arrived, consumed|discarded[, entry][, masked]}  exactly one record per key
                                              the caller pressed; `entry` (digit, terminator,
                                              cleared) for keys of a collect; `masked: true`
                                              when `digit` is hidden (`*` or `?`)
  wait        {for, timeout[, inter_digit_timeout, terminator], no_input, no_match, retries}
                                              the call waits for the caller (menu, collect, confirm)
  timeout     {what[, hook, limit]}           no_input / a collect timer / a hook's limit
  collect     {into, digits, reason}          a collect ended (digits masked when sensitive)
  no_input / no_match {count, retries}
  transition  {from, to, why}                 why: start, key 1, back, collected, re-enter,
                                              goto 2 (the arm), next, send_dtmf, dial, error,
                                              max retries (no_input|no_match), hook mod:fn
  dtmf_sent   {digit}
  transfer / dial {to}                        the channel was asked to transfer / dial out
  transfer_done {ok}
  error       {message, where}
  condition_error {message, where}            a goto condition hit a type error: its arm is false
  observer_error {point, observer, error}
  call_end    {ended_by[, reason][, dropped]}   reason: why `Call.stop` ended it (ended_by stopped)
  truncated   {limit}                         the record cap was reached here (at most once)

A call keeps at most `MAX_EVENTS` records of other kinds, but every `key` record and the
`call_end` record are always kept: the promise "every key the caller pressed, exactly once" holds
however long a call runs or however fast keys come (a key record is small, and keys arrive no
faster than a phone or a client can send them). Where dropping begins, one `truncated` record
says so; after it only `key` records and `call_end` follow. Dropped records are counted in
`Trace.dropped` (and in `call_end`'s `dropped`); their `seq` numbers are used up, so the gaps
show in the JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

#: Records kept per call at most, apart from the kinds in `ALWAYS_KEPT`; past it other records
#: are counted in `Trace.dropped`, not kept.
MAX_EVENTS = 5000
#: Kinds never dropped: the caller's keys (each exactly once) and the end of the call.
ALWAYS_KEPT = frozenset({"key", "call_end"})


class TraceEvent(NamedTuple):
    """One step. A NamedTuple rather than a frozen dataclass: a call writes several per key, and
    tuple construction is several times cheaper than a frozen dataclass's `__init__`."""

    seq: int
    t: float
    kind: str
    state: str | None
    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": round(self.t, 6), "kind": self.kind, "state": self.state, **self.data}

    def __str__(self) -> str:
        details = " ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"#{self.seq} t={self.t:.3f} [{self.state}] {self.kind} {details}".rstrip()


#: Builds a `TraceEvent` from its fields in one C call, without the Python-level `__new__`
#: NamedTuple generates (a frame per record; a call writes several records per key).
new_event = tuple.__new__


class Trace:
    """Append-only list of `TraceEvent`s. Iterable; `closed` once the call has ended."""

    __slots__ = ("events", "closed", "dropped")

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self.closed = False
        self.dropped = 0

    def record(self, t: float, kind: str, state: str | None, data: Mapping[str, Any]) -> TraceEvent:
        """Append a record, or count it as dropped past the cap (see the module docstring). The
        record is returned either way: observers still see it."""
        events = self.events
        if len(events) < MAX_EVENTS:  # the common case, every record kept (dropping leaves more than MAX_EVENTS)
            event: TraceEvent = new_event(TraceEvent, (len(events) + 1, t, kind, state, data))
            events.append(event)
            return event
        keep = kind in ALWAYS_KEPT or len(events) < MAX_EVENTS
        if not keep and not self.dropped:
            self.events.append(TraceEvent(self._next_seq(), t, "truncated", state, {"limit": MAX_EVENTS}))
        if kind == "call_end" and self.dropped:
            data = {**data, "dropped": self.dropped}
        event = TraceEvent(self._next_seq(), t, kind, state, data)
        if keep:
            self.events.append(event)
        else:
            self.dropped += 1
        return event

    def _next_seq(self) -> int:
        return len(self.events) + self.dropped + 1

    def close(self) -> None:
        self.closed = True

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of_kind(self, *kinds: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind in kinds]

    def keys(self) -> list[TraceEvent]:
        """The key records, in the order the caller pressed them."""
        return self.of_kind("key")

    def to_jsonl(self) -> str:
        """One JSON object per line, in order (`default=str` keeps odd hook values printable)."""
        return "".join(json.dumps(e.to_dict(), default=str) + "\n" for e in self.events)

    def tail(self, n: int = 25) -> str:
        """The last `n` records as text — what a failing test shows."""
        return "\n".join(str(e) for e in self.events[-n:])
