"""The caller's keys of a recorded call, masked ones filled in from what the user supplies.

A trace never holds sensitive digits (docs/security.md), so a replay never unmasks: the user
supplies them, or the replay refuses. Two masks reach a trace:

- `*`: a key consumed by a sensitive collect's entry (digits, terminator and clear key alike).
  Its value decides the entry (and the `validate` hook), so a replay without it would only show
  a made-up divergence: the replay refuses, naming the state and how to give the digits —
  `--set INTO=DIGITS` (each entry into INTO gets DIGITS, plus the terminator when the entry
  ended with one) or `--keys-for STATE=DIGITS` (every masked key of STATE, in order).
- `?`: a key no state used, discarded while input was sensitive or typed ahead in a flow with
  sensitive input. The habitual terminator after a completed entry is known (the entry's
  terminator); any other is replayed as the placeholder key `?`, which is no DTMF key: the flow
  discards it and never takes it as a choice (the report says so; `--keys-for` replaces it).

A `*` key is masked only if it belongs to an entry: the entry's `collect` record follows it,
its keys are all `*`, and the flow replayed has that state as a sensitive collect. A `*` in a
menu, or in a sensitive collect's confirm step, is the star key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ivrkit.call.keys import STRAY
from ivrkit.errors import ReplayError
from ivrkit.flow.model import Flow
from ivrkit.replay.recording import Rec, Recording

#: The key a masked, unused key is replayed as when its digit was not supplied: no DTMF key.
PLACEHOLDER = "?"
#: Records between an entry's keys and its `collect` record.
#: Records that may come between the keys of one entry (`wait`: input started, its timeouts).
_WITHIN_ENTRY = frozenset({"key", "prompt", "prompt_end", "prompt_skip", "timeout", "wait"})


@dataclass(frozen=True, slots=True)
class PressedKey:
    """One key the caller pressed: what to press in the replay, and when it arrived."""

    digit: str
    at: float
    index: int  # of its record in the recording
    placeholder: bool = False


@dataclass(frozen=True, slots=True)
class _Entry:
    state: str
    into: str
    reason: str
    keys: tuple[int, ...]  # record indices


@dataclass(frozen=True, slots=True)
class Pressed:
    """The keys to press, notes for the report, and the `sets` names that filled entries."""

    keys: list[PressedKey]
    notes: list[str]
    used: frozenset[str]


def pressed_keys(recording: Recording, flow: Flow, sets: Mapping[str, str], keys_for: Mapping[str, str]) -> Pressed:
    """Every key of the recording, in the order pressed, with masked ones filled. Raises
    `ReplayError` when masked entry keys have no digits given."""
    records = recording.records
    entries = _entries(records, flow)
    entry_of = {i: e for e in entries for i in e.keys}
    masked: dict[str, list[int]] = {}  # state -> indices of its masked keys the user may give
    digits: dict[int, str] = {}
    for i, r in enumerate(records):
        if r.kind != "key":
            continue
        if i in entry_of:
            masked.setdefault(entry_of[i].state, []).append(i)
        elif r.data.get("digit") == "?":
            terminator = _stray_terminator(records, i, flow)
            if terminator is not None:
                digits[i] = terminator
            else:
                masked.setdefault(r.state or "", []).append(i)
    for state, given in keys_for.items():
        wanted = masked.get(state, [])
        if len(given) != len(wanted):
            raise ReplayError(f"--keys-for {state}={'*' * len(given)}: the recorded call has {len(wanted)} masked "
                              f"key(s) in state '{state}', {len(given)} given" + _states_hint(masked))
        digits.update(zip(wanted, given))
    missing: dict[str, list[_Entry]] = {}
    for e in entries:
        if e.state in keys_for:
            continue
        value = sets.get(e.into)
        filled = _fill(e, value, flow) if value is not None else None
        if filled is None:
            missing.setdefault(e.state, []).append(e)
        else:
            digits.update(zip(e.keys, filled))
    if missing:
        raise ReplayError(_missing_message(missing, masked, sets))
    keys, placeholders = [], []
    for i, r in enumerate(records):
        if r.kind != "key":
            continue
        at = float(r.data.get("arrived", r.t))
        if i in digits:
            keys.append(PressedKey(digits[i], at, i))
        elif r.data.get("digit") == "?":
            keys.append(PressedKey(PLACEHOLDER, at, i, placeholder=True))
            placeholders.append(r.state or "?")
        else:
            keys.append(PressedKey(str(r.data.get("digit", "")), at, i))
    notes = []
    if placeholders:
        where = ", ".join(sorted(set(placeholders)))
        notes.append(f"{len(placeholders)} masked key(s) no state used (in {where}) were replayed as the placeholder "
                     f"'{PLACEHOLDER}', which the flow discards; give their digits with --keys-for STATE=DIGITS")
    return Pressed(keys, notes, frozenset(e.into for e in entries))


def _entries(records: tuple[Rec, ...], flow: Flow) -> list[_Entry]:
    """The masked entries: runs of `*` keys consumed by a sensitive collect, each closed by its
    `collect` record (a key followed by anything else was a confirm step's key, or a menu's)."""
    entries: list[_Entry] = []
    pending: dict[str, list[int]] = {}  # state -> its `*` keys since its last collect record
    for i, r in enumerate(records):
        if r.kind == "key" and "consumed" in r.data and r.state is not None:
            pending.setdefault(r.state, []).append(i)
        elif r.kind == "collect" and r.state is not None:
            keys = pending.pop(r.state, [])
            state = flow.states.get(r.state)
            sensitive = state is not None and state.collect is not None and state.collect.sensitive
            if keys and sensitive and all(records[k].data.get("digit") == "*" for k in keys):
                entries.append(_Entry(r.state, str(r.data.get("into", "")), str(r.data.get("reason", "")), tuple(keys)))
        elif r.kind not in _WITHIN_ENTRY:
            pending.clear()
    return entries


def _stray_terminator(records: tuple[Rec, ...], index: int, flow: Flow) -> str | None:
    """A `?` discarded as the habitual terminator of the entry just completed: that terminator."""
    if records[index].data.get("discarded") != STRAY:
        return None
    last = next((r for r in reversed(records[:index]) if r.kind == "collect"), None)
    state = flow.states.get(last.state) if last is not None and last.state is not None else None
    return state.settings.terminator if state is not None else None


def _fill(entry: _Entry, value: str, flow: Flow) -> str | None:
    """The keys of `entry` for the entry value `value`: the value, plus the terminator when the
    entry ended with it; None when the count of keys says the caller typed something else."""
    if len(entry.keys) == len(value):
        return value
    terminator = flow.states[entry.state].settings.terminator
    if entry.reason == "terminator" and terminator and len(entry.keys) == len(value) + 1:
        return value + terminator
    return None


def _missing_message(missing: dict[str, list[_Entry]], masked: dict[str, list[int]], sets: Mapping[str, str]) -> str:
    lines = ["the recorded call has masked keys of sensitive input, and a replay never unmasks: give their digits"]
    for state, entries in missing.items():
        into = entries[0].into
        sizes = ", ".join(str(len(e.keys)) for e in entries)
        given = f"; --set {into}=... has {len(sets[into])} digit(s), which does not fit" if into in sets else ""
        lines.append(f"  state '{state}': {len(entries)} entry(ies) into '{into}' of {sizes} key(s){given}")
        lines.append(f"    --set {into}=DIGITS (each entry, plus its terminator if it ended with one), or "
                     f"--keys-for {state}=KEYS (all {len(masked.get(state, []))} masked key(s) of '{state}', in order)")
    lines.append("  (from pytest: FlowTester.replay(trace, flow, NAME='DIGITS') or keys_for={'STATE': 'KEYS'})")
    return "\n".join(lines)


def _states_hint(masked: dict[str, list[int]]) -> str:
    if not masked:
        return "; it has none"
    return "; masked keys by state: " + ", ".join(f"{s} {len(v)}" for s, v in masked.items())
