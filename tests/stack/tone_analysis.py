"""Hear which tone plays, and when: per-frame energy and dominant frequency, then segments.

Why: e2e tests tell prompts apart by ear. The test flows record each prompt as a distinct sine
tone, so a caller that reports "440 Hz from t=1.20 to t=2.21" lets a test assert which prompt
played, in what order, and that barge-in cut it short.

Per frame (20 ms): RMS level in dBFS, the dominant frequency (Hann-windowed FFT, zero-padded,
parabolic peak interpolation: within about 1 Hz for a clean tone) and its purity (share of the
power within 100 Hz of the peak: about 1.0 for a sine, low for speech). A segment starts when a
new class (silence, a tone at some frequency, or non-tonal sound) holds for `debounce` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SILENCE_DB = -45.0  # below this a frame is silence
MIN_PURITY = 0.6  # below this a loud frame is "sound" (speech, noise), not a tone
FFT_SIZE = 8192


@dataclass(frozen=True)
class FrameStats:
    """One analysed frame: its arrival time `t`, level and (for tones) frequency."""

    t: float
    rms_db: float
    freq: float | None  # dominant frequency when loud, else None
    purity: float

    @property
    def kind(self) -> str:
        if self.rms_db < SILENCE_DB or self.freq is None:
            return "silence"
        return "tone" if self.purity >= MIN_PURITY else "sound"


def analyse(samples: npt.NDArray[np.int16], sample_rate: int, t: float = 0.0) -> FrameStats:
    """Level, dominant frequency and purity of one mono int16 frame."""
    x = samples.astype(np.float64) / 32768.0
    if x.size == 0:
        return FrameStats(t=t, rms_db=-120.0, freq=None, purity=0.0)
    rms = float(np.sqrt(np.mean(x * x)))
    rms_db = 20.0 * np.log10(rms + 1e-9)
    if rms_db < SILENCE_DB:
        return FrameStats(t=t, rms_db=rms_db, freq=None, purity=0.0)
    windowed = (x - x.mean()) * np.hanning(x.size)
    n = max(FFT_SIZE, 1 << int(np.ceil(np.log2(x.size))))
    power = np.abs(np.fft.rfft(windowed, n)) ** 2
    power[0] = 0.0
    k = int(np.argmax(power))
    offset = 0.0
    if 0 < k < power.size - 1:
        a, b, c = np.log(power[k - 1 : k + 2] + 1e-30)
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    hz_per_bin = sample_rate / n
    freq = (k + offset) * hz_per_bin
    band = int(round(100.0 / hz_per_bin))
    total = float(power.sum())
    purity = float(power[max(0, k - band) : k + band + 1].sum()) / total if total > 0 else 0.0
    return FrameStats(t=t, rms_db=float(rms_db), freq=float(freq), purity=purity)


_SILENCE = FrameStats(t=0.0, rms_db=-120.0, freq=None, purity=0.0)


def same_class(a: FrameStats, b: FrameStats) -> bool:
    """Same kind, and for tones a frequency within max(10 Hz, 2 %)."""
    if a.kind != b.kind:
        return False
    if a.kind != "tone":
        return True
    assert a.freq is not None and b.freq is not None
    return abs(a.freq - b.freq) <= max(10.0, 0.02 * max(a.freq, b.freq))


@dataclass
class Segment:
    """A stretch of one class: a tone (with `freq`) or non-tonal sound (`freq` None)."""

    kind: str
    start: float
    end: float | None = None
    frames: list[FrameStats] = field(default_factory=list)

    @property
    def freq(self) -> float | None:
        freqs = [f.freq for f in self.frames if f.freq is not None]
        return float(np.median(freqs)) if self.kind == "tone" and freqs else None

    @property
    def rms_db(self) -> float:
        return float(np.mean([f.rms_db for f in self.frames])) if self.frames else -120.0

    def as_fields(self) -> dict[str, object]:
        freq = self.freq
        return {
            "kind": self.kind,
            "freq": round(freq, 1) if freq is not None else None,
            "start": self.start,
            "end": self.end,
            "duration": None if self.end is None else round(self.end - self.start, 3),
            "rms_db": round(self.rms_db, 1),
        }


@dataclass
class ToneTracker:
    """Turns a stream of FrameStats into segment start/end events (silence is not a segment)."""

    debounce: int = 2
    current: Segment | None = None
    _current_frame: FrameStats = field(default_factory=lambda: _SILENCE)
    _pending: list[FrameStats] = field(default_factory=list)

    def feed(self, frame: FrameStats) -> list[tuple[str, Segment]]:
        """Add a frame; returns ("start"|"end", segment) events it caused, in order."""
        if same_class(frame, self._current_frame):
            self._pending.clear()
            if self.current is not None:
                self.current.frames.append(frame)
            return []
        if self._pending and not same_class(frame, self._pending[0]):
            self._pending.clear()
        self._pending.append(frame)
        return self._maybe_switch()

    def _maybe_switch(self) -> list[tuple[str, Segment]]:
        if len(self._pending) < self.debounce:
            return []
        events: list[tuple[str, Segment]] = []
        first = self._pending[0]
        if self.current is not None:
            self.current.end = first.t
            events.append(("end", self.current))
            self.current = None
        self._current_frame = first
        if first.kind != "silence":
            self.current = Segment(kind=first.kind, start=first.t, frames=list(self._pending))
            events.append(("start", self.current))
        self._pending.clear()
        return events

    def flush(self, t: float) -> list[tuple[str, Segment]]:
        """End the open segment (the track went away)."""
        self._pending.clear()
        self._current_frame = _SILENCE
        if self.current is None:
            return []
        self.current.end = t
        ended, self.current = self.current, None
        return [("end", ended)]
