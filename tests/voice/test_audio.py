"""ivrkit.voice.audio: WAV in/out (whole, last frame included), resampling, tones, framing."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from ivrkit.errors import IvrkitError
from ivrkit.voice.audio import (
    AudioFileError,
    Pcm,
    chunks,
    concat,
    dominant_frequency,
    frames,
    read_wav,
    resample,
    silence,
    tone,
    write_wav,
)


def _ramp(n: int, rate: int) -> Pcm:
    """Distinct samples, so any dropped or reordered sample shows."""
    return Pcm.from_array((np.arange(n) % 30000 - 15000).astype(np.int16), rate)


def test_wav_round_trip_keeps_every_sample_including_the_last_frame(tmp_path: Path) -> None:
    # 1.017 s at 16 kHz: not a whole number of 20/64 ms blocks, so a reader that drops a
    # trailing partial block (as audio_frames_from_file did) would fail here.
    pcm = _ramp(16272, 16000)
    path = write_wav(tmp_path / "p.wav", pcm)
    back = read_wav(path)
    assert back == pcm
    assert back.samples[-20:] == pcm.samples[-20:]
    assert back.duration == pytest.approx(1.017)


def test_read_wav_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left = np.array([1000, -2000, 3000], dtype="<i2")
    right = np.array([3000, 2000, -3000], dtype="<i2")
    path = tmp_path / "s.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    pcm = read_wav(path)
    assert pcm.sample_rate == 8000
    assert pcm.array().tolist() == [2000, 0, 0]


def test_read_wav_8bit_unsigned_is_centred(tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes([128, 255, 0]))
    assert read_wav(path).array().tolist() == [0, 127 * 256, -128 * 256]


def test_read_wav_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=r"missing\.wav: no such audio file"):
        read_wav(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a RIFF file at all")
    with pytest.raises(AudioFileError, match=r"junk\.wav: not a PCM WAV file.*ffmpeg"):
        read_wav(junk)
    wide = tmp_path / "s24.wav"
    with wave.open(str(wide), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(8000)
        w.writeframes(b"\0" * 30)
    with pytest.raises(AudioFileError, match=r"s24\.wav: 24-bit samples are not supported"):
        read_wav(wide)
    assert issubclass(AudioFileError, IvrkitError)


@pytest.mark.parametrize(("src", "dst"), [(22050, 16000), (22050, 48000), (8000, 16000), (48000, 8000)])
def test_resample_keeps_duration_and_pitch(src: int, dst: int) -> None:
    pcm = tone(440.0, 0.5, sample_rate=src)
    out = resample(pcm, dst)
    assert out.sample_rate == dst
    assert out.num_samples == round(pcm.num_samples * dst / src)
    assert dominant_frequency(out) == pytest.approx(440.0, abs=3.0)


def test_resample_same_rate_and_empty() -> None:
    pcm = tone(300.0, 0.1)
    assert resample(pcm, pcm.sample_rate) is pcm
    assert resample(Pcm(b"", 8000), 16000) == Pcm(b"", 16000)


@pytest.mark.parametrize("freq", [350.0, 440.0, 1000.0, 1633.0])
def test_tone_frequency_is_detected(freq: float) -> None:
    pcm = tone(freq, 0.25, sample_rate=16000, amplitude=0.3)
    assert pcm.num_samples == 4000
    assert dominant_frequency(pcm) == pytest.approx(freq, abs=4.0)
    peak = int(np.abs(pcm.array()).max())
    assert 0.29 * 32767 < peak <= 0.3 * 32767 + 1


def test_concat_resamples_parts_to_the_first_rate() -> None:
    joined = concat([tone(440.0, 0.2, sample_rate=16000), silence(0.1, sample_rate=8000),
                     tone(880.0, 0.3, sample_rate=48000)])
    assert joined.sample_rate == 16000
    assert joined.duration == pytest.approx(0.6)
    arr = joined.array()
    assert not arr[3200:4800].any()  # the silence sits in the middle
    second = Pcm.from_array(arr[4800:], 16000)
    assert dominant_frequency(second) == pytest.approx(880.0, abs=4.0)
    with pytest.raises(ValueError):
        concat([])


def test_frames_pad_the_last_frame_and_lose_nothing() -> None:
    pcm = _ramp(16000 + 123, 16000)
    out = list(frames(pcm, 20))
    assert len(out) == 51
    assert all(f.num_samples == 320 for f in out)
    joined = b"".join(f.samples for f in out)
    assert joined[: len(pcm.samples)] == pcm.samples
    assert set(joined[len(pcm.samples):]) == {0}
    short = list(frames(pcm, 10, pad=False))
    assert [f.num_samples for f in short[-2:]] == [160, 123]
    assert b"".join(f.samples for f in short) == pcm.samples


def test_chunks_pad_the_last_only_to_a_whole_10_ms_and_lose_nothing() -> None:
    pcm = _ramp(48000 + 4801, 48000)  # 1.100021 s
    out = list(chunks(pcm, 100))
    assert [c.num_samples for c in out] == [4800] * 11 + [480]  # the tail: 1 sample -> 10 ms, not 100
    joined = b"".join(c.samples for c in out)
    assert joined[: len(pcm.samples)] == pcm.samples
    assert set(joined[len(pcm.samples):]) == {0}
    assert [c.num_samples for c in chunks(_ramp(9600, 48000), 100)] == [4800, 4800]  # whole: no padding
    with pytest.raises(ValueError, match="multiple of 10"):
        list(chunks(pcm, 25))
    with pytest.raises(ValueError, match="22050 Hz"):
        list(chunks(Pcm(b"\0\0" * 100, 22050), 100))


def test_frames_reject_odd_sizes() -> None:
    with pytest.raises(ValueError, match="10 or 20"):
        list(frames(tone(440.0, 0.1), 30))
    with pytest.raises(ValueError, match="22050 Hz"):
        list(frames(Pcm(b"\0\0" * 100, 22050), 10))


def test_pcm_validates_and_reports_duration() -> None:
    with pytest.raises(ValueError):
        Pcm(b"\0", 8000)
    with pytest.raises(ValueError):
        Pcm(b"", 0)
    assert Pcm(b"\0\0" * 8000, 16000).duration == 0.5
    assert Pcm.from_array([2.0, -2.0], 8000).array().tolist() == [32767, -32767]
