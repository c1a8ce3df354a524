"""The audio bridge between the caller's room and a dialled leg's room: a track per direction.

Why the agent carries the audio: the two legs sit in separate rooms so that no DTMF data packet
of one reaches the other (`ivrkit.livekit.far_leg`). The agent subscribes to each side's audio
and writes it into a track it publishes in the other room. Samples cross; keys never do — an
RFC 4733 key is a data packet in its own room, not audio.

The one way a key could still cross is as a tone in the audio (a phone sending in-band DTMF).
So while the call takes sensitive input (`muted()` is true: a `sensitive: true` collect) the far
end hears silence in place of the caller — guarded at run time, frame by frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from livekit import rtc

from ivrkit.voice.audio import Pcm

__all__ = ["Bridge", "Sink", "to_source"]

#: Where one direction's audio goes: a track's `AudioSource` in the other room (`to_source`).
Sink = Callable[[Pcm], Awaitable[None]]

logger = logging.getLogger("ivrkit.livekit")


class Bridge:
    """Copies `caller` into `to_far` and `far` into `to_caller` until `close()` or an end."""

    def __init__(self, caller: AsyncGenerator[Pcm, None], to_far: Sink,
                 far: AsyncGenerator[Pcm, None], to_caller: Sink, muted: Callable[[], bool]) -> None:
        self._muted = muted
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._pump(caller, to_far, "caller -> far end", mute=True)),
                       loop.create_task(self._pump(far, to_caller, "far end -> caller", mute=False))]
        self.frames = [0, 0]  # frames carried caller -> far end, far end -> caller
        self.muted_frames = 0  # caller frames sent to the far end as silence (sensitive input)

    async def _pump(self, frames: AsyncGenerator[Pcm, None], out: Sink, what: str, *, mute: bool) -> None:
        index = 0 if mute else 1
        try:
            async for pcm in frames:
                if len(pcm.samples) < 2:
                    continue
                if mute and self._muted():
                    pcm = Pcm(bytes(len(pcm.samples)), pcm.sample_rate)
                    self.muted_frames += 1
                await out(pcm)
                self.frames[index] += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # one side left or its track ended: the bridge ends with it
            logger.info("bridge %s ended: %s", what, e)
        finally:
            with contextlib.suppress(Exception):
                await frames.aclose()

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
