"""In-band DTMF: telling the keys a caller pressed from the tones in their audio (and making
such tones, for tests, the benchmark and the test phone).

Why: LiveKit SIP decodes RFC 4733 telephone-events only. A trunk or PBX that sends DTMF as
tones inside the voice stream (no telephone-event in its SDP) reaches the IVR as plain audio,
and without this module its callers cannot press anything. `DtmfDetector` listens to that audio
(fed frame by frame by `ivrkit.livekit.inband`) and reports each key press once.

How: every 5 ms (`HOP`) a 20 ms window (`WINDOW`) of audio is measured at the eight DTMF
frequencies — Goertzel's single-bin DFT terms, evaluated for all windows of a frame in one
matrix product (`goertzel_bins`), which is what numpy does fast; the tests check it against the
textbook Goertzel recursion. A window *holds* a key when all of these hold (the receiver rules
of ITU-T Q.24, where the numbers come from):

* one tone from each group stands out: the strongest low (697-941 Hz) and high (1209-1633 Hz);
* each tone's frequency, estimated from its phase advance between consecutive windows, is
  within `FREQ_LIMIT` (2.5 %) of the nominal one: Q.24 asks to accept +-1.5 % and to reject
  +-3.5 %; the limit sits between;
* each tone is at least `MIN_LEVEL_DBFS` loud, and the twist (high level over low level, in
  dB) is within -`NORMAL_TWIST_DB` (8 dB, high group weaker) .. +`REVERSE_TWIST_DB` (4 dB);
* the two tones carry at least `MIN_TONE_SHARE` of the window's energy — the signal-to-noise
  test, which also rejects a third tone, speech and music;
* neither tone's second harmonic is within `HARMONIC_DB` of it: a voice is a harmonic series,
  a DTMF generator is not (the talk-off guard).

A key is reported once `HOLD` consecutive windows hold it: a tone of 40 ms or more is always
reported, one under 23 ms never is (Q.24's operate / non-operate durations; the windows that
only partly cover a tone are what the numbers account for, and tests/voice/test_dtmf_detect.py
checks both ends at every alignment). The same key again needs `RELEASE` windows that do not
hold it first — about 20-40 ms of pause (Q.24: the inter-digit pause of 40 ms must be
accepted, a break of 10 ms or less inside one tone must not split it in two).

Pure numpy: no LiveKit import, no clock. Times are in seconds of the audio fed so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ivrkit.voice.audio import Pcm

__all__ = [
    "DtmfDetector",
    "FREQ_LIMIT",
    "HIGH_GROUP",
    "KEYPAD",
    "LOW_GROUP",
    "ToneKey",
    "dtmf_tone",
    "goertzel_bins",
    "key_frequencies",
]

LOW_GROUP = (697.0, 770.0, 852.0, 941.0)
HIGH_GROUP = (1209.0, 1336.0, 1477.0, 1633.0)
#: KEYPAD[row][column]: row = low tone, column = high tone.
KEYPAD = ("123A", "456B", "789C", "*0#D")

WINDOW = 0.020  # seconds measured at once: 50 Hz resolution at any sample rate
HOP = 0.005  # a new window every 5 ms
HOLD = 5  # consecutive holding windows that report a key (35-40 ms after the tone began)
RELEASE = 8  # consecutive windows without it before the same key can be reported again
FREQ_LIMIT = 0.025  # relative frequency error accepted (Q.24: accept 1.5 %, reject 3.5 %)
MIN_LEVEL_DBFS = -36.0  # each tone's level, dB relative to a full-scale sine (about -33 dBm0)
NORMAL_TWIST_DB = 8.5  # high tone weaker than the low one: Q.24's 8 dB, +0.5 dB for measurement
REVERSE_TWIST_DB = 4.5  # high tone stronger than the low one: Q.24's 4 dB, +0.5 dB
MIN_TONE_SHARE = 0.7  # the two tones' share of the window's energy (about +3.7 dB SNR)
HARMONIC_DB = 20.0  # a tone's second harmonic must be at least this far below it

_FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class ToneKey:
    """One key heard: `digit` (0-9 * # A-D), `at` when it was decided and `start` when its tone
    began, both in seconds since the first sample fed."""

    digit: str
    at: float
    start: float


def key_frequencies(digit: str) -> tuple[float, float]:
    """The (low, high) frequencies of `digit`, e.g. '5' -> (770.0, 1336.0)."""
    for row, keys in enumerate(KEYPAD):
        col = keys.find(digit.upper())
        if col >= 0 and len(digit) == 1:
            return LOW_GROUP[row], HIGH_GROUP[col]
    raise ValueError(f"{digit!r} is not a DTMF key (0-9 * # A-D)")


def dtmf_tone(digit: str, seconds: float, *, sample_rate: int = 8000, level_dbfs: float = -10.0,
              twist_db: float = 0.0, freq_offset: float = 0.0) -> Pcm:
    """The tone pair of `digit` for `seconds`: the low tone at `level_dbfs` (relative to a
    full-scale sine), the high one `twist_db` louder (negative: quieter), both frequencies
    off by `freq_offset` (0.015 = 1.5 % high)."""
    low, high = key_frequencies(digit)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    a_low = 10 ** (level_dbfs / 20)
    a_high = a_low * 10 ** (twist_db / 20)
    x = a_low * np.sin(2 * np.pi * low * (1 + freq_offset) * t) + a_high * np.sin(2 * np.pi * high * (1 + freq_offset) * t)
    return Pcm.from_array(x, sample_rate)


def goertzel_bins(windows: npt.NDArray[np.float64], frequencies: npt.ArrayLike, sample_rate: int) -> npt.NDArray[np.complex128]:
    """The Goertzel filter's output for each window (rows) at each frequency (columns).

    That output is the DFT term X(f) = sum_n x[n] e^(-2 pi i f n / rate) at a frequency that
    need not fall on a DFT bin; the recursion computes it sample by sample, a matrix product
    computes it for every window and frequency at once (same numbers, far fewer Python steps).
    Time zero is each window's first sample, so the phase of a steady tone advances by
    2 pi f hop / rate from one window to the next — which is how the detector measures f.
    """
    n = windows.shape[1]
    basis = np.exp(-2j * np.pi * np.outer(np.arange(n), np.asarray(frequencies, dtype=np.float64)) / sample_rate)
    result: npt.NDArray[np.complex128] = windows @ basis
    return result


class DtmfDetector:
    """Feed it the caller's audio in any chunks; it returns each key press once, in order.

    Example::

        detector = DtmfDetector(8000)
        for frame in frames_of_the_call:
            for key in detector.feed(frame):
                print(key.digit, key.at)
    """

    def __init__(self, sample_rate: int = 8000) -> None:
        if sample_rate < 8000:
            raise ValueError(f"in-band DTMF needs at least 8000 Hz audio, not {sample_rate}")
        self.sample_rate = sample_rate
        self.window = round(WINDOW * sample_rate)
        self.hop = round(HOP * sample_rate)
        self._freqs = np.array(LOW_GROUP + HIGH_GROUP)
        self._basis = np.exp(-2j * np.pi * np.outer(np.arange(self.window), self._freqs) / sample_rate)
        self._n = np.arange(self.window)
        self._buf = np.zeros(0)
        self._next = 0  # stream index of the next window's first sample
        self._prev: npt.NDArray[np.complex128] | None = None  # the last window's bins
        self._run_digit: str | None = None  # what the latest windows hold
        self._run = 0  # for how many windows in a row
        self._run_start = 0
        self._down: str | None = None  # the key reported and not yet released
        self._missing = 0  # windows in a row without the reported key

    def feed(self, audio: Pcm | npt.ArrayLike) -> list[ToneKey]:
        """Take more audio (a `Pcm` at this detector's rate, or int16 samples) and return the
        keys it completed."""
        if isinstance(audio, Pcm):
            if audio.sample_rate != self.sample_rate:
                raise ValueError(f"audio at {audio.sample_rate} Hz fed to a {self.sample_rate} Hz detector")
            data = audio.array()
        else:
            data = np.asarray(audio)
        self._buf = np.concatenate((self._buf, data.astype(np.float64) / _FULL_SCALE))
        if len(self._buf) < self.window:
            return []
        count = (len(self._buf) - self.window) // self.hop + 1
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, self.window)[:: self.hop][:count]
        bins = windows @ self._basis
        found: list[ToneKey] = []
        for i in range(count):
            start = self._next + i * self.hop
            digit = self._holds(windows[i], bins[i], self._prev)
            self._prev = bins[i]
            key = self._step(digit, start)
            if key is not None:
                found.append(key)
        self._buf = self._buf[count * self.hop:]
        self._next += count * self.hop
        return found

    # --- one window --------------------------------------------------------------------

    def _holds(self, x: npt.NDArray[np.float64], bins: npt.NDArray[np.complex128],
               prev: npt.NDArray[np.complex128] | None) -> str | None:
        """The key this window holds, or None (see the module docstring for the rules)."""
        if prev is None:
            return None
        energy = float(np.dot(x, x))
        if energy <= 0.0:
            return None
        power = bins.real ** 2 + bins.imag ** 2
        row = int(np.argmax(power[:4]))
        col = int(np.argmax(power[4:])) + 4
        # cheap first: a window whose two strongest bins hold little of its energy is no key
        # (most speech and noise ends here, before the least-squares fit below)
        if 2 * (power[row] + power[col]) / self.window < 0.5 * MIN_TONE_SHARE * energy:
            return None
        freqs = []
        for k in (row, col):
            nominal = self._freqs[k]
            advance = np.angle(bins[k] * np.conj(prev[k]))  # the actual 2 pi f hop / rate, mod 2 pi
            offset = (advance - 2 * np.pi * nominal * self.hop / self.sample_rate + np.pi) % (2 * np.pi) - np.pi
            freq = nominal + offset * self.sample_rate / (2 * np.pi * self.hop)
            if abs(freq - nominal) > FREQ_LIMIT * nominal:
                return None
            freqs.append(freq)
        # the two tones fitted together (each one's leakage into the other's bin cancels out),
        # and what is left: noise, speech, a third tone, harmonics
        phase = 2 * np.pi * np.outer(self._n, freqs) / self.sample_rate
        basis = np.hstack((np.cos(phase), np.sin(phase)))
        coef = np.linalg.lstsq(basis, x, rcond=None)[0]
        residual = x - basis @ coef
        if float(np.dot(residual, residual)) > (1 - MIN_TONE_SHARE) * energy:
            return None
        amplitudes = np.hypot(coef[:2], coef[2:])
        if amplitudes.min() <= 0.0:
            return None
        low_db, high_db = (20 * np.log10(amplitudes)).tolist()
        if min(low_db, high_db) < MIN_LEVEL_DBFS or not -NORMAL_TWIST_DB <= high_db - low_db <= REVERSE_TWIST_DB:
            return None
        harmonics = goertzel_bins(residual[np.newaxis, :], [2 * f for f in freqs], self.sample_rate)[0]
        if np.any(2 * np.abs(harmonics) / self.window > amplitudes * 10 ** (-HARMONIC_DB / 20)):
            return None
        return KEYPAD[row][col - 4]

    # --- over time ---------------------------------------------------------------------

    def _step(self, digit: str | None, start: int) -> ToneKey | None:
        if digit is not None and digit == self._run_digit:
            self._run += 1
        else:
            self._run_digit, self._run, self._run_start = digit, (1 if digit else 0), start
        if self._down is not None:
            if digit == self._down:
                self._missing = 0
                return None
            self._missing += 1
            if self._missing >= RELEASE:
                self._down = None
            elif digit is None or self._run < HOLD:
                return None
        if digit is None or self._run < HOLD:
            return None
        self._down, self._missing = digit, 0
        rate = self.sample_rate
        return ToneKey(digit, at=(start + self.window) / rate, start=self._run_start / rate)
