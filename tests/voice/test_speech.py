"""ivrkit.voice.speech: the real libespeak-ng from the espeakng-loader wheel, no doubles."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ivrkit.errors import IvrkitError, SpeechError
from ivrkit.voice.audio import Pcm
from ivrkit.voice.speech import ESPEAK_SAMPLE_RATE, EspeakVoice, spoken_digits

MENU = "For balances press 1. For cards press 2. For an agent press 0."


def _voiced_fraction(pcm: Pcm) -> float:
    """Share of 20 ms windows with real signal: speech, not silence or a click."""
    arr = pcm.array().astype(np.float64)
    win = pcm.sample_rate // 50
    rms = [np.sqrt(np.mean(arr[i : i + win] ** 2)) for i in range(0, len(arr) - win, win)]
    return float(np.mean(np.array(rms) > 300.0))


def test_sentence_renders_plausible_speech() -> None:
    pcm = EspeakVoice().synthesize(MENU)
    assert pcm.sample_rate == ESPEAK_SAMPLE_RATE == 22050
    # 15 words at eSpeak's default 175 words/min: about 4-5 s; a broken render is 0 s or huge.
    assert 2.5 < pcm.duration < 8.0
    assert _voiced_fraction(pcm) > 0.5
    assert np.abs(pcm.array()).max() > 3000


def test_different_texts_give_different_audio() -> None:
    voice = EspeakVoice()
    one, two = voice.synthesize("press one"), voice.synthesize("press two for sales")
    assert one.samples != two.samples
    assert two.duration > one.duration
    # the same text twice: same length to within ~15 ms (eSpeak is not bit-exact)
    assert voice.synthesize("press one").duration == pytest.approx(one.duration, abs=0.03)


def test_rate_and_voice_are_applied() -> None:
    slow = EspeakVoice(rate=100).synthesize(MENU)
    fast = EspeakVoice(rate=300).synthesize(MENU)
    assert slow.duration > 1.8 * fast.duration
    german = EspeakVoice("de").synthesize("Drücken Sie die Eins.")
    british = EspeakVoice("en-gb").synthesize("Press one.")  # a language code, not a file name
    assert german.duration > 0.5 and british.duration > 0.3
    # after other voices and rates, the default voice is back to its own length
    again = EspeakVoice().synthesize(MENU)
    assert again.duration == pytest.approx(EspeakVoice("en-us").synthesize(MENU).duration, abs=0.03)


def test_bad_voice_and_rate_raise_speech_error() -> None:
    with pytest.raises(SpeechError, match="voice 'xx-nope': unknown voice.*en-us"):
        EspeakVoice("xx-nope").synthesize("hello")
    with pytest.raises(SpeechError, match="rate 10 words/min is out of range 80-450"):
        EspeakVoice(rate=10)
    with pytest.raises(SpeechError, match="not valid"):
        EspeakVoice("en us; rm")
    assert issubclass(SpeechError, IvrkitError)
    # the engine still works after the failures
    assert EspeakVoice().synthesize("ok").duration > 0.1


def test_concurrent_threads_get_their_own_audio() -> None:
    texts = ["press one", "for cards press two", "goodbye", MENU]
    serial = {t: EspeakVoice().synthesize(t).num_samples for t in texts}
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(text: str) -> None:
        try:
            results[text] = EspeakVoice().synthesize(text).num_samples
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for text in texts:
        # eSpeak varies a prompt's length by up to ~15 ms from run to run; a mix-up of two
        # texts' audio would be off by far more than 2 %.
        assert results[text] == pytest.approx(serial[text], rel=0.02), text


def test_missing_library_package_gives_install_hint() -> None:
    code = (
        "import sys; sys.modules['espeakng_loader'] = None\n"
        "from ivrkit.voice.speech import EspeakVoice\n"
        "try:\n    EspeakVoice().synthesize('hi')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={"PYTHONPATH": str(root)}, check=True).stdout
    assert out.startswith("SpeechError ")
    assert "pip install espeakng-loader==0.2.4" in out


def test_cache_key_names_voice_rate_and_library() -> None:
    key = EspeakVoice("de", rate=200).cache_key
    assert key.startswith("espeak-ng/0.2.4/") and key.endswith("/de/rate=200")
    assert EspeakVoice().cache_key == EspeakVoice("en-us", 175).cache_key


@pytest.mark.parametrize(
    ("keys", "spoken"),
    [
        ("1234#", "1, 2, 3, 4, pound"),
        ("*0", "star, 0"),
        ("a1D", "A, 1, D"),
        ("+1 (555) 010-9999", "plus, 1, 5, 5, 5, 0, 1, 0, 9, 9, 9, 9"),
        ("", ""),
    ],
)
def test_spoken_digits(keys: str, spoken: str) -> None:
    assert spoken_digits(keys) == spoken


@pytest.mark.parametrize("bad", ["12x4", "1+2", "١٢", "e"])
def test_spoken_digits_refuses_what_it_cannot_say_without_leaking_it(bad: str) -> None:
    with pytest.raises(SpeechError, match="key by key") as info:
        spoken_digits(bad)
    assert bad not in str(info.value) or len(bad) == 1


def test_spoken_digits_are_read_one_by_one() -> None:
    voice = EspeakVoice()
    grouped = voice.synthesize("1234")  # "one thousand two hundred thirty-four"
    keyed = voice.synthesize(spoken_digits("1234"))
    assert keyed.samples != grouped.samples
    assert keyed.duration > 1.0


def test_engine_modules_do_not_import_livekit() -> None:
    code = (
        "import sys\n"
        "import ivrkit.voice.audio, ivrkit.voice.cache, ivrkit.voice.speech\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'livekit'))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={"PYTHONPATH": str(root)}, check=True).stdout
    assert out.strip() == "[]"
