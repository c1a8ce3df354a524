"""Prompt playout on the agent's own audio track, with barge-in that drops the queued audio.

Why our own `rtc.AudioSource` rather than `AgentSession.say(text, audio=...)`: both end in the
same call — LiveKit's room audio output also clears an `AudioSource` queue on interrupt — but
the session adds an input pipeline (it subscribes to and decodes the caller's audio), a chat
context and a speech scheduler that an IVR does not use. Playing frames into a source we own
keeps one small task per call and makes the cut explicit: `stop()` cancels the feeding task
and calls `AudioSource.clear_queue()`, so nothing queued after the key is ever sent. What
remains is the one 10 ms frame WebRTC may have pulled already — barge-in cuts the prompt
within one audio frame. The time from the key's arrival to the cleared queue is measured per barge-in
(`BargeIn.cut_ms`) and written to the call trace.

Contract (see `ivrkit.channel.Channel`): `play` returns at once; exactly one `on_end` per
prompt (`interrupted=True` when stopped or when it could not be synthesized); `play` while a prompt
plays cuts the playing one first, as the console phone does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit import rtc

from ivrkit.prompts import FilledPrompt
from ivrkit.voice.audio import Pcm, chunks

__all__ = ["BargeIn", "PromptPlayer"]

logger = logging.getLogger("ivrkit.livekit")

#: Prompt audio goes to the native source in chunks this long. Every `capture_frame` is a round
#: trip through livekit's FFI whose answer is handed to every event loop of the process (each
#: call of a thread-executor worker has one): per 20 ms frame that was most of a playing call's
#: CPU. The native source still sends 10 ms packets at real time, so what the caller hears, the
#: start of each prompt and barge-in (the queue is cleared) do not change (bench/prompt_cpu.py,
#: row 13, and the barge-in and audio checks of tests/e2e).
CHUNK_MS = 100
#: How far ahead of real time audio is pushed into the native source: three chunks, so the
#: feeder may be up to 200 ms late before the track runs dry (as with 20 ms frames before). A
#: barge-in clears it: nothing queued is sent after the cut.
QUEUE_MS = 300
#: Push each chunk only when the queue has room for it (`PromptPlayer._pace`); the bench's
#: "before" side turns it off.
PACED = True


@dataclass(frozen=True, slots=True)
class BargeIn:
    """One cut prompt: which, and how long after the triggering key the queue was cleared."""

    prompt_id: int
    state: str
    cut_ms: float | None  # None when no key preceded the stop (e.g. a hang-up)
    played_ms: float  # audio handed to the track before the cut


class PromptPlayer:
    """Feeds one prompt at a time into `source`. Owned by one call, used on its event loop.

    One long-lived feeder task owns `source.capture_frame` and is never cancelled mid-frame:
    the native source rejects a new frame while a cancelled capture is still pending
    ("InvalidState - failed to capture frame"), which is also why livekit-agents' own room
    output feeds its source from a single task. Synthesis runs in a per-prompt task (safe to
    cancel: it does not touch the source). A generation counter tells the feeder that the
    prompt it is feeding was stopped; a frame that slipped into the queue while the feeder was
    inside `capture_frame` is cleared again, so nothing of a cut prompt is sent after the cut.
    """

    def __init__(
        self,
        source: rtc.AudioSource,
        synthesize: Callable[[FilledPrompt], Awaitable[Pcm]],
        on_end: Callable[[FilledPrompt, bool], None],
        *,
        now: Callable[[], float],
        on_barge_in: Callable[[BargeIn], None] | None = None,
    ) -> None:
        self.source = source
        self._synthesize = synthesize
        self._on_end = on_end
        self._now = now
        self._on_barge_in = on_barge_in
        self._gen = 0
        self._current: FilledPrompt | None = None
        self._synth_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Queue[tuple[int, FilledPrompt, Pcm]] = asyncio.Queue()
        self._feeder: asyncio.Task[None] | None = None
        self._pushed_ms = 0.0
        self._ended: set[int] = set()
        self.last_key_at: float | None = None  # set by the channel when a caller key arrives
        self.closed = False

    @property
    def playing(self) -> FilledPrompt | None:
        return self._current

    def play(self, prompt: FilledPrompt) -> None:
        if self.closed:
            return
        if self._current is not None:
            self.stop()
        self._gen += 1
        self._current = prompt
        self._pushed_ms = 0.0
        loop = asyncio.get_running_loop()
        if self._feeder is None:
            self._feeder = loop.create_task(self._feed(), name="ivrkit-prompt-feeder")
        self._synth_task = loop.create_task(self._prepare(prompt, self._gen), name=f"ivrkit-synth-{prompt.id}")

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
        if self._feeder is not None:
            self._feeder.cancel()  # the source is closed right after: a pending frame is moot
            self._feeder = None

    def _cut(self) -> None:
        self._gen += 1
        self._current = None
        if self._synth_task is not None:
            self._synth_task.cancel()
            self._synth_task = None
        self.source.clear_queue()

    def _end(self, prompt: FilledPrompt, interrupted: bool) -> None:
        if prompt.id in self._ended or self.closed:
            return
        self._ended.add(prompt.id)
        self._on_end(prompt, interrupted)

    async def _prepare(self, prompt: FilledPrompt, gen: int) -> None:
        try:
            pcm = await self._synthesize(prompt)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logger.error(
                "cannot play prompt %d in state '%s' (%s: %s): %r; the call goes on without it",
                prompt.id, prompt.state, type(e).__name__, e, prompt.log_text,
            )
            if gen == self._gen:
                self._current = None
                self._end(prompt, interrupted=True)
            return
        if gen == self._gen:
            self._ready.put_nowait((gen, prompt, pcm))

    async def _pace(self) -> None:
        """Wait until the native queue has room for a chunk, so `capture_frame` is answered at
        once: a capture waiting for room keeps an unfiltered subscription to livekit's FFI
        events open, and every event of every call in the process then wakes this call's loop
        (bench row 13). The source's own count of queued audio says how long to wait."""
        over = self.source.queued_duration - (QUEUE_MS - CHUNK_MS) / 1000
        if over > 0:
            await asyncio.sleep(over)

    async def _feed(self) -> None:
        while True:
            gen, prompt, pcm = await self._ready.get()
            if gen != self._gen:
                continue
            try:
                for chunk in chunks(pcm, CHUNK_MS):
                    if PACED:
                        await self._pace()
                    if gen != self._gen:
                        break
                    await self.source.capture_frame(
                        rtc.AudioFrame(
                            data=chunk.samples, sample_rate=chunk.sample_rate, num_channels=1,
                            samples_per_channel=chunk.num_samples,
                        )
                    )
                    if gen != self._gen:
                        self.source.clear_queue()  # the frame that went in during the cut
                        break
                    self._pushed_ms += chunk.num_samples * 1000 / chunk.sample_rate
                else:
                    await self.source.wait_for_playout()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the track is gone (room closed); the call hears nothing more
                logger.warning("prompt %d in state '%s': playout failed (%s: %s)", prompt.id, prompt.state, type(e).__name__, e)
                if gen == self._gen:
                    self._current = None
                    self._end(prompt, interrupted=True)
                continue
            if gen == self._gen and self._current is prompt:
                self._current = None
                self._end(prompt, interrupted=False)
