"""Prompt audio for the worker (ivrkit.livekit.prompt_audio): memo rules and the TTS fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from livekit.agents import tts
from livekit.agents._exceptions import APIConnectionError
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from ivrkit.livekit.prompt_audio import OUTPUT_RATE, PromptAudio
from ivrkit.prompts import FilledPrompt, PromptPart
from ivrkit.voice.audio import dominant_frequency, tone, write_wav
from ivrkit.voice.speech import EspeakVoice


class BrokenCloudTTS(tts.TTS):  # type: ignore[type-arg]
    """A third-party TTS that is down (what a cloud voice does when its API fails)."""

    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=24000, num_channels=1)
        self.attempts: list[str] = []

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.ChunkedStream:
        return _Down(tts=self, input_text=text, conn_options=conn_options)


class _Down(tts.ChunkedStream):
    _tts: BrokenCloudTTS

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        self._tts.attempts.append(self._input_text)
        # retryable, as a connection error is: livekit-agents would try it 3 more times
        raise APIConnectionError("service unavailable", retryable=True)


def prompt(pid: int, *parts: PromptPart, log_text: str = "") -> FilledPrompt:
    return FilledPrompt(id=pid, parts=tuple(parts), log_text=log_text, state="s")


async def test_audio_files_are_read_against_the_flow_folder_at_the_track_rate(tmp_path: Path) -> None:
    write_wav(tmp_path / "t.wav", tone(700, 0.5, sample_rate=16000))
    audio = PromptAudio(base_dir=tmp_path)
    pcm = await audio.synthesize(prompt(1, PromptPart("audio", "t.wav")))
    assert pcm.sample_rate == OUTPUT_RATE
    assert abs(pcm.duration - 0.5) < 0.001
    assert abs(dominant_frequency(pcm) - 700) < 5


async def test_fixed_prompts_are_kept_templated_ones_are_not(tmp_path: Path) -> None:
    write_wav(tmp_path / "t.wav", tone(700, 0.2))
    fixed = (PromptPart("audio", "t.wav"),)
    audio = PromptAudio(base_dir=tmp_path, fixed=frozenset({fixed}))
    first = await audio.synthesize(prompt(1, *fixed))
    assert await audio.synthesize(prompt(2, *fixed)) is first
    filled = (PromptPart("digits", "1234"),)  # e.g. a PIN read back: never kept
    a = await audio.synthesize(prompt(3, *filled))
    b = await audio.synthesize(prompt(4, *filled))
    assert a is not b and abs(a.duration - b.duration) < 0.1  # eSpeak varies slightly run to run


async def test_a_failing_tts_falls_back_to_the_offline_voice_and_logs_only_masked_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audio = PromptAudio(base_dir=tmp_path)
    parts = (PromptPart("text", "Your PIN is"), PromptPart("digits", "4321"))
    with caplog.at_level(logging.WARNING, logger="ivrkit.livekit"):
        pcm = await audio.synthesize(prompt(7, *parts, log_text="Your PIN is ****"), plugin=BrokenCloudTTS())
    assert pcm.duration > 1.0  # spoken by eSpeak NG instead
    assert "Your PIN is ****" in caplog.text and "service unavailable" in caplog.text
    assert "4321" not in caplog.text and "4, 3, 2, 1" not in caplog.text
    offline = await audio.synthesize(prompt(8, *parts))
    assert abs(pcm.duration - offline.duration) < 0.1


async def test_a_failed_plugin_gets_one_attempt_and_a_rest_and_its_stand_in_audio_is_not_kept(
    tmp_path: Path,
) -> None:
    """A dead cloud voice costs one attempt, then prompts go straight to the offline voice; a
    fixed prompt spoken by the stand-in is not remembered as if the plugin had said it."""
    fixed = (PromptPart("text", "Welcome."),)
    audio = PromptAudio(base_dir=tmp_path, fixed=frozenset({fixed}))
    plugin = BrokenCloudTTS()
    first = await audio.synthesize(prompt(1, *fixed), plugin=plugin)
    assert plugin.attempts == ["Welcome."]  # no retries
    second = await audio.synthesize(prompt(2, *fixed), plugin=plugin)
    assert plugin.attempts == ["Welcome."]  # resting: not asked again
    assert first is not second and first.duration > 0.3
    audio._plugin_down_until.clear()  # the rest is over
    await audio.synthesize(prompt(3, *fixed), plugin=plugin)
    assert plugin.attempts == ["Welcome.", "Welcome."]


def test_default_voice_is_offline() -> None:
    assert PromptAudio(base_dir=None).default_voice == EspeakVoice().voice


async def test_prompts_baked_with_a_plugin_are_played_from_the_cache_without_asking_it(tmp_path: Path) -> None:
    """`ivrkit prompts bake --tts SPEC` speaks each fixed text once; a call whose TTS is SPEC
    then plays it from the cache — here the call's plugin is down, and nobody notices."""
    import asyncio

    from ivrkit import cli
    from ivrkit.flow.loader import load_flow
    from ivrkit.livekit.prompt_audio import plugin_cache_key
    from ivrkit.voice.cache import PromptCache

    spec = "ivrkit.livekit.tts:EspeakTTS"
    flow_path = Path(__file__).resolve().parents[2] / "flows" / "bank.yaml"
    assert await asyncio.to_thread(cli.main, ["prompts", "bake", str(flow_path), "--dir", str(tmp_path), "--tts", spec]) == 0
    menu = load_flow(flow_path).states["main"].menu
    assert menu is not None
    text = menu.prompt.parts[0].value
    cache = PromptCache(tmp_path)
    assert cache.get(text, plugin_cache_key(spec)) is not None
    assert cache.get(text, EspeakVoice()) is None  # baked by the plugin, not the offline voice
    audio = PromptAudio(base_dir=tmp_path, cache=cache)
    plugin = BrokenCloudTTS()
    pcm = await audio.synthesize(prompt(1, PromptPart("text", text)), plugin=plugin, plugin_key=spec)
    assert plugin.attempts == [] and pcm.duration > 3.0 and pcm.sample_rate == OUTPUT_RATE
