"""Prompts as LiveKit audio: the offline eSpeak NG voice as a livekit-agents TTS, and
Pcm -> `rtc.AudioFrame` helpers for baked or recorded prompts.

`EspeakTTS` has the shape of a livekit-agents plugin (`tts.TTS` + a `ChunkedStream` whose
`_run` feeds an `AudioEmitter`), so `AgentSession(tts=EspeakTTS())` and `session.say(text)`
work with no API key and no network.

A plugin TTS that fails mid-call is handled where prompts are synthesized
(`ivrkit.livekit.prompt_audio`): the prompt is logged masked and spoken offline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Never

from livekit import rtc
from livekit.agents import tts, utils
from livekit.agents._exceptions import APIError
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from ivrkit.errors import SpeechError
from ivrkit.voice.audio import Pcm, frames
from ivrkit.voice.speech import DEFAULT_VOICE, ESPEAK_SAMPLE_RATE, EspeakVoice

__all__ = ["EspeakTTS", "pcm_frames", "pcm_to_frames"]


class EspeakTTS(tts.TTS[Never]):
    """The offline default voice (eSpeak NG in-process), 22,050 Hz mono, non-streaming.

    Synthesis runs in a worker thread (`asyncio.to_thread`), so a prompt being synthesized never
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
    """One prompt synthesized whole in a thread, then pushed as PCM to the emitter."""

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


def pcm_to_frames(pcm: Pcm, frame_ms: int = 20) -> Iterator[rtc.AudioFrame]:
    """Baked or recorded audio as fixed-size mono frames (the last padded, not lost)."""
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
