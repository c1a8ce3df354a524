"""The voicemail beep: a steady tone between 400 and 2000 Hz, heard frame by frame.

Why: a flow that reached a machine should speak its message after the beep. Speak sooner and
the start of the message is lost; the recording only begins at the beep.

How: each 20 ms frame that is loud enough is Hann-windowed and zero-padded to a fine FFT. A
frame is tonal when the strongest frequency lies in the band and at least `purity` of the
frame's power is within 100 Hz of it. For a sine that share is about 1.0. Voiced speech
spreads its power over many harmonics of the voice's pitch. A beep is a run of tonal frames
at a steady frequency (within `drift_hz` of the run's first frame) that lasts `min_length` ms;
it ends at the first frame that is not part of it.

Engine-side: imports nothing from LiveKit and never reads a clock (time is audio time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ivrkit.voice.framing import FrameCutter

__all__ = ["Beep", "BeepDetector", "BeepSettings"]

_FRAME_MS = 20
_FFT_SIZE = 2048
_LOBE_HZ = 100.0  # half the main lobe of a Hann window over 20 ms: where a sine's power lies


@dataclass(frozen=True, slots=True)
class BeepSettings:
    """Band (Hz), shortest beep (ms), loudness (mean absolute sample value, as AMD's
    silence threshold), the share of a frame's power near its peak, allowed wander (Hz)."""

    low_hz: float = 400.0
    high_hz: float = 2000.0
    min_length: int = 120
    level_threshold: int = 256
    purity: float = 0.8
    drift_hz: float = 25.0


@dataclass(frozen=True, slots=True)
class Beep:
    """A beep heard from `start_ms` to `end_ms` of the audio (`end_ms` None: still sounding)."""

    hz: float
    start_ms: int
    end_ms: int | None


class BeepDetector:
    """Feed audio; `feed` returns the beep once it has ended (then the same beep every call).
    `heard` is set as soon as a tone has lasted `min_length`, before it ends."""

    __slots__ = ("settings", "heard", "ended", "_frames", "_at", "_run_start", "_run_hz", "_window")

    def __init__(self, settings: BeepSettings | None = None) -> None:
        self.settings = settings or BeepSettings()
        self.heard: Beep | None = None
        self.ended: Beep | None = None
        self._frames = FrameCutter(_FRAME_MS)
        self._at = 0  # audio analysed, ms
        self._run_start: int | None = None  # where the current run of tonal frames began
        self._run_hz = 0.0
        self._window: np.ndarray | None = None

    def feed(self, samples: bytes, sample_rate: int) -> Beep | None:
        if self.ended is not None:
            return self.ended
        for frame in self._frames.cut(samples, sample_rate):
            if self._window is None:
                self._window = np.hanning(len(frame) // 2)
            self._frame(np.frombuffer(frame, dtype="<i2"))
            if self.ended is not None:
                break
        return self.ended

    def _frame(self, frame: np.ndarray) -> None:
        hz = self._tone(frame)
        s = self.settings
        at = self._at
        self._at += _FRAME_MS
        if hz is not None and self._run_start is not None and abs(hz - self._run_hz) <= s.drift_hz:
            if self.heard is None and self._at - self._run_start >= s.min_length:
                self.heard = Beep(self._run_hz, self._run_start, None)
            return
        if self.heard is not None:  # the beep's run ended with this frame
            self.ended = Beep(self.heard.hz, self.heard.start_ms, at)
            return
        self._run_start, self._run_hz = (at, hz) if hz is not None else (None, 0.0)

    def _tone(self, frame: np.ndarray) -> float | None:
        """The frame's tone frequency, or None when it is quiet or not a pure tone in the band."""
        s = self.settings
        x = frame.astype(np.float64)
        if np.mean(np.abs(x)) < s.level_threshold:
            return None
        assert self._window is not None
        power = np.abs(np.fft.rfft((x - x.mean()) * self._window, _FFT_SIZE)) ** 2
        power[0] = 0.0
        total = float(power.sum())
        if total <= 0.0:
            return None
        hz_per_bin = self._frames.rate / _FFT_SIZE
        peak = int(np.argmax(power))
        hz = peak * hz_per_bin
        if not s.low_hz <= hz <= s.high_hz:
            return None
        lobe = int(_LOBE_HZ / hz_per_bin)
        near = float(power[max(peak - lobe, 0):peak + lobe + 1].sum())
        return hz if near / total >= s.purity else None
