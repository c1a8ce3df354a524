"""ivrkit.livekit.tts through livekit-agents' own `TTS.synthesize()` API.

The primaries used for the fallback tests are real `tts.TTS` subclasses (as livekit's own
tests/fake_tts.py): one speaks a tone, one fails before any audio, one fails halfway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Never

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession, tts, utils
from livekit.agents._exceptions import APIConnectionError, APIError
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.voice import io

from ivrkit.audio import Pcm, dominant_frequency, tone
from ivrkit.livekit.tts import EspeakTTS, FallbackTTS, mask_digit_runs, pcm_frames, pcm_to_frames
from ivrkit.speech import EspeakVoice

NO_RETRY = APIConnectOptions(max_retry=0)


def _pcm(frame: rtc.AudioFrame) -> Pcm:
    return Pcm(frame.data.tobytes(), frame.sample_rate)


class ToneTTS(tts.TTS[Never]):
    """A primary that 'speaks' a 440 Hz tone at 16 kHz, optionally failing after `fail_after`."""

    def __init__(self, *, fail_before: bool = False, fail_after: float | None = None,
                 num_channels: int = 1) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=16000,
                         num_channels=num_channels)
        self.fail_before = fail_before
        self.fail_after = fail_after
        self.requests: list[str] = []

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ToneStream:
        return ToneStream(tts=self, input_text=text, conn_options=conn_options)


class ToneStream(tts.ChunkedStream):
    _tts: ToneTTS

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        self._tts.requests.append(self._input_text)
        output_emitter.initialize(request_id=utils.shortuuid(), sample_rate=16000, num_channels=1,
                                  mime_type="audio/pcm")
        if self._tts.fail_before:
            raise APIConnectionError("cloud TTS unreachable")
        if self._tts.fail_after is not None:
            output_emitter.push(tone(440.0, self._tts.fail_after).samples)
            output_emitter.flush()
            # Let the emitter hand that audio downstream before failing, as a network stream
            # failing after some chunks does (yields to the loop only; no time passes).
            while output_emitter.pushed_duration() < self._tts.fail_after - 1e-6:
                await asyncio.sleep(0)
            raise APIConnectionError("connection reset mid-prompt")
        output_emitter.push(tone(440.0, 1.0).samples)


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


async def test_fallback_uses_primary_when_it_works() -> None:
    primary = ToneTTS()
    wrapper = FallbackTTS(primary)
    frame = await wrapper.synthesize("Press one.").collect()
    assert frame.sample_rate == 16000
    assert frame.duration == pytest.approx(1.0, abs=0.001)
    assert dominant_frequency(_pcm(frame)) == pytest.approx(440.0, abs=3)
    assert primary.requests == ["Press one."]


async def test_primary_failure_logs_redacted_text_and_speaks_on_espeak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary = ToneTTS(fail_before=True)
    wrapper = FallbackTTS(primary, redact=lambda text: text.replace("4321", "****"),
                          retry_primary_after=3600)
    caplog.set_level(logging.WARNING, logger="ivrkit.tts")
    text = "You entered 4321. Press one to confirm."
    frame = await wrapper.synthesize(text).collect()
    expected = EspeakVoice().synthesize(text).duration
    assert frame.sample_rate == 16000  # the fallback's 22,050 Hz resampled to the primary's rate
    assert frame.duration == pytest.approx(expected, abs=0.05)
    assert dominant_frequency(_pcm(frame)) != pytest.approx(440.0, abs=5)
    warnings = [r.getMessage() for r in caplog.records if r.name == "ivrkit.tts"]
    assert len(warnings) == 1
    assert "You entered ****. Press one to confirm." in warnings[0]
    assert "4321" not in caplog.text
    assert "cloud TTS unreachable" in warnings[0]
    # within retry_primary_after, the next prompt goes straight to the fallback
    assert not wrapper.primary_available()
    await wrapper.synthesize("Goodbye.").collect()
    assert primary.requests == [text]


async def test_primary_is_retried_after_the_pause() -> None:
    primary = ToneTTS(fail_before=True)
    wrapper = FallbackTTS(primary, retry_primary_after=0.0)
    await wrapper.synthesize("One.").collect()
    await wrapper.synthesize("Two.").collect()
    assert primary.requests == ["One.", "Two."]


async def test_failure_mid_prompt_replays_the_whole_prompt_on_the_fallback() -> None:
    primary = ToneTTS(fail_after=0.3)
    wrapper = FallbackTTS(primary, retry_primary_after=3600)
    text = "For cards press two."
    frame = await wrapper.synthesize(text, conn_options=NO_RETRY).collect()
    full = EspeakVoice().synthesize(text).duration
    # the caller heard 0.3 s of the primary, then the full prompt in the fallback voice
    assert frame.duration == pytest.approx(0.3 + full, abs=0.05)
    head = Pcm(frame.data.tobytes()[: 2 * 4000], 16000)
    assert dominant_frequency(head) == pytest.approx(440.0, abs=5)


async def test_both_failing_raises() -> None:
    wrapper = FallbackTTS(ToneTTS(fail_before=True), EspeakTTS("xx-nope"))
    with pytest.raises(APIConnectionError, match="fallback TTS .*EspeakTTS failed too"):
        await wrapper.synthesize("hello", conn_options=NO_RETRY).collect()


def test_fallback_defaults_to_espeak_and_checks_channels() -> None:
    assert isinstance(FallbackTTS(ToneTTS()).fallback, EspeakTTS)
    with pytest.raises(ValueError, match="2 channel"):
        FallbackTTS(ToneTTS(num_channels=2))


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


async def test_default_redactor_masks_digits_in_the_fallback_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ivrkit.tts")
    wrapper = FallbackTTS(ToneTTS(fail_before=True))
    await wrapper.synthesize("Your PIN is 9, 8, 7, 6. Press 1 to confirm.").collect()
    assert "Your PIN is ****. Press 1 to confirm." in caplog.text
    assert "9, 8" not in caplog.text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("press 1 or 2", "press 1 or 2"),
        ("PIN 4321 ok", "PIN **** ok"),
        ("1, 2, 3, 4, pound", "****, pound"),
        ("card ending 12-34", "card ending ****"),
    ],
)
def test_mask_digit_runs(text: str, masked: str) -> None:
    assert mask_digit_runs(text) == masked


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
    """The path the worker uses: AgentSession without an LLM, `say(text)` on EspeakTTS and
    `say(text, audio=pcm_frames(...))` for a pre-rendered prompt."""
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
