"""Answering-machine detection: Asterisk's `AMD()` algorithm on 16-bit PCM, frame by frame.

Why this algorithm: it is deterministic, needs no model, and is what telephony teams already
tune (amd.conf). It reads only the energy of the far end's first seconds. A person answers
with a short "hello?" and waits, so a short burst of voice followed by silence means `human`.
A voicemail greeting ("Hi, you've reached Sam, I can't take your call...") speaks many words
without pausing, so it trips the greeting-length or word-count limit: `machine`. A line that
says nothing for `initial_silence` is `silence`. Asterisk reports that case as MACHINE; here
it has its own outcome so the flow decides. Anything undecided after `total_analysis_time` is
`unsure`, and a far end that hangs up during the analysis is `unsure` with cause `hangup`.

How a frame is judged, as Asterisk's DSP does it: a 20 ms frame is silent when the mean
absolute sample value is below `silence_threshold` (256 of 32767, about -42 dBFS). Time is
audio time, the sum of the frames' lengths, so the result depends only on the samples and not
on when they arrived. The detector cuts whatever it is fed into 20 ms frames itself.

The steps, per frame (Asterisk's `isAnsweringMachine`, same order and same limits):
- the analysis time passes `total_analysis_time` -> unsure (too_long);
- silent frame: after `between_words_silence` of silence, the next voice starts a new word.
  Silence of `initial_silence` before any word -> silence (initial_silence). Silence of
  `after_greeting_silence` after the greeting began -> human (after_greeting_silence);
- voice frame: `min_word_length` of voice in a row after a silence counts a word, and the
  first such word begins the greeting. A word of `maximum_word_length` -> machine
  (max_word_length). `maximum_number_of_words` words -> machine (max_words). Voice adding up
  to `greeting` once the greeting began -> machine (long_greeting).

Engine-side: imports nothing from LiveKit or numpy and never reads a clock.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, fields
from typing import Literal

from ivrkit.voice.framing import FrameCutter

__all__ = ["FRAME_MS", "AmdResult", "AmdSettings", "AnsweringMachineDetector", "Outcome", "OUTCOMES"]

Outcome = Literal["human", "machine", "silence", "unsure"]
OUTCOMES: tuple[Outcome, ...] = ("human", "machine", "silence", "unsure")
#: The frame the detector judges: a SIP phone's usual packet (ptime 20), as Asterisk sees it.
FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """The detector's limits. Times are in milliseconds and the threshold is a mean absolute
    16-bit sample value. The defaults are Asterisk's (app_amd.c / amd.conf.sample). Older
    releases used 2 for `maximum_number_of_words`; current ones use 3."""

    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    min_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 3
    silence_threshold: int = 256
    maximum_word_length: int = 5000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"AMD setting {f.name} must be a positive whole number, not {value!r}")


@dataclass(frozen=True, slots=True)
class AmdResult:
    """What the detector decided, and why. `cause` is one of: after_greeting_silence (human);
    long_greeting, max_words, max_word_length, beep (machine); initial_silence (silence);
    too_long, hangup, no_audio (unsure). `at_ms` is the audio analysed when it decided."""

    outcome: Outcome
    cause: str
    at_ms: int
    words: int = 0
    voice_ms: int = 0


class AnsweringMachineDetector:
    """Feed it the far end's audio from the moment it answered; `feed` returns the result
    once decided (and the same result on every later call).

        detector = AnsweringMachineDetector()
        for chunk in audio:
            result = detector.feed(chunk.samples, chunk.sample_rate)
            if result is not None:
                break
    """

    __slots__ = ("settings", "result", "_frames", "_total", "_voice", "_silence", "_run", "_words",
                 "_in_word", "_greeting")

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        self.result: AmdResult | None = None
        self._frames = FrameCutter(FRAME_MS)
        self._total = 0  # audio analysed, ms
        self._voice = 0  # voiced audio in all, ms
        self._silence = 0  # silence in a row, ms (what Asterisk's DSP reports)
        self._run = 0  # voice in a row, ms, until a between-words silence (consecutiveVoiceDuration)
        self._words = 0
        self._in_word = True  # Asterisk starts in STATE_IN_WORD: a word is counted only after a silence
        self._greeting = False  # the first word began the greeting (Asterisk's inGreeting)

    def feed(self, samples: bytes, sample_rate: int) -> AmdResult | None:
        """Analyse mono little-endian 16-bit PCM. Chunks of any size; the rate must not change."""
        if self.result is not None:
            return self.result
        for frame in self._frames.cut(samples, sample_rate):
            self._frame(frame)
            if self.result is not None:
                break
        return self.result

    def hangup(self) -> AmdResult:
        """The far end hung up (its audio ended) before a decision: unsure (hangup)."""
        if self.result is None:
            self.result = self._decide("unsure", "hangup")
        return self.result

    def give_up(self) -> AmdResult:
        """No decision in the time the caller allowed: unsure, `no_audio` when nothing was
        heard at all (the far end sent no media), else `too_long`."""
        if self.result is None:
            self.result = self._decide("unsure", "too_long" if self._total else "no_audio")
        return self.result

    def decide_machine(self, cause: str) -> AmdResult:
        """Another detector (a voicemail beep) settled it before the energy rules did."""
        if self.result is None:
            self.result = self._decide("machine", cause)
        return self.result

    # --- one frame ------------------------------------------------------------------------

    def _frame(self, frame: bytes) -> None:
        s = self.settings
        self._total += FRAME_MS
        if self._total >= s.total_analysis_time:
            self.result = self._decide("unsure", "too_long")
            return
        pcm = array("h")
        pcm.frombytes(frame)  # native order: little-endian on every platform ivrkit runs on
        level = sum(map(abs, pcm)) // len(pcm)
        if level < s.silence_threshold:
            self._silent()
        else:
            self._voiced()

    def _silent(self) -> None:
        s = self.settings
        self._silence += FRAME_MS
        if self._silence >= s.between_words_silence:
            self._in_word = False
            self._run = 0
        if not self._greeting and self._silence >= s.initial_silence:
            self.result = self._decide("silence", "initial_silence")
        elif self._greeting and self._silence >= s.after_greeting_silence:
            self.result = self._decide("human", "after_greeting_silence")

    def _voiced(self) -> None:
        s = self.settings
        self._silence = 0  # silence counts only in a row
        self._run += FRAME_MS
        self._voice += FRAME_MS
        if self._run >= s.min_word_length and not self._in_word:
            self._words += 1
            self._in_word = True
        if self._run >= s.maximum_word_length:
            self.result = self._decide("machine", "max_word_length")
        elif self._words >= s.maximum_number_of_words:
            self.result = self._decide("machine", "max_words")
        elif self._greeting and self._voice >= s.greeting:
            self.result = self._decide("machine", "long_greeting")
        elif self._run >= s.min_word_length:
            self._greeting = True  # the first word begins the greeting

    def _decide(self, outcome: Outcome, cause: str) -> AmdResult:
        return AmdResult(outcome, cause, self._total, self._words, self._voice)
