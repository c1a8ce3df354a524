"""The beep detector: steady tones in the band are beeps, speech, noise and tones outside the
band are not, and the beep's end is where the message may start."""

from __future__ import annotations

import numpy as np
import pytest

from ivrkit.voice.audio import Pcm, concat, resample, silence, tone
from ivrkit.voice.beep import BeepDetector, BeepSettings
from ivrkit.voice.speech import EspeakVoice

RATE = 8000


def feed(pcm: Pcm, settings: BeepSettings | None = None, chunk: int = 320) -> BeepDetector:
    d = BeepDetector(settings)
    for i in range(0, len(pcm.samples), chunk):
        if d.feed(pcm.samples[i:i + chunk], pcm.sample_rate) is not None:
            break
    return d


@pytest.mark.parametrize("hz", [440, 1000, 1400, 1950])
def test_a_beep_in_the_band_is_heard_with_its_start_and_end(hz: float) -> None:
    d = feed(concat([silence(0.3, sample_rate=RATE), tone(hz, 0.5, sample_rate=RATE, amplitude=0.3),
                     silence(0.5, sample_rate=RATE)]))
    assert d.ended is not None
    assert abs(d.ended.hz - hz) < 10
    assert (d.ended.start_ms, d.ended.end_ms) == (300, 800)


def test_heard_before_it_ends_then_ended() -> None:
    d = feed(tone(1000, 1.0, sample_rate=RATE, amplitude=0.3))
    assert d.heard is not None and d.heard.end_ms is None and d.ended is None
    d.feed(silence(0.1, sample_rate=RATE).samples, RATE)
    assert d.ended is not None and d.ended.end_ms == 1000


def test_tones_outside_the_band_too_short_or_too_quiet_are_not_beeps() -> None:
    for audio in (tone(250, 0.5, sample_rate=RATE, amplitude=0.3), tone(2600, 0.5, sample_rate=RATE, amplitude=0.3),
                  tone(1000, 0.08, sample_rate=RATE, amplitude=0.3), tone(1000, 0.5, sample_rate=RATE, amplitude=0.005)):
        d = feed(concat([audio, silence(0.3, sample_rate=RATE)]))
        assert d.heard is None and d.ended is None


def test_a_beep_in_line_noise_is_still_heard() -> None:
    rng = np.random.default_rng(7)
    beep = tone(1000, 0.5, sample_rate=RATE, amplitude=0.3).array().astype(np.float64)
    noisy = np.clip(beep + rng.normal(0, 0.03 * 32767, beep.size), -32767, 32767)
    d = feed(concat([Pcm.from_array(noisy.astype(np.int16), RATE), silence(0.2, sample_rate=RATE)]))
    assert d.ended is not None


def test_noise_and_speech_are_not_beeps() -> None:
    rng = np.random.default_rng(3)
    assert feed(Pcm.from_array(rng.normal(0, 0.1, RATE * 3), RATE)).heard is None
    for voice in ("en-us", "en-gb+f3", "en-us+f2"):
        speech = resample(EspeakVoice(voice).synthesize(
            "Hi, you've reached the Smiths. We're not home, please leave a message after the tone."), RATE)
        assert feed(speech).heard is None, voice


def test_a_changing_tone_ends_the_beep() -> None:
    d = feed(concat([tone(1000, 0.4, sample_rate=RATE, amplitude=0.3), tone(1500, 0.4, sample_rate=RATE, amplitude=0.3)]))
    assert d.ended is not None and abs(d.ended.hz - 1000) < 10 and d.ended.end_ms == 400
