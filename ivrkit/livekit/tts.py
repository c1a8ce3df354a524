"""Prompts as LiveKit audio: the offline eSpeak NG voice as a livekit-agents TTS, a fallback
wrapper for any other TTS, and Pcm -> `rtc.AudioFrame` helpers for pre-rendered prompts.

`EspeakTTS` has the shape of a livekit-agents plugin (`tts.TTS` + a `ChunkedStream` whose
`_run` feeds an `AudioEmitter`), so `AgentSession(tts=EspeakTTS())` and `session.say(text)`
work with no API key and no network.

`FallbackTTS` exists instead of livekit's `tts.FallbackAdapter` because an IVR needs two
things that adapter does not do (livekit-agents 1.8.9, `tts/fallback_adapter.py`):
  * it logs "<label> error, switching to next TTS" without the prompt, while issue 3 wants the
    prompt text logged (through a redactor, so a PIN read back is masked);
  * when the primary fails after some audio went out it keeps the partial prompt and does not
    fall back ("already synthesized of audio, ignoring fallback"); a caller who heard half a
    menu cannot choose, so `FallbackTTS` then speaks the whole text again in the fallback
    voice (under `AgentSession` that text is one sentence: a non-streaming TTS is fed sentence
    by sentence through livekit's StreamAdapter).
Like the adapter it stops asking a failed primary for `retry_primary_after` seconds, so a dead
cloud TTS does not add its timeout to every prompt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Never

from livekit import rtc
from livekit.agents import tts, utils
from livekit.agents._exceptions import APIConnectionError, APIError
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from ivrkit.audio import Pcm, frames
from ivrkit.errors import SpeechError
from ivrkit.speech import DEFAULT_VOICE, ESPEAK_SAMPLE_RATE, EspeakVoice

__all__ = ["EspeakTTS", "FallbackTTS", "mask_digit_runs", "pcm_frames", "pcm_to_frames"]

logger = logging.getLogger("ivrkit.tts")

_DIGIT_RUN = re.compile(r"\d(?:[\s,.\-]*\d){2,}")


def mask_digit_runs(text: str) -> str:
    """The default redactor: any run of 3+ digits, also "1, 2, 3" as spoken_digits writes it,
    becomes `****`. Over-masks (a balance) rather than let a PIN read back reach a log."""
    return _DIGIT_RUN.sub("****", text)


AnyTTS = tts.TTS[Any]
"""Any livekit-agents TTS, whatever extra events it emits."""


class EspeakTTS(tts.TTS[Never]):
    """The offline default voice (eSpeak NG in-process), 22,050 Hz mono, non-streaming.

    Synthesis runs in a worker thread (`asyncio.to_thread`), so a prompt being rendered never
    blocks the event loop that is reading the caller's keys.
    """

    def __init__(
        self, voice: EspeakVoice | str = DEFAULT_VOICE, *, rate: int | None = None
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=ESPEAK_SAMPLE_RATE,
            num_channels=1,
        )
        self._voice = voice if isinstance(voice, EspeakVoice) else EspeakVoice(voice, rate)

    @property
    def voice(self) -> EspeakVoice:
        return self._voice

    @property
    def model(self) -> str:
        return self._voice.voice

    @property
    def provider(self) -> str:
        return "espeak-ng"

    def prewarm(self) -> None:
        """Load libespeak-ng now rather than on the first prompt (about 10 ms)."""
        self._voice.load()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> EspeakChunkedStream:
        return EspeakChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class EspeakChunkedStream(tts.ChunkedStream):
    """One prompt rendered whole in a thread, then pushed as PCM to the emitter."""

    _tts: EspeakTTS

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=ESPEAK_SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        try:
            pcm = await asyncio.to_thread(self._tts.voice.synthesize, self._input_text)
        except SpeechError as e:
            # A local failure: retrying the same text gives the same result.
            raise APIError(str(e), retryable=False) from e
        # No flush(): the base class ends the segment, which marks the real last frame final.
        # (A flush first would add a 10 ms silent "final" marker to every prompt.)
        output_emitter.push(pcm.samples)


class FallbackTTS(tts.TTS[Never]):
    """Speak with `primary`; when it fails, log the prompt and speak it with `fallback`.

    `fallback` defaults to `EspeakTTS()`, which works offline. `redact` is applied to the
    prompt text before it is logged: pass the call's masker so sensitive values never reach a
    log; the default, `mask_digit_runs`, masks every run of 3 or more digits. Output is at
    the primary's sample rate; the fallback's audio is resampled to it.
    """

    def __init__(
        self,
        primary: AnyTTS,
        fallback: AnyTTS | None = None,
        *,
        redact: Callable[[str], str] = mask_digit_runs,
        retry_primary_after: float = 30.0,
    ) -> None:
        self._fallback = fallback if fallback is not None else EspeakTTS()
        if primary.num_channels != self._fallback.num_channels:
            raise ValueError(
                f"primary TTS has {primary.num_channels} channel(s), fallback "
                f"{self._fallback.num_channels}: they must match"
            )
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=primary.sample_rate,
            num_channels=primary.num_channels,
        )
        self._primary = primary
        self._redact = redact
        self._retry_primary_after = retry_primary_after
        self._primary_down_until: float | None = None

    @property
    def primary(self) -> AnyTTS:
        return self._primary

    @property
    def fallback(self) -> AnyTTS:
        return self._fallback

    @property
    def model(self) -> str:
        return self._primary.model

    @property
    def provider(self) -> str:
        return self._primary.provider

    def primary_available(self) -> bool:
        """False while a recent failure keeps requests away from the primary."""
        if self._primary_down_until is None:
            return True
        return asyncio.get_running_loop().time() >= self._primary_down_until

    def _mark_primary_down(self) -> None:
        self._primary_down_until = asyncio.get_running_loop().time() + self._retry_primary_after

    def prewarm(self) -> None:
        self._primary.prewarm()
        self._fallback.prewarm()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> FallbackChunkedStream:
        return FallbackChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._fallback.aclose()


class FallbackChunkedStream(tts.ChunkedStream):
    _tts: FallbackTTS

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        owner = self._tts
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=owner.sample_rate,
            num_channels=owner.num_channels,
            mime_type="audio/pcm",
        )
        # The wrapper retries by switching voice, not by asking the primary again.
        inner_options = dataclasses.replace(self._conn_options, max_retry=0)
        if owner.primary_available():
            try:
                await self._forward(owner.primary, output_emitter, inner_options)
                owner._primary_down_until = None
                return
            except Exception as e:  # any failure of a third-party TTS must not end the call
                owner._mark_primary_down()
                logger.warning(
                    "TTS %s failed (%s: %s); speaking prompt %r with fallback %s",
                    owner.primary.label, type(e).__name__, e,
                    owner._redact(self._input_text), owner.fallback.label,
                )
        try:
            await self._forward(owner.fallback, output_emitter, inner_options)
        except Exception as e:
            raise APIConnectionError(
                f"fallback TTS {owner.fallback.label} failed too: {type(e).__name__}: {e}",
                retryable=False,
            ) from e

    async def _forward(
        self, source: AnyTTS, output_emitter: tts.AudioEmitter, options: APIConnectOptions
    ) -> None:
        resampler = (
            rtc.AudioResampler(input_rate=source.sample_rate, output_rate=self._tts.sample_rate)
            if source.sample_rate != self._tts.sample_rate
            else None
        )
        # Frames go out as they come (no added latency). If this source fails halfway, the
        # caller has heard part of the prompt; the fallback then speaks all of it.
        pushed = False
        async with source.synthesize(self._input_text, conn_options=options) as stream:
            async for ev in stream:
                for frame in resampler.push(ev.frame) if resampler else [ev.frame]:
                    output_emitter.push_frame(frame)
                    pushed = True
        if resampler:
            for frame in resampler.flush():
                output_emitter.push_frame(frame)
                pushed = True
        if not pushed and self._input_text.strip():
            raise APIError(f"{source.label} returned no audio", retryable=False)


def pcm_to_frames(pcm: Pcm, frame_ms: int = 20) -> Iterator[rtc.AudioFrame]:
    """Pre-rendered or recorded audio as fixed-size mono frames (the last padded, not lost)."""
    for chunk in frames(pcm, frame_ms):
        yield rtc.AudioFrame(
            data=chunk.samples,
            sample_rate=chunk.sample_rate,
            num_channels=1,
            samples_per_channel=chunk.num_samples,
        )


async def pcm_frames(pcm: Pcm, frame_ms: int = 20) -> AsyncIterator[rtc.AudioFrame]:
    """The same as an async iterable, the form `AgentSession.say(text, audio=...)` takes."""
    for frame in pcm_to_frames(pcm, frame_ms):
        yield frame
