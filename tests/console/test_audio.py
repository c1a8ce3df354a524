"""Console audio: the call recorder, the sound card, and prompts spoken by the real offline voice."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from ivrkit.channel import ChannelEvent, PromptEnded
from ivrkit.console.audio import CallRecorder, PromptSynthesizer, simulated_duration
from ivrkit.console.channel import ConsoleChannel
from ivrkit.errors import SpeechError
from ivrkit.prompts import Prompt, PromptPart, fill
from ivrkit.testing import VirtualClock
from ivrkit.voice.audio import Pcm, dominant_frequency, tone
from tests.console.helpers import Phone, make_prompt


def test_recorder_places_prompts_on_the_call_timeline() -> None:
    rec = CallRecorder(start=10.0, sample_rate=8000)
    rec.play(tone(440, 1.0, sample_rate=8000), at=10.5)
    rec.cut(at=11.0)  # barge-in after half a second
    rec.play(tone(880, 0.5, sample_rate=8000), at=12.0)
    out = rec.finish(at=13.0)
    assert out.duration == pytest.approx(3.0)
    arr = np.abs(out.array())
    sr = 8000
    assert arr[: int(0.5 * sr)].max() == 0  # silence before the first prompt
    assert arr[int(0.55 * sr) : int(0.95 * sr)].max() > 1000  # the first prompt ...
    assert arr[int(1.0 * sr) + 1 : int(2.0 * sr)].max() == 0  # ... cut at 11.0
    assert arr[int(2.05 * sr) : int(2.45 * sr)].max() > 1000
    assert arr[int(2.5 * sr) + 1 :].max() == 0


def test_sound_card_opens_or_says_why_not() -> None:
    """Real either way: with PortAudio and a device, a short silence plays and stops; without
    (this CI machine has no libportaudio), the reason names what to install."""
    from ivrkit.console.audio import AudioUnavailable, open_soundcard
    from ivrkit.voice.audio import silence

    try:
        speaker = open_soundcard()
    except AudioUnavailable as e:
        assert "libportaudio2" in str(e) or "no sound output device" in str(e)
        return
    speaker.play(silence(0.05))
    speaker.stop()
    speaker.close()


def test_real_voice_sets_prompt_time_and_fills_the_recording() -> None:
    clock = VirtualClock()
    recorder = CallRecorder(start=0.0)
    out = io.StringIO()
    channel = ConsoleChannel(clock=clock, out=out, synthesizer=PromptSynthesizer(), recorder=recorder)
    events: list[ChannelEvent] = []
    channel.connect(events.append)
    channel.play(make_prompt("Please enter your account number.", id=6))
    clock.advance(60)
    assert len(events) == 1 and isinstance(events[0], PromptEnded) and not events[0].interrupted
    spoken = events[0].at
    assert 1.5 < spoken < 6.0  # eSpeak: about 2.5 s
    assert spoken != pytest.approx(simulated_duration(make_prompt("Please enter your account number."), 0.06))
    pcm = recorder.finish(61.0)
    assert pcm.duration == pytest.approx(61.0, abs=0.01)
    sr = pcm.sample_rate
    voiced = pcm.array()[: int(spoken * sr)]
    assert np.abs(voiced).max() > 3000
    assert dominant_frequency(Pcm(voiced.tobytes(), sr)) != pytest.approx(1000.0, abs=20)
    assert np.abs(pcm.array()[int((spoken + 0.01) * sr) :]).max() == 0


def test_sensitive_read_back_is_bleeped_in_the_recording_only() -> None:
    clock = VirtualClock()
    recorder = CallRecorder(start=0.0)
    out = io.StringIO()
    channel = ConsoleChannel(clock=clock, out=out, synthesizer=PromptSynthesizer(), recorder=recorder)
    events: list[ChannelEvent] = []
    channel.connect(events.append)
    prompt = fill(
        Prompt((PromptPart("text", "You entered"), PromptPart("digits", "{pin}"))),
        {"pin": "1234"}, id=7, state="pin", sensitive={"pin"},
    )
    channel.play(prompt)
    assert "prompt: You entered ****" in out.getvalue() and "1 2 3 4" not in out.getvalue()
    clock.advance(60)
    spoken = events[0].at
    assert 1.5 < spoken < 6.0  # the PIN read back digit by digit takes real speaking time
    pcm = recorder.finish(spoken)
    assert pcm.duration == pytest.approx(spoken, abs=0.01)
    assert dominant_frequency(pcm) == pytest.approx(1000.0, abs=5)  # a bleep, not the digits
    assert np.abs(pcm.array()).max() < 0.11 * 32767


def test_a_bad_prompt_file_is_reported_and_the_call_goes_on(tmp_path: Path) -> None:
    phone = Phone(synthesizer=PromptSynthesizer(base_dir=tmp_path), seconds_per_char=0.1)
    missing = fill(Prompt((PromptPart("audio", "missing.wav"),)), {}, id=1, state="s")
    phone.channel.play(missing)
    phone.clock.advance(1.0)  # simulated: an audio part counts 1 s
    phone.channel.play(make_prompt("Hi", id=2))
    phone.clock.advance(5.0)
    assert phone.text.count("prompt audio failed") == 1 and "missing.wav" in phone.text
    ends = [e for e in phone.events if isinstance(e, PromptEnded)]
    assert [e.id for e in ends] == [1, 2]
    assert ends[0].at == pytest.approx(1.0)
    assert ends[1].at - 1.0 != pytest.approx(0.2)  # "Hi" was spoken: real audio length, not 2 x 0.1 s


def test_a_broken_voice_turns_audio_off_once() -> None:
    class BrokenVoice:
        cache_key = "broken"

        def synthesize(self, text: str) -> Pcm:
            raise SpeechError("libespeak-ng failed to initialise")

    phone = Phone(synthesizer=PromptSynthesizer(BrokenVoice()), seconds_per_char=0.1)
    phone.channel.play(make_prompt("Hello", id=1))
    phone.clock.advance(0.5)
    phone.channel.play(make_prompt("Again", id=2))
    phone.clock.advance(0.5)
    assert phone.text.count("audio is off: the voice failed (libespeak-ng failed to initialise)") == 1
    assert [e.id for e in phone.events if isinstance(e, PromptEnded)] == [1, 2]
