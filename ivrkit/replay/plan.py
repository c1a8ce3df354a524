"""What a replay will do: the inputs to give, when, and what to tell the reader about them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivrkit.flow.model import Flow
from ivrkit.replay.far_end import far_end
from ivrkit.replay.keys import pressed_keys
from ivrkit.replay.recording import Recording
from ivrkit.replay.timing import PromptTimes, Timed, timed

if TYPE_CHECKING:
    from ivrkit.voice.audio import Pcm


@dataclass(frozen=True, slots=True)
class Plan:
    """The caller's inputs in order (keys, then the hang-up if the caller hung up), the call
    variables to start with, the prompts' recorded durations, and notes for the report."""

    inputs: list[Timed]
    variables: dict[str, str]
    prompt_times: PromptTimes
    notes: list[str]
    far_end: Pcm | None = None  # what a dialled party says, rebuilt from the amd record
    far_end_hangs_up: bool = False


def plan(recording: Recording, flow: Flow, sets: Mapping[str, str], keys_for: Mapping[str, str]) -> Plan:
    """`sets`: values of sensitive entries by their variable (`--set pin=4321`), and any other
    name a call variable to start with (as `ivrkit console --set`); `keys_for`: the masked keys
    of a state, by state (`--keys-for pin=4321#`). See `ivrkit.replay.keys`."""
    records = recording.records
    pressed = pressed_keys(recording, flow, sets, keys_for)
    inputs = [timed(records, k.digit, k.at, k.index, placeholder=k.placeholder) for k in pressed.keys]
    end = next(((i, r) for i, r in enumerate(records) if r.kind == "call_end"), None)
    if end is not None and end[1].data.get("ended_by") == "caller_hangup":
        inputs.append(timed(records, None, end[1].t, end[0]))
    notes = list(recording.notes) + pressed.notes
    if recording.flow_name and recording.flow_name != flow.name:
        notes.append(f"the call was recorded on flow '{recording.flow_name}' and replayed against '{flow.name}'")
    variables = {k: v for k, v in sets.items() if k not in pressed.used}
    audio, hangs_up, far_notes = far_end(records, flow)
    return Plan(inputs, variables, PromptTimes(records), notes + far_notes, audio, hangs_up)
