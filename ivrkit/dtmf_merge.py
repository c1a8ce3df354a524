"""One key per press when a press arrives twice: as an RFC 4733 event and as tones in the audio.

Why: some trunks and PBXs send every key both ways — a telephone-event *and* the tone left in
the voice stream. A flow with `dtmf: both` listens to both (it cannot know which a caller's
trunk does), so without this every press would count twice and a PIN 1234 would arrive as
11223344.

The rule (`KeyMerge.accept`): a key from one source is the same press as an *unmatched* key of
the same digit from the other source less than `window` seconds earlier; it is then dropped and
that earlier key is matched (it cannot absorb a second one). Otherwise it is a new press, counted
at once — the first half of a press to arrive is never delayed. Because each key absorbs at most
one key of the other source, a caller pressing 1 twice quickly still gets 11 (event, tone, event,
tone pair off in order), and keys of one source never merge with each other.

`MERGE_WINDOW` is the longest time between the two halves of one press: the event and the tone
leave the phone together, then the tone waits for the detector (35-40 ms into it) and travels
the media path (jitter buffer, decoding: ~0.1-0.2 s measured end to end, see docs/inband-dtmf.md);
0.5 s leaves margin and stays under the 0.5 s or more between two presses of the same key when
one half of a press was lost (the only case where two presses could merge).

Engine code: no LiveKit import; times are the caller's clock readings.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["MERGE_WINDOW", "KeyMerge", "KeySource"]

KeySource = Literal["rfc4733", "inband"]
MERGE_WINDOW = 0.5


@dataclass(frozen=True, slots=True)
class _Counted:
    digit: str
    source: KeySource
    at: float


class KeyMerge:
    """Decides, key by key, whether a key is a new press (True) or the other half of one (False)."""

    def __init__(self, window: float = MERGE_WINDOW) -> None:
        self.window = window
        self._unmatched: deque[_Counted] = deque()

    def accept(self, digit: str, source: KeySource, at: float) -> bool:
        """True: a new press, pass it on. False: the same press as an earlier key from the other
        source — drop it."""
        while self._unmatched and self._unmatched[0].at < at - self.window:
            self._unmatched.popleft()
        for earlier in self._unmatched:
            if earlier.source != source and earlier.digit == digit:
                self._unmatched.remove(earlier)
                return False
        self._unmatched.append(_Counted(digit, source, at))
        return True
