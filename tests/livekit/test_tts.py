"""ivrkit.livekit.tts through livekit-agents' own `TTS.synthesize()` API and `AgentSession`."""

from __future__ import annotations

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession, tts
from livekit.agents._exceptions import APIError
from livekit.agents.types import APIConnectOptions
from livekit.agents.voice import io

from ivrkit.livekit.tts import EspeakTTS, pcm_frames, pcm_to_frames
from ivrkit.voice.audio import Pcm, dominant_frequency, tone
from ivrkit.voice.speech import EspeakVoice

NO_RETRY = APIConnectOptions(max_retry=0)


async def test_espeak_tts_produces_frames_through_livekit_synthesize() -> None:
    text = "For balances press 1. For cards press 2."
    engine = EspeakTTS()
    assert (engine.sample_rate, engine.num_channels, engine.capabilities.streaming) == (22050, 1, False)
    assert engine.provider == "espeak-ng" and engine.model == "en-us"
    metrics: list[object] = []
    engine.on("metrics_collected", metrics.append)
    events = []
    async with engine.synthesize(text) as stream:
        async for ev in stream:
            events.append(ev)
    assert len(events) > 1
    assert all(ev.frame.sample_rate == 22050 and ev.frame.num_channels == 1 for ev in events)
    assert events[-1].is_final and not any(ev.is_final for ev in events[:-1])
    total = sum(ev.frame.duration for ev in events)
    assert total == pytest.approx(EspeakVoice().synthesize(text).duration, abs=0.03)  # eSpeak jitter
    assert len(metrics) == 1


async def test_espeak_tts_collect_and_voice_choice() -> None:
    frame = await EspeakTTS("de", rate=140).synthesize("Willkommen bei Acme.").collect()
    assert frame.duration > 0.8
    assert np.abs(np.frombuffer(frame.data, dtype=np.int16)).max() > 3000


async def test_espeak_tts_bad_voice_is_a_non_retryable_api_error() -> None:
    engine = EspeakTTS("xx-nope")
    errors: list[tts.TTSError] = []
    engine.on("error", errors.append)
    with pytest.raises(APIError, match="unknown voice"):
        await engine.synthesize("hello").collect()
    assert len(errors) == 1 and errors[0].recoverable is False


async def test_espeak_tts_through_stream_adapter_as_agent_session_uses_it() -> None:
    """AgentSession feeds a non-streaming TTS sentence by sentence through StreamAdapter."""
    adapter = tts.StreamAdapter(tts=EspeakTTS())
    sentences = [
        "Welcome to the Acme bank telephone service.",
        "For balances press 1, for cards press 2.",
    ]
    async with adapter.stream(conn_options=NO_RETRY) as stream:
        stream.push_text(" ".join(sentences))
        stream.end_input()
        events = [ev async for ev in stream]
    total = sum(ev.frame.duration for ev in events)
    voice = EspeakVoice()
    expected = sum(voice.synthesize(s).duration for s in sentences)
    assert total == pytest.approx(expected, abs=0.05)
    assert {ev.frame.sample_rate for ev in events} == {22050}
    await adapter.aclose()


async def test_pcm_frames_cover_the_whole_prompt() -> None:
    pcm = tone(600.0, 0.513, sample_rate=48000)
    frames = list(pcm_to_frames(pcm, 20))
    assert all(f.samples_per_channel == 960 and f.sample_rate == 48000 for f in frames)
    assert len(frames) == 26
    joined = b"".join(f.data.tobytes() for f in frames)
    assert joined[: len(pcm.samples)] == pcm.samples
    async_frames = [f async for f in pcm_frames(pcm, 10)]
    assert sum(f.samples_per_channel for f in async_frames) == 52 * 480


class CaptureOutput(io.AudioOutput):
    """An audio sink that keeps every frame and reports playout done at each flush."""

    def __init__(self) -> None:
        super().__init__(label="capture", capabilities=io.AudioOutputCapabilities(pause=False),
                         sample_rate=16000)
        self.frames: list[rtc.AudioFrame] = []
        self._segment = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames.append(frame)
        self._segment += frame.duration

    def flush(self) -> None:
        super().flush()
        played, self._segment = self._segment, 0.0
        self.on_playback_finished(playback_position=played, interrupted=False)

    def clear_buffer(self) -> None:
        played, self._segment = self._segment, 0.0
        self.on_playback_finished(playback_position=played, interrupted=True)


async def test_agent_session_says_prompts_with_espeak_and_prerendered_frames() -> None:
    """What a team's own livekit-agents agent can do with these: AgentSession without an LLM,
    `say(text)` on EspeakTTS and `say(text, audio=pcm_frames(...))` for a baked prompt.
    (ivrkit's worker synthesizes prompts itself: `ivrkit.livekit.prompt_audio` and `player`.)"""
    out = CaptureOutput()
    session: AgentSession[None] = AgentSession(
        tts=EspeakTTS(), vad=None, turn_handling={"turn_detection": "manual"}
    )
    session.output.audio = out
    await session.start(Agent(instructions="ivr"))
    try:
        text = "For balances press 1."
        await session.say(text, add_to_chat_ctx=False).wait_for_playout()
        spoken = sum(f.duration for f in out.frames)
        assert {f.sample_rate for f in out.frames} == {16000}
        assert spoken == pytest.approx(EspeakVoice().synthesize(text).duration, abs=0.03)
        first = len(out.frames)
        prerendered = tone(440.0, 0.5, sample_rate=16000)
        await session.say(text, audio=pcm_frames(prerendered), add_to_chat_ctx=False).wait_for_playout()
        played = out.frames[first:]
        assert sum(f.duration for f in played) == pytest.approx(0.5, abs=0.001)
        heard = Pcm(b"".join(f.data.tobytes() for f in played), 16000)
        assert dominant_frequency(heard) == pytest.approx(440.0, abs=3)
    finally:
        await session.aclose()
