"""ivrkit.voice.cache: the prompt cache over the real eSpeak NG voice."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivrkit.errors import AudioFileError
from ivrkit.voice.audio import Pcm, read_wav
from ivrkit.voice.cache import PromptCache, bake_texts, is_fixed_text
from ivrkit.voice.speech import EspeakVoice


@dataclass(frozen=True)
class CountingVoice(EspeakVoice):
    """The real voice, recording each text it was asked to synthesise."""

    calls: list[str] = field(default_factory=list, compare=False)

    def synthesize(self, text: str) -> Pcm:
        self.calls.append(text)
        return super().synthesize(text)


def test_miss_bakes_a_wav_and_a_hit_does_not_bake_again(tmp_path: Path) -> None:
    voice = CountingVoice()
    cache = PromptCache(tmp_path / "prompts")
    assert cache.get("Welcome to Acme.", voice) is None
    path = cache.bake("Welcome to Acme.", voice)
    assert path.parent == tmp_path / "prompts" and path.suffix == ".wav"
    assert voice.calls == ["Welcome to Acme."]
    pcm = read_wav(path)
    assert pcm.sample_rate == 22050 and pcm.duration > 0.5
    assert cache.bake("Welcome to Acme.", voice) == path
    assert cache.get("Welcome to Acme.", voice) == path
    assert voice.calls == ["Welcome to Acme."]  # the hit did not synthesise
    assert [p.name for p in (tmp_path / "prompts").iterdir()] == [path.name]  # no temp files left


def test_key_depends_on_text_voice_and_rate(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    base = cache.path_for("Press one.", EspeakVoice())
    assert cache.path_for("Press one.", EspeakVoice("en-us")) == base
    assert cache.path_for("Press one!", EspeakVoice()) != base
    assert cache.path_for("Press one.", EspeakVoice("en-gb")) != base
    assert cache.path_for("Press one.", EspeakVoice(rate=200)) != base


def test_bake_texts_skips_templates_and_duplicates(tmp_path: Path) -> None:
    voice = CountingVoice()
    texts = [
        "For balances press 1.",
        "Your balance is {balance}.",
        "For balances press 1.",
        "Braces {{like this}} are literal.",
        "   ",
        "Goodbye.",
    ]
    paths = bake_texts(texts, voice, tmp_path)
    assert voice.calls == ["For balances press 1.", "Braces {{like this}} are literal.", "Goodbye."]
    assert len(paths) == 3 and len(set(paths)) == 3
    assert all(p.is_file() for p in paths)
    # a second run (e.g. `ivrkit prompts bake` again) bakes nothing
    assert bake_texts(texts, voice, tmp_path) == paths
    assert len(voice.calls) == 3


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("Press 1.", True),
        ("Hello {name}.", False),
        ("{{not a field}}", True),
        ("broken { brace", False),
        ("", False),
    ],
)
def test_is_fixed_text(text: str, fixed: bool) -> None:
    assert is_fixed_text(text) is fixed


def test_unwritable_cache_dir_names_the_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(AudioFileError, match="not-a-dir.*cannot create the prompt cache folder"):
        PromptCache(blocker / "sub").bake("Hello.", EspeakVoice())


def test_prompt_pcm_joins_text_digits_audio_and_silence(tmp_path: Path) -> None:
    from ivrkit.prompts import PromptPart
    from ivrkit.voice.audio import dominant_frequency, tone, write_wav
    from ivrkit.voice.cache import prompt_pcm

    write_wav(tmp_path / "beep.wav", tone(1000.0, 0.4, sample_rate=8000))
    voice = CountingVoice()
    cache = PromptCache(tmp_path / "cache")
    cache.bake("Your code is", voice)
    parts = [
        PromptPart("text", "Your code is"),
        PromptPart("digits", "12#"),
        PromptPart("silence", "0.5"),
        PromptPart("audio", "beep.wav"),
    ]
    pcm = prompt_pcm(parts, voice, sample_rate=16000, cache=cache, base_dir=tmp_path)
    assert pcm.sample_rate == 16000
    # the cached text was read back, only the digits were synthesised (and not stored)
    assert voice.calls == ["Your code is", "1, 2, pound"]
    assert len(list((tmp_path / "cache").iterdir())) == 1
    text_len = read_wav(cache.path_for("Your code is", voice)).duration
    digits_len = EspeakVoice().synthesize("1, 2, pound").duration
    assert pcm.duration == pytest.approx(text_len + digits_len + 0.5 + 0.4, abs=0.01)
    tail = Pcm(pcm.samples[-2 * 6400 :], 16000)
    assert dominant_frequency(tail) == pytest.approx(1000.0, abs=5)
    gap_start = round((text_len + digits_len) * 16000) + 80
    assert not Pcm(pcm.samples[2 * gap_start : 2 * (gap_start + 7000)], 16000).array().any()
    with pytest.raises(AudioFileError, match="nope.wav: no such audio file"):
        prompt_pcm([PromptPart("audio", "nope.wav")], voice, sample_rate=16000, base_dir=tmp_path)
