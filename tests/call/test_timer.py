"""The call's timers alone on a VirtualClock: they post events and decide nothing."""

from __future__ import annotations

from typing import Any

from ivrkit.call.events import CollectorTimer, TimerFired
from ivrkit.call.timer import Timer, queued_schedule
from ivrkit.digits import DigitCollector, EndReason
from ivrkit.testing import VirtualClock


def test_timer_posts_when_due_and_is_then_disarmed() -> None:
    clock, posted = VirtualClock(), list[Any]()
    timer = Timer(clock, posted.append)
    timer.arm(5)
    clock.advance(4.9)
    assert posted == [] and timer.armed
    clock.advance(0.1)
    assert posted == [TimerFired(posted[0].gen)]
    assert timer.fired(posted[0]) and not timer.armed
    assert not timer.fired(posted[0])  # a second look at the same firing


def test_a_firing_already_queued_is_stale_after_rearm_or_cancel() -> None:
    clock, posted = VirtualClock(), list[Any]()
    timer = Timer(clock, posted.append)
    timer.arm(1)
    clock.advance(1)  # fired: its event waits in the queue...
    timer.arm(3)  # ...while the call re-arms (a re-prompt)
    assert not timer.fired(posted[0])
    clock.advance(3)
    assert timer.fired(posted[1])
    timer.arm(1)
    clock.advance(1)
    timer.cancel()
    assert not timer.fired(posted[2]) and clock.pending() == 0


def test_cancel_leaves_no_timer_on_the_clock() -> None:
    clock = VirtualClock()
    timer = Timer(clock, lambda e: None)
    timer.arm(5)
    timer.arm(6)
    timer.cancel()
    assert clock.pending() == 0 and not timer.armed


def test_collector_timers_arrive_as_events_and_return_their_result() -> None:
    clock, posted = VirtualClock(), list[Any]()
    c = DigitCollector(clock, max_digits=4, first_digit_timeout=5, inter_digit_timeout=3,
                       schedule=queued_schedule(clock, posted.append))
    c.start()
    clock.advance(5)  # the first-digit timer is due: its event waits in the queue...
    c.press("1")  # ...behind this key, which arms the inter-digit timer
    clock.advance(3)
    assert len(posted) == 2 and all(isinstance(e, CollectorTimer) for e in posted)
    stale, due = posted
    assert stale.fire() is None
    result = due.fire()
    assert result is not None and (result.digits, result.reason) == ("1", EndReason.INTER_DIGIT_TIMEOUT)
    assert c.done and clock.pending() == 0
