"""Any livekit-agents STT plugin as the call's recogniser (`stt: livekit.plugins.deepgram:STT`).

Why an adapter and not the plugin inside the call: the call speaks the recognition port
(`ivrkit.voice.listen`: frames in, `SpeechStarted` / `Speech` out, one utterance at a time);
a plugin speaks livekit-agents' `RecognizeStream` (frames pushed, `SpeechEvent`s read). This
maps one onto the other: `START_OF_SPEECH` → `SpeechStarted`, `FINAL_TRANSCRIPT` → `Speech`
with its text and confidence. The plugin does its own endpointing and hears free speech: the
call matches its text against the state's words or digits (`ivrkit.spoken`), as it does the
offline recogniser's. Only streaming plugins qualify — a batch one needs a VAD in front
(`stt.StreamAdapter`), which is the flow author's factory to build.

One stream per listening state, in the state's `language` (the flow's setting), closed when the
state stops listening; what it says after that is dropped by `Hearing`. Closing a stream is
asynchronous (the plugin may flush to its service) while the port's `close()` is not: each close
runs on a task the recogniser keeps, and the call's end awaits them all (`aclose`, bounded), so
no task of a call outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from livekit import rtc
from livekit.agents import NOT_GIVEN, stt

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.clock import Clock
from ivrkit.voice.audio import Pcm
from ivrkit.voice.listen import HeardEmit

__all__ = ["PluginRecognizer"]

logger = logging.getLogger("ivrkit.livekit")

#: Seconds the call's end waits for its STT streams to close before cancelling what is left.
CLOSE_LIMIT = 2.0


class PluginRecognizer:
    """A streaming livekit-agents STT as a `Recognizer` (see the module docstring)."""

    sample_rate = 16000

    def __init__(self, plugin: stt.STT[Any], clock: Clock) -> None:
        if not plugin.capabilities.streaming:
            raise TypeError(f"{type(plugin).__name__} does not stream: wrap it in livekit.agents.stt.StreamAdapter "
                            "with a VAD in the factory the flow names")
        self.plugin = plugin
        self.clock = clock
        self._closing: set[asyncio.Task[None]] = set()  # streams of ended states, still closing

    def start(self, request: Listen, emit: HeardEmit) -> PluginRecognition:
        return PluginRecognition(self.plugin.stream(language=request.language or NOT_GIVEN), emit, self.clock,
                                 self._closing)

    async def aclose(self, limit: float = CLOSE_LIMIT) -> None:
        """Wait for every stream of this call to finish closing; after `limit` seconds the rest
        are cancelled (and awaited), so nothing is left pending when the call's loop moves on."""
        if not self._closing:
            return
        _, late = await asyncio.wait(set(self._closing), timeout=limit)
        for task in late:
            task.cancel()
        if late:
            logger.warning("%d STT stream(s) did not close within %g s: cancelled", len(late), limit)
            await asyncio.gather(*late, return_exceptions=True)


class PluginRecognition:
    """One listening state's stream: frames pushed, its events read on a task."""

    def __init__(self, stream: stt.RecognizeStream, emit: HeardEmit, clock: Clock,
                 closing: set[asyncio.Task[None]]) -> None:
        self._stream = stream
        self._closing = closing  # the recogniser's: its `aclose` awaits this stream's close
        self._emit = emit
        self._clock = clock
        self._speaking = False
        self._closed = False
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="ivrkit-stt")

    def feed(self, pcm: Pcm, at: float) -> None:
        if not self._closed:
            self._stream.push_frame(rtc.AudioFrame(pcm.samples, pcm.sample_rate, 1, pcm.num_samples))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reader.cancel()
        task = asyncio.get_running_loop().create_task(self._aclose(), name="ivrkit-stt-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _aclose(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        try:
            await self._stream.aclose()
        except Exception as e:  # a stream that fails to close is gone either way
            logger.debug("closing an STT stream failed: %r", e)

    async def _read(self) -> None:
        try:
            async for event in self._stream:
                self._event(event)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the plugin failed: the state keeps its keys, and its timers run
            logger.error("the STT plugin failed: %s: %s", type(e).__name__, e)

    def _event(self, event: Any) -> None:
        if self._closed:
            return
        if event.type == stt.SpeechEventType.START_OF_SPEECH and not self._speaking:
            self._speaking = True
            self._emit(SpeechStarted(self._clock.now()))
        elif event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
            best = event.alternatives[0]
            self._speaking = False
            self._emit(Speech(best.text, self._clock.now(), best.confidence or None))
