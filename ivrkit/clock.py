"""Time as the engine sees it.

The engine never reads the wall clock or calls `asyncio.sleep` itself: every timeout (first
digit, inter-digit, hook limit, DTMF pacing) goes through a `Clock`. Production uses
`LoopClock` (the event loop's monotonic time); tests use `ivrkit.testing.VirtualClock`, which
only moves when the test says so — that is what makes a 5 s timeout testable in microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class TimerHandle(Protocol):
    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Monotonic seconds plus scheduling. Callbacks run on the event loop thread."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle: ...

    async def sleep(self, delay: float) -> None: ...


class LoopClock:
    """The production clock: the running event loop's monotonic time."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def now(self) -> float:
        return self.loop.time()

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        return self.loop.call_later(max(delay, 0.0), callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(delay, 0.0))
