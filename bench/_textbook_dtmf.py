"""The baseline of bench/inband.py: a textbook block Goertzel DTMF detector.

What a first implementation usually is (the well-known N = 205 at 8 kHz design): the audio cut
into back-to-back 205-sample blocks (25.6 ms); in each, the Goertzel terms at the eight DTMF
frequencies; a block holds a key when the strongest low and the strongest high bin are each
6 dB above the other bins of their group, each tone is at least -36 dBFS and the twist is within
8 dB normal / 4 dB reverse; a key is reported on the first block that holds it. It has none of
ivrkit's duration, measured-frequency, signal-to-noise or harmonic rules — the point of comparing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ivrkit.voice.dtmf_tones import HIGH_GROUP, KEYPAD, LOW_GROUP, ToneKey

BLOCK = 205


class TextbookDetector:
    def __init__(self, sample_rate: int = 8000) -> None:
        self.rate = sample_rate
        freqs = np.array(LOW_GROUP + HIGH_GROUP)
        self.basis = np.exp(-2j * np.pi * np.outer(np.arange(BLOCK), freqs) / sample_rate)
        self.buf = np.zeros(0)
        self.done = 0
        self.last: str | None = None

    def feed(self, samples: npt.ArrayLike) -> list[ToneKey]:
        self.buf = np.concatenate((self.buf, np.asarray(samples, dtype=np.float64) / 32768.0))
        count = len(self.buf) // BLOCK
        if not count:
            return []
        blocks = self.buf[: count * BLOCK].reshape(count, BLOCK)
        amplitude = 2 * np.abs(blocks @ self.basis) / BLOCK
        self.buf = self.buf[count * BLOCK:]
        out = []
        for i, amps in enumerate(amplitude):
            digit = self._holds(amps)
            if digit is not None and digit != self.last:
                at = (self.done + (i + 1) * BLOCK) / self.rate
                out.append(ToneKey(digit, at=at, start=at - BLOCK / self.rate))
            self.last = digit
        self.done += count * BLOCK
        return out

    @staticmethod
    def _holds(amps: npt.NDArray[np.float64]) -> str | None:
        low, high = amps[:4], amps[4:]
        row, col = int(np.argmax(low)), int(np.argmax(high))
        if min(low[row], high[col]) < 10 ** (-36 / 20):
            return None
        if np.sort(low)[-2] > low[row] / 2 or np.sort(high)[-2] > high[col] / 2:  # 6 dB
            return None
        twist = 20 * np.log10(high[col] / low[row])
        if not -8.0 <= twist <= 4.0:
            return None
        return KEYPAD[row][col]
