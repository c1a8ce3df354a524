"""Who answered a dial: the far end's first seconds through the AMD detector, then its beep.

Why here and not in an adapter: the decision is engine logic. It runs the same on the virtual
clock of a FlowTester (scripted far-end audio) and on a real SIP leg (the LiveKit adapter's
`dialled_audio`), so a flow's `amd:` branch is tested offline exactly as it runs.

Time: the detectors count audio time (the frames' lengths), as Asterisk does. The clock only
bounds the wait, for a far end that sends no audio or sends it slower than real time:
`total_analysis_time` plus `GRACE`, then the result is `unsure` (`no_audio` if nothing came).

The beep detector hears every frame from the answer on. A beep heard before the energy rules
decide settles it as `machine` (cause `beep`): a short "leave a message" and its beep would
otherwise end in silence that the rules read as `human`. With `wait_for_beep`, a `machine`
keeps listening until its beep has ended, for at most that long on the clock.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivrkit.clock import Clock
from ivrkit.errors import HookTimeout
from ivrkit.flow.model import Amd
from ivrkit.hooks import run_limited
from ivrkit.voice.amd import AmdResult, AnsweringMachineDetector

if TYPE_CHECKING:
    from ivrkit.voice.audio import Pcm
    from ivrkit.voice.beep import Beep, BeepDetector

#: Clock seconds allowed beyond the analysis time for the audio to arrive (media jitter).
GRACE = 2.0


@dataclass(frozen=True, slots=True)
class Answered:
    """The detector's result; `beep`: the beep heard (None: none, or not listened for)."""

    amd: AmdResult
    beep: Beep | None = None
    first_audio: float | None = None  # clock seconds from listening to the first audio (None: none came)

    def variables(self, spec: Amd) -> dict[str, object]:
        out: dict[str, object] = {spec.into: self.amd.outcome, f"{spec.into}_cause": self.amd.cause}
        if spec.wait_for_beep is not None:
            out[f"{spec.into}_beep"] = self.beep is not None and self.beep.end_ms is not None
        return out

    def record(self) -> dict[str, object]:
        """For the trace: what was decided, when in the audio and on what evidence."""
        r = self.amd
        out: dict[str, object] = {"outcome": r.outcome, "cause": r.cause, "at_ms": r.at_ms, "words": r.words,
                                  "voice_ms": r.voice_ms}
        if self.first_audio is not None:
            out["first_audio_ms"] = round(self.first_audio * 1000)
        if self.beep is not None:
            out["beep"] = {"hz": round(self.beep.hz), "start_ms": self.beep.start_ms, "end_ms": self.beep.end_ms}
        return out


async def answered_by(audio: AsyncGenerator[Pcm, None], spec: Amd, clock: Clock) -> Answered:
    """Listen to `audio` (a dialled leg, from its answer) and say who answered. Closes `audio`
    when done, which stops the adapter listening."""
    from ivrkit.voice.beep import BeepDetector  # numpy: loaded only by calls that listen

    amd = AnsweringMachineDetector(spec.settings)
    beep = BeepDetector()
    first: list[float] = []
    async with aclosing(audio) as frames:
        limit = spec.settings.total_analysis_time / 1000 + GRACE
        try:
            result = await run_limited(_decide(frames, amd, beep, clock, first), clock=clock, timeout=limit)
        except HookTimeout:
            result = amd.give_up()
        if result.outcome == "machine" and spec.wait_for_beep is not None and beep.ended is None:
            try:
                await run_limited(_until_beep(frames, beep), clock=clock, timeout=spec.wait_for_beep)
            except HookTimeout:
                pass
        return Answered(result, beep.ended or beep.heard, first[0] if first else None)


async def _decide(frames: AsyncIterator[Pcm], amd: AnsweringMachineDetector, beep: BeepDetector, clock: Clock,
                  first: list[float]) -> AmdResult:
    start = clock.now()
    async for pcm in frames:
        if not first:
            first.append(clock.now() - start)
        beep.feed(pcm.samples, pcm.sample_rate)  # every frame, so its audio time stays the detector's
        result = amd.feed(pcm.samples, pcm.sample_rate)
        if result is not None:
            return result
        if beep.heard is not None:
            return amd.decide_machine("beep")
    return amd.hangup()


async def _until_beep(frames: AsyncIterator[Pcm], beep: BeepDetector) -> None:
    async for pcm in frames:
        if beep.feed(pcm.samples, pcm.sample_rate) is not None:
            return
