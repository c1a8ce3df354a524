"""Raw audio for prompts: the `Pcm` value type and the few operations an IVR needs on it.

Prompts are short, mono, 16-bit speech or tones, so ivrkit keeps audio as one immutable
buffer (`Pcm`) rather than a stream: a recorded prompt is read whole, resampled once to the
output rate and then cut into the 10/20 ms frames a media track wants. Reading uses the
stdlib `wave` module on purpose: LiveKit's `audio_frames_from_file` was seen dropping the last
~64 ms of a WAV (livekit-agents 1.8.9), and the end of a prompt ("...press pound") matters.

numpy is used for the sample arithmetic; it already comes with livekit-agents. This module
imports nothing from LiveKit and never reads the clock.
"""

from __future__ import annotations

import math
import os
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivrkit.errors import AudioFileError

__all__ = [
    "Pcm",
    "chunks",
    "concat",
    "dominant_frequency",
    "frames",
    "read_wav",
    "resample",
    "silence",
    "tone",
    "write_wav",
]

_MAX_INT16 = 32767


@dataclass(frozen=True, slots=True)
class Pcm:
    """Mono signed 16-bit little-endian PCM and its sample rate.

    Immutable so one synthesized prompt can be shared by every call playing it.
    """

    samples: bytes
    sample_rate: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if len(self.samples) % 2:
            raise ValueError(f"16-bit PCM needs an even number of bytes, got {len(self.samples)}")

    @property
    def num_samples(self) -> int:
        return len(self.samples) // 2

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_samples / self.sample_rate

    def array(self) -> npt.NDArray[np.int16]:
        """The samples as a read-only int16 array (no copy)."""
        return np.frombuffer(self.samples, dtype="<i2")

    @classmethod
    def from_array(cls, data: npt.ArrayLike, sample_rate: int) -> Pcm:
        """Build from int16 samples, or floats in [-1, 1] (clipped, then scaled)."""
        arr = np.asarray(data)
        if arr.dtype.kind == "f":
            arr = np.round(np.clip(arr, -1.0, 1.0) * _MAX_INT16)
        return cls(arr.astype("<i2").tobytes(), sample_rate)


def read_wav(path: str | os.PathLike[str]) -> Pcm:
    """Read a whole PCM WAV file (8- or 16-bit, any channel count, any rate) as mono Pcm.

    Several channels are averaged. Nothing is trimmed: every sample in the file comes back.
    """
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            channels, width, rate, n = (
                w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            )
            raw = w.readframes(n)
    except FileNotFoundError:
        raise AudioFileError(f"{p}: no such audio file; check the prompt's path") from None
    except (wave.Error, EOFError) as e:
        raise AudioFileError(
            f"{p}: not a PCM WAV file ({e}); convert it, e.g. "
            f"`ffmpeg -i {p.name} -ac 1 -ar 16000 -c:a pcm_s16le out.wav`"
        ) from None
    except OSError as e:
        raise AudioFileError(f"{p}: cannot read audio file: {e.strerror or e}") from None
    if width not in (1, 2):
        raise AudioFileError(
            f"{p}: {8 * width}-bit samples are not supported, only 8- or 16-bit PCM; convert "
            f"with `ffmpeg -i {p.name} -c:a pcm_s16le out.wav`"
        )
    if channels < 1 or rate <= 0:
        raise AudioFileError(f"{p}: invalid WAV header ({channels} channels, {rate} Hz)")
    usable = len(raw) - len(raw) % (width * channels)
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        data = (np.frombuffer(raw[:usable], dtype=np.uint8).astype(np.int32) - 128) * 256
    else:
        data = np.frombuffer(raw[:usable], dtype="<i2").astype(np.int32)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).round().astype(np.int32)
    return Pcm(data.astype("<i2").tobytes(), rate)


def write_wav(path: str | os.PathLike[str], pcm: Pcm) -> Path:
    """Write `pcm` as a mono 16-bit WAV file and return its path."""
    p = Path(path)
    try:
        with wave.open(str(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(pcm.sample_rate)
            w.writeframes(pcm.samples)
    except OSError as e:
        raise AudioFileError(f"{p}: cannot write audio file: {e.strerror or e}") from None
    return p


def resample(pcm: Pcm, sample_rate: int) -> Pcm:
    """Convert to `sample_rate` by linear interpolation.

    Good enough for speech prompts going to an 8/16/48 kHz phone path; the output has
    round(duration * sample_rate) samples, so durations are kept.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if sample_rate == pcm.sample_rate:
        return pcm
    if pcm.num_samples == 0:
        return Pcm(b"", sample_rate)
    n_out = round(pcm.num_samples * sample_rate / pcm.sample_rate)
    src = pcm.array().astype(np.float64)
    t_out = np.arange(n_out, dtype=np.float64) * (pcm.sample_rate / sample_rate)
    out = np.interp(t_out, np.arange(pcm.num_samples, dtype=np.float64), src)
    return Pcm(np.round(out).astype("<i2").tobytes(), sample_rate)


def tone(
    frequency: float, duration: float, *, sample_rate: int = 16000, amplitude: float = 0.5
) -> Pcm:
    """A sine tone: a prompt with no TTS at all, and a signal tests can recognise."""
    if duration < 0 or not 0.0 <= amplitude <= 1.0:
        raise ValueError("duration must be >= 0 and amplitude within [0, 1]")
    t = np.arange(round(duration * sample_rate), dtype=np.float64) / sample_rate
    return Pcm.from_array(amplitude * np.sin(2 * math.pi * frequency * t), sample_rate)


def silence(duration: float, *, sample_rate: int = 16000) -> Pcm:
    """`duration` seconds of digital silence (pauses between concatenated prompts)."""
    return Pcm(b"\0\0" * round(duration * sample_rate), sample_rate)


def concat(parts: Iterable[Pcm], *, sample_rate: int | None = None) -> Pcm:
    """Join prompts end to end, resampling each to `sample_rate` (default: the first part's)."""
    items = list(parts)
    if sample_rate is None:
        if not items:
            raise ValueError("concat() of no parts needs an explicit sample_rate")
        sample_rate = items[0].sample_rate
    return Pcm(b"".join(resample(p, sample_rate).samples for p in items), sample_rate)


def frames(pcm: Pcm, frame_ms: int = 20, *, pad: bool = True) -> Iterator[Pcm]:
    """Cut into consecutive frames of `frame_ms` (10 or 20 ms, as media tracks expect).

    The last partial frame is padded with silence (`pad=True`) or returned short; it is never
    dropped, so the end of a prompt is always heard.
    """
    if frame_ms not in (10, 20):
        raise ValueError(f"frame_ms must be 10 or 20, got {frame_ms}")
    if pcm.sample_rate * frame_ms % 1000:
        raise ValueError(f"{pcm.sample_rate} Hz does not split into whole {frame_ms} ms frames")
    step = pcm.sample_rate * frame_ms // 1000 * 2
    data = pcm.samples
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        if pad and len(chunk) < step:
            chunk += b"\0" * (step - len(chunk))
        yield Pcm(chunk, pcm.sample_rate)


def chunks(pcm: Pcm, chunk_ms: int) -> Iterator[Pcm]:
    """Cut into chunks of `chunk_ms` (a multiple of 10 ms) for a source that sends 10 ms frames
    itself. The last chunk is padded with silence only to a whole 10 ms, so a prompt's end is
    not delayed by up to a chunk of silence; nothing is dropped."""
    if chunk_ms <= 0 or chunk_ms % 10:
        raise ValueError(f"chunk_ms must be a positive multiple of 10, got {chunk_ms}")
    if pcm.sample_rate % 100:
        raise ValueError(f"{pcm.sample_rate} Hz does not split into whole 10 ms frames")
    ten_ms = pcm.sample_rate // 100 * 2
    step = ten_ms * (chunk_ms // 10)
    data = pcm.samples
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        if len(chunk) % ten_ms:
            chunk += b"\0" * (ten_ms - len(chunk) % ten_ms)
        yield Pcm(chunk, pcm.sample_rate)


def dominant_frequency(pcm: Pcm) -> float:
    """The strongest frequency in Hz (FFT peak): how tests tell which tone prompt was heard."""
    if pcm.num_samples < 2:
        raise ValueError("need at least 2 samples to find a frequency")
    data = pcm.array().astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    spectrum[0] = 0.0  # ignore DC
    return float(np.argmax(spectrum) * pcm.sample_rate / len(data))
