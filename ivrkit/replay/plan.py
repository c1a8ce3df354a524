"""What a replay will do: the inputs to give, when, and what to tell the reader about them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivrkit.errors import ReplayError
from ivrkit.flow.model import Flow
from ivrkit.replay.far_end import far_end
from ivrkit.replay.keys import pressed_keys
from ivrkit.replay.recording import Rec, Recording
from ivrkit.replay.timing import PromptTimes, Timed, timed

if TYPE_CHECKING:
    from ivrkit.voice.audio import Pcm


@dataclass(frozen=True, slots=True)
class Plan:
    """The caller's inputs in order (keys, then the hang-up if the caller hung up, or the stop
    if the worker stopped the call: `ivrkit start` past its drain, `ivrkit dev` stopped), the call
    variables to start with, the prompts' recorded durations, and notes for the report."""

    inputs: list[Timed]
    variables: dict[str, str]
    prompt_times: PromptTimes
    notes: list[str]
    far_end: Pcm | None = None  # what a dialled party says, rebuilt from the amd record
    far_end_hangs_up: bool = False
    #: The worker stopped the call before it entered any state (its reason): the replay stops
    #: it before it runs, as `Call.stop` did, rather than at a moment that has no anchor.
    stopped_before_start: str | None = None


def plan(recording: Recording, flow: Flow, sets: Mapping[str, str], keys_for: Mapping[str, str]) -> Plan:
    """`sets`: values of sensitive entries by their variable (`--set pin=4321`), and any other
    name a call variable to start with (as `ivrkit console --set`); `keys_for`: the masked keys
    of a state, by state (`--keys-for pin=4321#`). See `ivrkit.replay.keys`."""
    records = recording.records
    pressed = pressed_keys(recording, flow, sets, keys_for)
    inputs = [timed(records, k.digit, k.at, k.index, placeholder=k.placeholder) for k in pressed.keys]
    said, said_notes = spoken(records, sets)
    inputs = sorted([*inputs, *said], key=lambda item: item.at)  # keys and words as they came
    end = next(((i, r) for i, r in enumerate(records) if r.kind == "call_end"), None)
    if end is not None and end[1].data.get("ended_by") == "caller_hangup":
        inputs.append(timed(records, None, end[1].t, end[0]))
    stopped_before_start = None
    if end is not None and end[1].data.get("ended_by") == "stopped":
        reason = str(end[1].data.get("reason") or "stopped")
        if any(r.kind in ("state", "hook") for r in records[:end[0]]):  # it had begun: stop it at its moment
            inputs.append(timed(records, None, end[1].t, end[0], stop=reason))
        else:
            stopped_before_start = reason
    notes = list(recording.notes) + pressed.notes + said_notes
    if recording.flow_name and recording.flow_name != flow.name:
        notes.append(f"the call was recorded on flow '{recording.flow_name}' and replayed against '{flow.name}'")
    variables = {k: v for k, v in sets.items() if k not in pressed.used and k not in _spoken_into(records)}
    audio, hangs_up, far_notes = far_end(records, flow)
    return Plan(inputs, variables, PromptTimes(records), notes + far_notes, audio, hangs_up, stopped_before_start)


def spoken(records: tuple[Rec, ...], sets: Mapping[str, str]) -> tuple[list[Timed], list[str]]:
    """What the caller said that a state used, to be said again at its time. Words a sensitive
    entry used are masked in the trace: said again as the digits given with `--set INTO=DIGITS`,
    else the replay refuses. Utterances the call dropped (a key won, nobody listened) are not
    replayed: they changed nothing."""
    out: list[Timed] = []
    dropped = 0
    for i, r in enumerate(records):
        if r.kind != "speech":
            continue
        if "consumed" not in r.data:
            dropped += 1
            continue
        text = str(r.data.get("text", ""))
        if r.data.get("masked"):
            into = _entry_into(records, i)
            if into is None or into not in sets:
                raise ReplayError(f"state '{r.state}': the caller said a sensitive entry, masked in the trace; give it "
                                  f"with --set {into or 'NAME'}=DIGITS")
            text = sets[into]
        out.append(timed(records, None, r.t, i, said=text))
    notes = [f"{dropped} utterance(s) the call dropped (a key won, or nothing listened) are not replayed"] if dropped else []
    return out, notes


def _entry_into(records: tuple[Rec, ...], index: int) -> str | None:
    """The variable of the entry the speech record at `index` ended (its `collect` record)."""
    for r in records[index + 1:index + 4]:
        if r.kind == "collect":
            return str(r.data.get("into"))
    return None


def _spoken_into(records: tuple[Rec, ...]) -> set[str]:
    return {into for i, r in enumerate(records) if r.kind == "speech" and r.data.get("masked")
            and (into := _entry_into(records, i)) is not None}
