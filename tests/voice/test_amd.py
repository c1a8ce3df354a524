"""The AMD detector on generated and rendered audio: each of Asterisk's causes, its limits,
and that how the audio is chunked never changes the answer."""

from __future__ import annotations

import numpy as np
import pytest

from ivrkit.voice.amd import AmdSettings, AnsweringMachineDetector
from ivrkit.voice.audio import Pcm, concat, resample, silence
from ivrkit.voice.speech import EspeakVoice

RATE = 8000


def voice(ms: int, level: float = 0.1) -> Pcm:
    """Speech-like energy: noise with a mean absolute value well above the threshold."""
    rng = np.random.default_rng(ms)
    return Pcm.from_array(np.clip(rng.normal(0, level, RATE * ms // 1000), -1, 1), RATE)


def gap(ms: int) -> Pcm:
    return silence(ms / 1000, sample_rate=RATE)


def run(*parts: Pcm, settings: AmdSettings | None = None, chunk: int | None = None) -> tuple[str, str, int]:
    audio = concat(parts).samples
    d = AnsweringMachineDetector(settings)
    step = chunk or len(audio)
    result = None
    for i in range(0, len(audio), step):
        result = d.feed(audio[i:i + step], RATE)
        if result is not None:
            break
    assert result is not None, "undecided"
    return result.outcome, result.cause, result.at_ms


def test_a_short_hello_then_silence_is_human_after_the_after_greeting_silence() -> None:
    assert run(gap(300), voice(400), gap(2000)) == ("human", "after_greeting_silence", 300 + 400 + 800)


def test_silence_from_the_start_is_silence_at_initial_silence() -> None:
    assert run(gap(4000)) == ("silence", "initial_silence", 2500)


def test_a_greeting_longer_than_greeting_is_machine() -> None:
    assert run(gap(300), voice(3000)) == ("machine", "long_greeting", 300 + 1500)


def test_three_words_make_a_machine() -> None:
    words = [p for _ in range(4) for p in (voice(200), gap(100))]
    outcome, cause, at = run(gap(300), *words)
    assert (outcome, cause) == ("machine", "max_words")
    assert at == 300 + 2 * 300 + 100  # the third word counts once it has lasted min_word_length


def test_older_asterisk_two_words_setting() -> None:
    words = [p for _ in range(2) for p in (voice(200), gap(100))]
    assert run(gap(300), *words, settings=AmdSettings(maximum_number_of_words=2))[:2] == ("machine", "max_words")
    assert run(gap(300), *words, gap(1000))[:2] == ("human", "after_greeting_silence")


def test_a_word_longer_than_maximum_word_length_is_machine() -> None:
    settings = AmdSettings(maximum_word_length=1000, greeting=3000)
    assert run(gap(300), voice(2000), settings=settings) == ("machine", "max_word_length", 1300)


def test_gaps_shorter_than_between_words_silence_do_not_split_a_word() -> None:
    choppy = [p for _ in range(6) for p in (voice(100), gap(40))]
    outcome, cause, _ = run(gap(300), *choppy, gap(1000), settings=AmdSettings(greeting=5000))
    assert (outcome, cause) == ("human", "after_greeting_silence")


def test_voice_below_the_threshold_is_silence() -> None:
    quiet = voice(1000, level=0.003)  # mean |sample| about 80 < 256
    assert run(quiet, gap(3000))[:2] == ("silence", "initial_silence")
    assert run(quiet, gap(3000), settings=AmdSettings(silence_threshold=50))[:2] != ("silence", "initial_silence")


def test_undecided_after_total_analysis_time_is_unsure() -> None:
    # words of 80 ms never reach min_word_length: no greeting, no word; the blips break the initial silence
    blips = [p for _ in range(40) for p in (voice(80), gap(120))]
    assert run(*blips) == ("unsure", "too_long", 5000)


def test_hangup_and_give_up() -> None:
    d = AnsweringMachineDetector()
    assert d.feed(gap(200).samples, RATE) is None
    assert (d.hangup().outcome, d.hangup().cause) == ("unsure", "hangup")
    assert AnsweringMachineDetector().give_up().cause == "no_audio"
    d = AnsweringMachineDetector()
    d.feed(gap(100).samples, RATE)
    assert d.give_up().cause == "too_long"


def test_the_result_does_not_depend_on_how_the_audio_is_chunked() -> None:
    parts = (gap(300), voice(450), gap(60), voice(300), gap(2000))
    whole = run(*parts)
    for chunk in (2, 160, 320, 333, 1000, 4801):
        assert run(*parts, chunk=chunk) == whole


def test_other_sample_rates_give_the_same_answer() -> None:
    parts = concat((gap(300), voice(440), gap(2000)))
    assert run(parts)[0::2] == ("human", 1540)
    for rate in (16000, 48000):
        d = AnsweringMachineDetector()
        result = d.feed(resample(parts, rate).samples, rate)
        assert result is not None and (result.outcome, result.at_ms) == ("human", 1540)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        AmdSettings(greeting=0)
    with pytest.raises(ValueError, match="whole 20 ms"):
        AnsweringMachineDetector().feed(b"\0\0", 8001)
    d = AnsweringMachineDetector()
    d.feed(b"\0\0" * 80, 8000)
    with pytest.raises(ValueError, match="changed rate"):
        d.feed(b"\0\0" * 80, 16000)


@pytest.mark.parametrize("voice_name", ["en-us", "en-gb+f3"])
def test_rendered_speech(voice_name: str) -> None:
    speak = EspeakVoice(voice_name)
    hello = resample(speak.synthesize("Hello?"), RATE)
    greeting = resample(speak.synthesize(
        "Hi, you've reached Sam. I can't take your call right now, please leave a message after the tone."), RATE)
    assert run(gap(400), hello, gap(5000))[0] == "human"
    assert run(gap(400), greeting, gap(5000))[0] == "machine"
