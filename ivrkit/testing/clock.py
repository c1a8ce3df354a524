"""`VirtualClock`: time that moves only when a test says so, timers fired in order.

Deterministic: ties fire in the order they were scheduled, so a 5 s timeout costs microseconds
and a test never races the machine it runs on."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable


class _VTimer:
    __slots__ = ("when", "seq", "callback", "cancelled", "_clock")

    def __init__(self, when: float, seq: int, callback: Callable[[], object], clock: VirtualClock) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False
        self._clock = clock

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._clock._live -= 1

    def __lt__(self, other: _VTimer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class VirtualClock:
    """A `Clock` whose time moves only in `advance()`. Starts at 0.0."""

    __slots__ = ("_now", "_heap", "_seq", "_live")

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[_VTimer] = []
        self._seq = 0
        self._live = 0

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], object]) -> _VTimer:
        self._seq += 1
        timer = _VTimer(self._now + max(delay, 0.0), self._seq, callback, self)
        heapq.heappush(self._heap, timer)
        self._live += 1
        return timer

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def pending(self) -> int:
        """Timers scheduled and neither fired nor cancelled (a leak check after a call)."""
        return self._live

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def fire_next(self, until: float) -> bool:
        """Fire the earliest timer due at or before `until` (moving time to it). False if none."""
        due = self.next_due()
        if due is None or due > until:
            return False
        timer = heapq.heappop(self._heap)
        self._now = max(self._now, timer.when)
        timer.cancelled = True
        self._live -= 1
        timer.callback()
        return True

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, in time order (synchronously)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self._now + seconds
        while self.fire_next(target):
            pass
        self._now = target
