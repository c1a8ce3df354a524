"""Prompt playout on the agent's own audio track, with barge-in that drops the queued audio.

Why our own `rtc.AudioSource` rather than `AgentSession.say(text, audio=...)`: both end in the
same call — LiveKit's room audio output also clears an `AudioSource` queue on interrupt — but
the session adds an input pipeline (it subscribes to and decodes the caller's audio), a chat
context and a speech scheduler that an IVR does not use. Playing frames into a source we own
keeps one small task per call and makes the cut explicit: `stop()` cancels the feeding task
and calls `AudioSource.clear_queue()`, so nothing queued after the key is ever sent. What
remains is the one 10 ms frame WebRTC may have pulled already — within one audio frame, as
issue 3 asks. The time from the key's arrival to the cleared queue is measured per barge-in
(`BargeIn.cut_ms`) and written to the call trace.

Contract (see `ivrkit.channel.Channel`): `play` returns at once; exactly one `on_end` per
prompt (`interrupted=True` when stopped or when it could not be rendered); `play` while a prompt
plays cuts the playing one first, as the console phone does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit import rtc

from ivrkit.audio import Pcm, frames
from ivrkit.prompts import RenderedPrompt

__all__ = ["BargeIn", "PromptPlayer"]

logger = logging.getLogger("ivrkit.livekit")

FRAME_MS = 20
#: How far ahead of real time frames are pushed into the native source. Small, so a barge-in
#: has little to drop; large enough that a busy event loop does not starve the track.
QUEUE_MS = 200


@dataclass(frozen=True, slots=True)
class BargeIn:
    """One cut prompt: which, and how long after the triggering key the queue was cleared."""

    prompt_id: int
    state: str
    cut_ms: float | None  # None when no key preceded the stop (e.g. a hang-up)
    played_ms: float  # audio handed to the track before the cut


class PromptPlayer:
    """Feeds one prompt at a time into `source`. Owned by one call, used on its event loop."""

    def __init__(
        self,
        source: rtc.AudioSource,
        render: Callable[[RenderedPrompt], Awaitable[Pcm]],
        on_end: Callable[[RenderedPrompt, bool], None],
        *,
        now: Callable[[], float],
        on_barge_in: Callable[[BargeIn], None] | None = None,
    ) -> None:
        self.source = source
        self._render = render
        self._on_end = on_end
        self._now = now
        self._on_barge_in = on_barge_in
        self._task: asyncio.Task[None] | None = None
        self._current: RenderedPrompt | None = None
        self._pushed_ms = 0.0
        self._ended: set[int] = set()
        self.last_key_at: float | None = None  # set by the channel when a caller key arrives
        self.closed = False

    @property
    def playing(self) -> RenderedPrompt | None:
        return self._current

    def play(self, prompt: RenderedPrompt) -> None:
        if self.closed:
            return
        if self._current is not None:
            self.stop()
        self._current = prompt
        self._pushed_ms = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run(prompt), name=f"ivrkit-prompt-{prompt.id}")

    def stop(self) -> None:
        prompt = self._current
        if prompt is None:
            return
        self._cut()
        key_at = self.last_key_at
        cut_ms = (self._now() - key_at) * 1000.0 if key_at is not None else None
        if self._on_barge_in is not None:
            self._on_barge_in(BargeIn(prompt.id, prompt.state, cut_ms, self._pushed_ms))
        self._end(prompt, interrupted=True)

    def close(self) -> None:
        """Silence the track and stop for good (the call is over); emits nothing."""
        self.closed = True
        self._cut()

    def _cut(self) -> None:
        self._current = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.source.clear_queue()

    def _end(self, prompt: RenderedPrompt, interrupted: bool) -> None:
        if prompt.id in self._ended or self.closed:
            return
        self._ended.add(prompt.id)
        self._on_end(prompt, interrupted)

    async def _run(self, prompt: RenderedPrompt) -> None:
        try:
            pcm = await self._render(prompt)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logger.error(
                "cannot play prompt %d in state '%s' (%s: %s): %r; the call goes on without it",
                prompt.id, prompt.state, type(e).__name__, e, prompt.log_text,
            )
            if self._current is prompt:
                self._current = None
                self._task = None
            self._end(prompt, interrupted=True)
            return
        for chunk in frames(pcm, FRAME_MS):
            await self.source.capture_frame(
                rtc.AudioFrame(
                    data=chunk.samples, sample_rate=chunk.sample_rate, num_channels=1,
                    samples_per_channel=chunk.num_samples,
                )
            )
            self._pushed_ms += FRAME_MS
        await self.source.wait_for_playout()
        if self._current is prompt:
            self._current = None
            self._task = None
            self._end(prompt, interrupted=False)
