"""The call's timers: deliveries through the call's queue, never callbacks into the call.

A timer that fires while a key is already queued must not overtake that key, so every timer
posts an event and the call's one consumer handles it in queue order. Both kinds are
generation-tagged: a timer cancelled or re-armed after it already fired (its event still in the
queue) is recognised as stale and ignored.
"""

from __future__ import annotations

from collections.abc import Callable

from ivrkit.call.events import CollectorTimer, Event, TimerFired
from ivrkit.clock import Clock, TimerHandle
from ivrkit.digits import CollectResult, Schedule

Post = Callable[[Event], None]


class Timer:
    """One re-armable timer (the call's no-input timer). Posts `TimerFired`; decides nothing.

    >>> from ivrkit.testing import VirtualClock
    >>> clock = VirtualClock(); posted = []
    >>> t = Timer(clock, posted.append); t.arm(5)
    >>> clock.advance(5); t.fired(posted[0])
    True
    """

    __slots__ = ("_clock", "_post", "_handle", "_gen")

    def __init__(self, clock: Clock, post: Post) -> None:
        self._clock = clock
        self._post = post
        self._handle: TimerHandle | None = None
        self._gen = 0

    def arm(self, delay: float) -> None:
        """(Re)start: fire `delay` seconds from now; an earlier arming is forgotten."""
        self.cancel()
        gen = self._gen
        post = self._post
        self._handle = self._clock.call_later(delay, lambda: post(TimerFired(gen)))

    def cancel(self) -> None:
        self._gen += 1
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def fired(self, event: TimerFired) -> bool:
        """True if `event` is this timer's current firing (then it is no longer armed)."""
        if event.gen != self._gen or self._handle is None:
            return False
        self._handle = None
        return True

    @property
    def armed(self) -> bool:
        return self._handle is not None


def queued_schedule(clock: Clock, post: Post) -> Schedule:
    """A `DigitCollector` schedule whose timers arrive as `CollectorTimer` events in the queue
    (the collector's own generation counter tells stale ones)."""

    def schedule(delay: float, fire: Callable[[], CollectResult | None]) -> TimerHandle:
        return clock.call_later(delay, lambda: post(CollectorTimer(fire)))

    return schedule
