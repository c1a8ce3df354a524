"""The audio bridge between the caller's room and a dialled leg's room: a track per direction.

Why the agent carries the audio: the two legs sit in separate rooms so that no DTMF data packet
of one reaches the other (`ivrkit.livekit.far_leg`). The agent subscribes to each side's audio
and writes it into a track it publishes in the other room. Samples cross; keys never do — an
RFC 4733 key is a data packet in its own room, not audio.

The one way a key could still cross is as a tone in the audio (a phone sending in-band DTMF).
So while the call takes sensitive input (a `sensitive: true` collect, e.g. a PIN) the far end
hears silence in place of the caller. Why it is decided as each frame is *captured* (`Muting`,
in the sink `caller_frames` hands to the caller's audio), not as it leaves the queue: the last
digit's tone is still queued, or still arriving, when its RFC 4733 event ends the collect; a
decision at send time let that tone through. And muting holds for `HOLD_OVER` after sensitive
input ends, for the tone of a press that arrives after its event.

A bridge ends with either side (the far end hung up: its audio ends) or at `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import NamedTuple

from livekit import rtc

from ivrkit.dtmf_merge import MERGE_WINDOW
from ivrkit.livekit.participant_audio import AudioSink
from ivrkit.voice.audio import Pcm

__all__ = ["BRIDGE_QUEUE", "HOLD_OVER", "Bridge", "Captured", "Muting", "Sink", "caller_frames", "to_source"]

#: Where one direction's audio goes: a track's `AudioSource` in the other room (`to_source`).
Sink = Callable[[Pcm], Awaitable[None]]

#: Caller frames queued for the bridge before the oldest is dropped (real time over completeness).
BRIDGE_QUEUE = 25
#: Muting goes on this long after sensitive input ends. The tone of a press reaches us up to this
#: long after its RFC 4733 event (which is what ends a collect): the same figure that pairs the
#: two halves of one press (`ivrkit.dtmf_merge.MERGE_WINDOW`: 120-220 ms measured on LiveKit SIP,
#: 0.5 s with margin). A tone is 40-100+ ms long, so this also covers the tail of a tone whose
#: start ended an in-band collect. The caller is silent to the far end for half a second more.
HOLD_OVER = MERGE_WINDOW

logger = logging.getLogger("ivrkit.livekit")


class Captured(NamedTuple):
    """A caller frame as captured: `muted` frames are already silence."""

    pcm: Pcm
    muted: bool


class Muting:
    """Whether a caller frame captured at `at` goes to the far end as silence: while
    `sensitive()` is true, and until `hold_over` s after the last frame captured while it was
    (sensitive input ended at most one frame after that one)."""

    def __init__(self, sensitive: Callable[[], bool], hold_over: float = HOLD_OVER) -> None:
        self.sensitive = sensitive
        self.hold_over = hold_over
        self._last_sensitive = -math.inf

    def capture(self, pcm: Pcm, at: float) -> Captured:
        if self.sensitive():
            self._last_sensitive = at
        elif at - self._last_sensitive >= self.hold_over:
            return Captured(pcm, False)
        return Captured(Pcm(bytes(len(pcm.samples)), pcm.sample_rate), True)


async def caller_frames(listen: Callable[[AudioSink], Callable[[], None]], muting: Muting) -> AsyncGenerator[Captured, None]:
    """The caller's audio as an iteration, each frame muted or not as it is handed over by
    `listen` (`ParticipantAudio.listen`: one subscription shared with in-band DTMF and speech input).
    At most `BRIDGE_QUEUE` frames wait; the oldest is dropped for a new one."""
    queue: asyncio.Queue[Captured] = asyncio.Queue(BRIDGE_QUEUE)

    def sink(pcm: Pcm, at: float) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(muting.capture(pcm, at))

    stop = listen(sink)
    try:
        while True:
            yield await queue.get()
    finally:
        stop()


class Bridge:
    """Copies `caller` into `to_far` and `far` into `to_caller` until `close()` or either ends."""

    def __init__(self, caller: AsyncGenerator[Captured, None], to_far: Sink,
                 far: AsyncGenerator[Pcm, None], to_caller: Sink) -> None:
        self.frames = [0, 0]  # frames carried caller -> far end, far end -> caller
        self.muted_frames = 0  # of the first: caller frames the far end got as silence (sensitive input)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._pump(self._unwrap(caller), to_far, "caller -> far end", 0)),
                       loop.create_task(self._pump(far, to_caller, "far end -> caller", 1))]
        for task in self._tasks:
            task.add_done_callback(self._one_ended)

    @property
    def ended(self) -> bool:
        """True once either direction ended (or `close()` ran): the bridge carries nothing."""
        return any(task.done() for task in self._tasks)

    async def _unwrap(self, caller: AsyncGenerator[Captured, None]) -> AsyncGenerator[Pcm, None]:
        try:
            async for frame in caller:
                if frame.muted and len(frame.pcm.samples) >= 2:
                    self.muted_frames += 1  # counted as it goes out: a frame dropped in the queue is not
                yield frame.pcm
        finally:
            await caller.aclose()

    async def _pump(self, frames: AsyncGenerator[Pcm, None], out: Sink, what: str, index: int) -> None:
        try:
            async for pcm in frames:
                if len(pcm.samples) < 2:
                    continue
                await out(pcm)
                self.frames[index] += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # one side left or its track ended: the bridge ends with it
            logger.info("bridge %s ended: %s", what, e)
        finally:
            with contextlib.suppress(Exception):
                await frames.aclose()

    def _one_ended(self, task: asyncio.Task[None]) -> None:
        """Either side's end is the bridge's: the other direction stops too (its subscription
        is given back) rather than carrying audio to or from a party who left."""
        for other in self._tasks:
            if other is not task:
                other.cancel()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def to_source(source: rtc.AudioSource) -> Sink:
    """A sink that plays each frame on `source` (waits while its queue is full: real time)."""
    async def sink(pcm: Pcm) -> None:
        n = len(pcm.samples) // 2
        await source.capture_frame(rtc.AudioFrame(pcm.samples[:n * 2], pcm.sample_rate, 1, n))
    return sink
