"""ivrkit.voice.dtmf_tones: the in-band DTMF detector against the receiver rules of ITU-T Q.24
(durations, frequency tolerance, twist, level, interruptions, noise, talk-off on speech)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from ivrkit.voice.audio import Pcm, silence
from ivrkit.voice.dtmf_tones import (
    HOP,
    KEYPAD,
    DtmfDetector,
    ToneKey,
    dtmf_tone,
    goertzel_bins,
    key_frequencies,
)

RATE = 8000
KEYS = "".join(KEYPAD)


def _detect(*parts: Pcm, chunk: int = 160, rate: int = RATE) -> list[ToneKey]:
    audio = np.concatenate([p.array() for p in parts] + [silence(0.1, sample_rate=rate).array()])
    detector = DtmfDetector(rate)
    found: list[ToneKey] = []
    for i in range(0, len(audio), chunk):
        found += detector.feed(audio[i:i + chunk])
    return found


def _digits(*parts: Pcm, **kw: int) -> str:
    return "".join(k.digit for k in _detect(*parts, **kw))


def _lead(samples: int, rate: int = RATE) -> Pcm:
    return Pcm(b"\0\0" * samples, rate)


def test_goertzel_bins_are_the_goertzel_recursion() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(160)
    for f in (697.0, 1633.0, 1394.0):
        w = 2 * np.pi * f / RATE
        s1 = s2 = 0.0
        for sample in x:  # the textbook recursion, then its last step as a complex value
            s1, s2 = sample + 2 * np.cos(w) * s1 - s2, s1
        y = s1 - np.exp(-1j * w) * s2  # y = e^{jw(N-1)} X(f)
        expected = y * np.exp(-1j * w * (len(x) - 1))
        got = goertzel_bins(x[np.newaxis, :], [f], RATE)[0, 0]
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("digit", list(KEYS))
def test_every_key_is_heard_once(digit: str) -> None:
    assert _digits(_lead(400), dtmf_tone(digit, 0.06)) == digit


def test_a_key_string_with_q24_timing_comes_out_whole() -> None:
    parts = []
    for d in "0123456789*#ABCD11":
        parts += [dtmf_tone(d, 0.04), silence(0.04, sample_rate=RATE)]  # 40 ms on, 40 ms off
    assert _digits(*parts) == "0123456789*#ABCD11"


@pytest.mark.parametrize("rate", [8000, 16000])
def test_40_ms_is_always_heard_and_23_ms_never_at_every_alignment(rate: int) -> None:
    hop = round(HOP * rate)
    for shift in range(0, hop, max(1, hop // 20)):  # where the tone starts against the 5 ms grid
        for digit in "1D":
            assert _digits(_lead(400 + shift, rate), dtmf_tone(digit, 0.040, sample_rate=rate), rate=rate) == digit
            assert _digits(_lead(400 + shift, rate), dtmf_tone(digit, 0.023, sample_rate=rate), rate=rate) == ""
            assert _digits(_lead(400 + shift, rate), dtmf_tone(digit, 0.020, sample_rate=rate), rate=rate) == ""


@pytest.mark.parametrize("digit", list(KEYS))
def test_frequency_off_by_1_5_percent_is_accepted_and_by_3_5_percent_rejected(digit: str) -> None:
    for offset in (-0.015, 0.015):
        assert _digits(_lead(400), dtmf_tone(digit, 0.06, freq_offset=offset)) == digit, offset
    for offset in (-0.035, 0.035, -0.05, 0.05):
        assert _digits(_lead(400), dtmf_tone(digit, 0.06, freq_offset=offset)) == "", offset


def test_twist_within_q24_is_accepted_and_beyond_it_rejected() -> None:
    for digit in KEYS:
        for twist in (-8.0, 0.0, 4.0):
            assert _digits(_lead(400), dtmf_tone(digit, 0.06, twist_db=twist)) == digit, (digit, twist)
        for twist in (-10.0, 6.0):
            assert _digits(_lead(400), dtmf_tone(digit, 0.06, twist_db=twist)) == "", (digit, twist)


def test_quiet_tones_down_to_minus_33_dbfs_are_heard_and_fainter_ones_are_not() -> None:
    assert _digits(_lead(400), dtmf_tone("5", 0.06, level_dbfs=-33.0)) == "5"
    assert _digits(_lead(400), dtmf_tone("5", 0.06, level_dbfs=-40.0)) == ""
    assert _digits(_lead(400), dtmf_tone("5", 0.06, level_dbfs=-3.0)) == "5"  # loud: two -3 dBFS tones


def test_a_10_ms_break_inside_a_tone_does_not_make_two_keys() -> None:
    tone = dtmf_tone("7", 0.2)
    broken = Pcm(tone.samples[: 2 * 800] + b"\0\0" * 80 + tone.samples[2 * 880:], RATE)
    assert _digits(_lead(400), broken) == "7"


def test_a_third_tone_or_noise_as_loud_as_the_key_is_no_key() -> None:
    key = dtmf_tone("5", 0.1).array().astype(np.float64)
    t = np.arange(len(key)) / RATE
    chord = key + 0.3 * 32767 * np.sin(2 * np.pi * 1000 * t)
    assert _digits(_lead(400), Pcm.from_array(chord.astype(np.int16), RATE)) == ""
    noisy = key + np.random.default_rng(2).normal(0, np.sqrt(np.mean(key ** 2)), len(key))
    assert _digits(_lead(400), Pcm.from_array(noisy.astype(np.int16), RATE)) == ""


def test_a_key_in_noise_20_db_below_it_is_heard() -> None:
    rng = np.random.default_rng(3)
    for digit in KEYS:
        key = dtmf_tone(digit, 0.06).array().astype(np.float64)
        noise = rng.normal(0, np.sqrt(np.mean(key ** 2)) / 10, len(key) + 800)
        mixed = noise.copy()
        mixed[400:400 + len(key)] += key
        assert _digits(Pcm.from_array(np.round(mixed).astype(np.int16), RATE)) == digit


def test_noise_and_silence_alone_are_no_keys() -> None:
    rng = np.random.default_rng(4)
    for level in (30.0, 300.0, 3000.0, 20000.0):
        assert _digits(Pcm.from_array(np.clip(rng.normal(0, level, 10 * RATE), -32768, 32767).astype(np.int16), RATE)) == ""
    assert _digits(silence(5.0, sample_rate=RATE)) == ""


def test_a_tone_pair_with_strong_second_harmonics_is_no_key() -> None:
    """A voice is a harmonic series: the same two tones with their octaves are treated as talk."""
    low, high = key_frequencies("8")
    t = np.arange(round(0.1 * RATE)) / RATE
    x = sum(a * np.sin(2 * np.pi * f * t) for f, a in ((low, 0.2), (high, 0.2), (2 * low, 0.06), (2 * high, 0.06)))
    assert _digits(_lead(400), Pcm.from_array(x, RATE)) == ""


def _band_limited(pcm: Pcm, rate: int) -> npt.NDArray[np.int16]:
    n = pcm.num_samples
    m = round(n * rate / pcm.sample_rate)
    x = np.fft.irfft(np.fft.rfft(pcm.array().astype(np.float64))[: m // 2 + 1], m) * m / n
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def test_espeak_speech_makes_no_keys() -> None:
    from ivrkit.voice.speech import EspeakVoice

    text = ("For balances press 1. For cards press 2. Please enter your four digit PIN, then press pound. "
            "Thank you for calling. Your balance is one thousand two hundred and thirty four dollars.")
    for voice in ("en-us", "en-us+f3", "de"):
        speech = _band_limited(EspeakVoice(voice).synthesize(text), RATE)
        assert _digits(Pcm.from_array(speech, RATE)) == "", voice


def test_chunking_does_not_change_what_is_heard_and_times_are_in_the_audio() -> None:
    parts = (_lead(400), dtmf_tone("4", 0.05), silence(0.05, sample_rate=RATE), dtmf_tone("2", 0.05))
    by_frame = _detect(*parts)
    assert [k.digit for k in by_frame] == ["4", "2"]
    for chunk in (1, 37, 80, 1000):
        assert _detect(*parts, chunk=chunk) == by_frame
    first = by_frame[0]
    assert first.start == pytest.approx(0.05, abs=0.006)  # the tone began 400 samples in
    assert 0.030 <= first.at - first.start <= 0.045  # decided 35-40 ms into the tone


def test_audio_at_another_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        DtmfDetector(8000).feed(silence(0.1, sample_rate=16000))
    with pytest.raises(ValueError, match="at least 8000"):
        DtmfDetector(4000)
