"""DigitCollector on a VirtualClock: every end reason, timer rules, and no timer left behind."""

from __future__ import annotations

import pytest

from ivrkit.digits import CollectResult, DigitCollector, EndReason, KeyOutcome
from ivrkit.errors import CallError
from ivrkit.testing import VirtualClock


def make(clock: VirtualClock, **kw: object) -> tuple[DigitCollector, list[CollectResult]]:
    done: list[CollectResult] = []
    args: dict[str, object] = {"first_digit_timeout": 5.0, "inter_digit_timeout": 3.0}
    args.update(kw)
    return DigitCollector(clock, on_timeout=done.append, **args), done  # type: ignore[arg-type]


def test_first_digit_timeout_starts_only_at_start() -> None:
    clock = VirtualClock()
    c, done = make(clock)
    clock.advance(100)  # the prompt is still playing: no timer runs
    assert not done and not c.timer_armed
    c.start()
    clock.advance(4.9)
    assert not done
    clock.advance(0.1)
    assert done == [CollectResult("", EndReason.FIRST_DIGIT_TIMEOUT, 105.0)]
    assert clock.pending() == 0


def test_inter_digit_timeout_counts_from_last_key() -> None:
    clock = VirtualClock()
    c, done = make(clock)
    c.start()
    clock.advance(4)
    assert c.press("1") is KeyOutcome.DIGIT
    clock.advance(2.9)
    c.press("2")
    clock.advance(2.9)
    assert not done
    clock.advance(0.1)
    assert done[0].digits == "12" and done[0].reason is EndReason.INTER_DIGIT_TIMEOUT
    assert done[0].at == pytest.approx(9.9)
    assert clock.pending() == 0


def test_type_ahead_before_start_then_inter_digit_from_start() -> None:
    clock = VirtualClock()
    c, done = make(clock, max_digits=6)
    c.press("4")
    c.press("2")
    clock.advance(10)  # prompt still playing
    assert not done and c.digits == "42"
    c.start()  # prompt ended: the inter-digit timer runs from here, not from the old key
    clock.advance(2.9)
    assert not done
    clock.advance(0.2)
    assert done[0].reason is EndReason.INTER_DIGIT_TIMEOUT and done[0].digits == "42"


def test_terminator_ends_at_once_and_is_not_a_digit() -> None:
    clock = VirtualClock()
    c, done = make(clock)
    c.start()
    c.press("1")
    assert c.press("#") is KeyOutcome.TERMINATOR
    assert c.result == CollectResult("1", EndReason.TERMINATOR, 0.0)
    assert not done  # a key-driven end is returned to the caller, not via on_timeout
    assert clock.pending() == 0
    assert c.press("2") is KeyOutcome.REJECTED and c.digits == "1"


def test_no_terminator_makes_hash_a_digit() -> None:
    clock = VirtualClock()
    c, _ = make(clock, terminator=None, max_digits=3)
    c.start()
    for k in "#*1":
        c.press(k)
    assert c.result is not None and c.result.digits == "#*1" and c.result.reason is EndReason.MAX_DIGITS


def test_max_digits_completes_without_waiting() -> None:
    clock = VirtualClock()
    c, done = make(clock, max_digits=4)
    c.start()
    for k in "1234":
        c.press(k)
    assert c.result is not None and c.result.reason is EndReason.MAX_DIGITS and c.result.digits == "1234"
    assert clock.now() == 0.0 and clock.pending() == 0 and not done


def test_max_digits_reached_during_type_ahead() -> None:
    clock = VirtualClock()
    c, _ = make(clock, max_digits=2)
    c.press("1")
    c.press("2")
    assert c.done and c.result is not None and c.result.reason is EndReason.MAX_DIGITS
    c.start()  # no-op once done
    assert clock.pending() == 0


def test_clear_key_drops_digits_and_rearms_first_digit_timer() -> None:
    clock = VirtualClock()
    c, done = make(clock, clear_key="*")
    c.start()
    c.press("1")
    c.press("2")
    assert c.press("*") is KeyOutcome.CLEARED and c.digits == ""
    clock.advance(4.9)  # first-digit timeout (5 s) again, not inter-digit (3 s)
    assert not done
    clock.advance(0.1)
    assert done[0].reason is EndReason.FIRST_DIGIT_TIMEOUT and done[0].digits == ""


def test_cancel_and_hangup() -> None:
    clock = VirtualClock()
    c, done = make(clock)
    c.start()
    c.press("9")
    assert c.hangup() == CollectResult("9", EndReason.HANGUP, 0.0)
    assert c.cancel() .reason is EndReason.HANGUP  # first end wins
    assert clock.pending() == 0 and not done
    c2, _ = make(clock)
    c2.start()
    assert c2.cancel().reason is EndReason.CANCELLED and clock.pending() == 0


def test_stale_timer_callback_is_ignored() -> None:
    """A timeout that fired but was delivered late (queued behind a key) must not end input."""
    clock = VirtualClock()
    fired: list[object] = []
    delayed: list[object] = []

    def schedule(delay: float, cb: object) -> object:
        fired.append(cb)
        return clock.call_later(delay, lambda: delayed.append(cb))

    c, done = make(clock, schedule=schedule)
    c.start()
    clock.advance(5)  # the timer fired, but its delivery is "queued"
    c.press("1")  # ...behind this key, which re-arms a newer timer
    delayed[0]()  # type: ignore[operator]  # late delivery of the stale first-digit timer
    assert not done and not c.done and c.digits == "1"
    clock.advance(3)
    delayed[-1]()  # type: ignore[operator]
    assert done[0].reason is EndReason.INTER_DIGIT_TIMEOUT


@pytest.mark.parametrize(
    "kw", [{"min_digits": 5, "max_digits": 4}, {"max_digits": 0}, {"terminator": "*", "clear_key": "*"}]
)
def test_bad_limits_are_rejected(kw: dict[str, object]) -> None:
    with pytest.raises(CallError):
        make(VirtualClock(), **kw)


def test_virtual_clock_orders_ties_by_schedule_order_and_cancels() -> None:
    clock = VirtualClock()
    seen: list[str] = []
    clock.call_later(1, lambda: seen.append("a"))
    t = clock.call_later(1, lambda: seen.append("x"))
    clock.call_later(1, lambda: seen.append("b"))

    def nest() -> None:
        clock.call_later(0.2, lambda: seen.append("nested"))

    clock.call_later(0.5, nest)
    t.cancel()
    assert clock.pending() == 3
    clock.advance(2)
    assert seen == ["nested", "a", "b"] and clock.now() == 2 and clock.pending() == 0
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_virtual_clock_sleep() -> None:
    import asyncio

    clock = VirtualClock()
    task = asyncio.create_task(clock.sleep(2))
    await asyncio.sleep(0)
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.5)
    await task
    assert clock.pending() == 0
    task2 = asyncio.create_task(clock.sleep(2))
    await asyncio.sleep(0)
    task2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task2
    assert clock.pending() == 0


def test_hold_stops_the_timer_while_the_caller_speaks_and_spoken_digits_end_the_entry() -> None:
    clock = VirtualClock()
    c, done = make(clock, max_digits=6)
    c.start()
    c.press("1")
    c.hold()
    clock.advance(60)  # speaking: neither inter-digit nor first-digit timeout runs
    assert not done and not c.timer_armed
    result = c.spoken("2345678")  # appended to the typed digits; the call refuses too many
    assert result == CollectResult("12345678", EndReason.SPEECH, 60.0)
    assert c.spoken("9") is result and c.press("1") is KeyOutcome.REJECTED
    assert clock.pending() == 0


def test_a_key_after_hold_re_arms_the_inter_digit_timer() -> None:
    clock = VirtualClock()
    c, done = make(clock)
    c.start()
    c.hold()
    c.press("4")
    clock.advance(3)
    assert done == [CollectResult("4", EndReason.INTER_DIGIT_TIMEOUT, 3.0)]
