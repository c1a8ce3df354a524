"""Drive a replay: give each input at its moment on the virtual clock (see `timing`).

The driver is a `FlowTester` (`FlowTester.replay` hands itself in); this module names only the
few things it uses, as a Protocol, so the replay engine does not import the testing module that
imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ivrkit.replay.recording import Rec
from ivrkit.replay.timing import ROUNDING, Anchor, Timed, anchors
from ivrkit.trace import Trace

#: Virtual seconds a replay's call may run on after the last recorded input before the replay
#: hangs up (a changed flow may wait for keys the caller never pressed).
HORIZON = 300.0


class DriverClock(Protocol):
    def now(self) -> float: ...

    def next_due(self) -> float | None: ...


class Driver(Protocol):
    """What a replay needs of a `FlowTester`."""

    @property
    def clock(self) -> DriverClock: ...

    @property
    def trace(self) -> Trace: ...

    @property
    def running(self) -> bool: ...

    async def press(self, keys: str, *, gap: float = 0.0) -> None: ...

    async def advance(self, seconds: float) -> None: ...

    async def say(self, text: str, *, seconds: float = 0.5) -> None: ...

    async def hangup(self) -> None: ...

    async def stop(self, reason: str) -> None: ...


async def feed(driver: Driver, inputs: Sequence[Timed], recorded: Sequence[Rec], horizon: float = HORIZON) -> bool:
    """Give `inputs` in order, each at its anchor's replay time plus its delay (never before the
    one before it), then let the call run until it ends or `horizon` virtual seconds pass.
    True when the call ended by itself (False: the tester will hang up)."""
    known = {a: t for a, t, _ in anchors(recorded)}
    last = 0.0
    for item in inputs:
        if not driver.running:
            break
        when = max(await _moment(driver, item, known), last, driver.clock.now())
        await driver.advance(when - driver.clock.now())
        if not driver.running:
            break
        if item.said is not None:
            await driver.say(item.said, seconds=0.0)
        elif item.stop is not None:
            await driver.stop(item.stop)
        elif item.digit is None:
            await driver.hangup()
        else:
            await driver.press(item.digit)
        last = when
    end = driver.clock.now() + horizon
    while driver.running:
        due = driver.clock.next_due()
        if due is None or due > end:
            return False
        await driver.advance(due - driver.clock.now())
    return True


async def _moment(driver: Driver, item: Timed, known: dict[Anchor, float]) -> float:
    """When `item` goes in: its anchor's replay time plus its delay. Until the anchor has
    happened, time moves on timer by timer; if it never comes (the flow changed), the item goes
    in at its recorded time, shifted as much as the last anchor both calls share (a timer due
    within `ROUNDING` of that still fires first: the anchor may be that timer)."""
    while True:
        seen = {a: t for a, t, _ in anchors(driver.trace.events)}
        if item.anchor in seen:
            return seen[item.anchor] + item.delay
        shared = [(a, t) for a, t in seen.items() if a in known]
        shift = max(shared, key=lambda at: at[1], default=(None, 0.0))
        fallback = item.at + (shift[1] - known[shift[0]] if shift[0] is not None else 0.0)
        due = driver.clock.next_due()
        if not driver.running or due is None or due > fallback + ROUNDING:
            return fallback
        await driver.advance(due - driver.clock.now())
