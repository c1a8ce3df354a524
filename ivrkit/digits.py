"""Multi-digit keypad input: the `DigitCollector`.

Pure logic on a `Clock` — no channel, no prompts, no asyncio. The call runtime feeds it keys
and asks it to `start()` when the prompt has ended; it answers with a `CollectResult` carrying
the digits and the `EndReason`. Why a separate object: this is where callers' real behaviour
(typing ahead, pausing, pressing `#` early, mashing keys) is decided, so it must be testable on
its own with a virtual clock and a property test.

Rules (what a serious IVR does):
- The first-digit timeout starts when the prompt has *ended* (`start()`), never while it plays.
- The inter-digit timeout counts from the last key, or from `start()` when the keys were typed
  ahead during the prompt (a caller who typed ahead was still listening).
- The terminator (default `#`, may be None) ends input at once; it is not part of the digits.
- Reaching `max_digits` ends input at once, with no waiting for a terminator or a timeout.
- The clear key (optional) drops the digits typed so far and re-arms the first-digit timer.
- `min_digits` is *not* enforced here: the result reports what the caller did, and the call
  decides that too few digits is a no-match. That keeps "why did input end" and "is it valid"
  apart, which is what a flow wants to branch on.

Timer delivery: by default timers fire through `clock.call_later` and end input through
`on_timeout`. A call runtime passes its own `schedule` so that timeouts arrive as events in the
same queue as keys — then a key already queued before the timeout fired is still seen first —
and acts on the `CollectResult` that the scheduled callback returns when it ended input. Stale
timer callbacks are ignored (generation counter, they return None), so cancelling a timer that
already fired is harmless.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from ivrkit.clock import Clock, TimerHandle
from ivrkit.errors import CallError

#: Runs a callback later; the callback returns the result when its timer ended input.
Schedule = Callable[[float, Callable[[], "CollectResult | None"]], TimerHandle]


class EndReason(enum.StrEnum):
    """Why collection ended. The call stores it in `<into>_reason` and the trace records it."""

    TERMINATOR = "terminator"
    MAX_DIGITS = "max_digits"
    INTER_DIGIT_TIMEOUT = "inter_digit_timeout"
    FIRST_DIGIT_TIMEOUT = "first_digit_timeout"
    CANCELLED = "cancelled"
    HANGUP = "hangup"
    SPEECH = "speech"  # the caller said the digits (an utterance is a whole entry)


class KeyOutcome(enum.StrEnum):
    """What one key did. Every key pressed gets exactly one outcome — none is dropped silently."""

    DIGIT = "digit"  # appended to the digits
    TERMINATOR = "terminator"  # ended input
    CLEARED = "cleared"  # the clear key; digits dropped
    REJECTED = "rejected"  # collector already done: the caller must keep the key elsewhere


@dataclass(frozen=True, slots=True)
class CollectResult:
    digits: str
    reason: EndReason
    at: float


class DigitCollector:
    """Collects one multi-digit entry. One instance per entry attempt (cheap: slots, no task).

    >>> from ivrkit.testing import VirtualClock
    >>> clock = VirtualClock(); done = []
    >>> c = DigitCollector(clock, on_timeout=done.append, max_digits=4, first_digit_timeout=5)
    >>> c.start(); c.press("1"), c.press("2")
    (<KeyOutcome.DIGIT: 'digit'>, <KeyOutcome.DIGIT: 'digit'>)
    >>> clock.advance(3); done[0].digits, done[0].reason.value
    ('12', 'inter_digit_timeout')
    """

    __slots__ = (
        "_clock",
        "_schedule",
        "_on_timeout",
        "min_digits",
        "max_digits",
        "terminator",
        "clear_key",
        "first_digit_timeout",
        "inter_digit_timeout",
        "_digits",
        "_started",
        "_timer",
        "_gen",
        "result",
    )

    def __init__(
        self,
        clock: Clock,
        *,
        on_timeout: Callable[[CollectResult], None] | None = None,
        min_digits: int = 1,
        max_digits: int = 20,
        terminator: str | None = "#",
        clear_key: str | None = None,
        first_digit_timeout: float = 5.0,
        inter_digit_timeout: float = 3.0,
        schedule: Schedule | None = None,
    ) -> None:
        if max_digits < 1 or min_digits < 0 or min_digits > max_digits:
            raise CallError(f"bad digit limits: min_digits={min_digits}, max_digits={max_digits}")
        if terminator is not None and terminator == clear_key:
            raise CallError(f"the terminator {terminator!r} cannot also be the clear key")
        self._clock = clock
        self._schedule: Schedule = schedule or clock.call_later
        self._on_timeout = on_timeout
        self.min_digits = min_digits
        self.max_digits = max_digits
        self.terminator = terminator
        self.clear_key = clear_key
        self.first_digit_timeout = first_digit_timeout
        self.inter_digit_timeout = inter_digit_timeout
        self._digits = ""
        self._started = False
        self._timer: TimerHandle | None = None
        self._gen = 0
        self.result: CollectResult | None = None

    # --- queries -------------------------------------------------------------------------------

    @property
    def digits(self) -> str:
        return self._digits

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def timer_armed(self) -> bool:
        return self._timer is not None

    # --- inputs --------------------------------------------------------------------------------

    def start(self) -> None:
        """The prompt has ended (or was skipped): from now on silence counts. Idempotent."""
        if self.result is not None or self._started:
            return
        self._started = True
        if self._digits:
            self._arm(self.inter_digit_timeout, EndReason.INTER_DIGIT_TIMEOUT)
        else:
            self._arm(self.first_digit_timeout, EndReason.FIRST_DIGIT_TIMEOUT)

    def press(self, key: str) -> KeyOutcome:
        """Feed one key. Before `start()` keys are type-ahead: kept, but no timer runs yet."""
        if self.result is not None:
            return KeyOutcome.REJECTED
        if self.terminator is not None and key == self.terminator:
            self._finish(EndReason.TERMINATOR)
            return KeyOutcome.TERMINATOR
        if self.clear_key is not None and key == self.clear_key:
            self._digits = ""
            if self._started:
                self._arm(self.first_digit_timeout, EndReason.FIRST_DIGIT_TIMEOUT)
            return KeyOutcome.CLEARED
        self._digits += key
        if len(self._digits) >= self.max_digits:
            self._finish(EndReason.MAX_DIGITS)
        elif self._started:
            self._arm(self.inter_digit_timeout, EndReason.INTER_DIGIT_TIMEOUT)
        return KeyOutcome.DIGIT

    def cancel(self, reason: EndReason = EndReason.CANCELLED) -> CollectResult:
        """End now (the call left the state, or the caller hung up). Returns the result."""
        if self.result is None:
            self._finish(reason)
        assert self.result is not None
        return self.result

    def hold(self) -> None:
        """The caller is speaking: no timer runs until `spoken()` (or a key) — a long utterance
        is not a first-digit timeout. Keys pressed meanwhile re-arm as usual."""
        self._disarm()

    def spoken(self, digits: str) -> CollectResult:
        """The caller said `digits`: they follow any typed so far and end the entry (more than
        `max_digits` is for the call to refuse, not to cut)."""
        if self.result is None:
            self._digits += digits
            self._finish(EndReason.SPEECH)
        assert self.result is not None
        return self.result

    def hangup(self) -> CollectResult:
        return self.cancel(EndReason.HANGUP)

    # --- internals -----------------------------------------------------------------------------

    def _arm(self, delay: float, reason: EndReason) -> None:
        self._disarm()
        self._gen += 1
        gen = self._gen
        self._timer = self._schedule(delay, lambda: self._expire(gen, reason))

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, gen: int, reason: EndReason) -> CollectResult | None:
        if gen != self._gen or self.result is not None:
            return None  # a timer that was cancelled or superseded after it had already fired
        self._timer = None
        self._finish(reason)
        assert self.result is not None
        if self._on_timeout is not None:
            self._on_timeout(self.result)
        return self.result

    def _finish(self, reason: EndReason) -> None:
        self._disarm()
        self._gen += 1
        self.result = CollectResult(self._digits, reason, self._clock.now())
