"""A call's life: it runs once, ends cleanly on a caller hang-up or cancellation at any point, and
calls share one compiled machine. Driven through FlowTester on a VirtualClock (no sleeps, no
mocks of the engine)."""

from __future__ import annotations

import asyncio

import pytest

from ivrkit.call import Call
from ivrkit.flow.model import Collect, Menu, State
from ivrkit.machine import FlowMachine
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock
from tests.call.helpers import CANCELLED, MENU_TEXT, P, bank, hook, make_flow


@pytest.mark.parametrize("when", ["prompt", "hook", "collect", "confirm"])
async def test_caller_hangup_at_any_point_leaves_nothing_behind(when: str) -> None:
    CANCELLED.clear()
    flow = make_flow(
        State("m", "t.yaml:1", menu=Menu(P(MENU_TEXT), {"1": "wait", "2": "pin"})),
        State("wait", "t.yaml:2", run=hook("hangs"), next="m"),
        State("pin", "t.yaml:3", collect=Collect(P("PIN"), into="pin", sensitive=True, min_digits=4, max_digits=4,
                                                 confirm=P("Press 1 to confirm.")), next="m"),
    )
    before = len(asyncio.all_tasks())
    async with FlowTester(flow) as t:
        await _go_to(t, when)
        await t.hangup()
        t.expect_ended("caller_hangup")
        assert t.clock.pending() == 0
        assert len(asyncio.all_tasks()) == before + 0  # the call task is done, the hook task gone
        assert t.trace.closed and t.trace.events[-1].data == {"ended_by": "caller_hangup"}
        assert t.call.machine.model_count == 0
        assert not t.channel.hung_up  # the caller hung up; we do not hang up again
        if when == "hook":
            assert CANCELLED == ["wait"]
        if when == "collect":
            assert t.trace.of_kind("collect")[-1].data == {"into": "pin", "digits": "**", "reason": "hangup"}
            t.expect_variable("pin_reason", "hangup")
        if when == "prompt":
            assert t.channel.played[-1].interrupted


async def test_cancelling_run_cleans_up_then_reraises() -> None:
    CANCELLED.clear()
    flow = make_flow(State("wait", "t.yaml:2", run=hook("hangs"), next="wait"))
    clock = VirtualClock()
    channel = FakeChannel(clock)
    call = Call(FlowMachine(flow), channel)
    task = asyncio.create_task(call.run())
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert CANCELLED == ["wait"] and clock.pending() == 0 and channel.closed
    assert call.trace.events[-1].data == {"ended_by": "cancelled"}


async def test_a_call_runs_once_and_keys_after_the_end_are_recorded() -> None:
    async with FlowTester(bank()) as t:
        await t.press("0")
        await t.advance(1)
        t.expect_ended("transfer")
    with pytest.raises(Exception, match="runs once"):
        await t.call.run()


async def test_two_concurrent_calls_share_one_machine() -> None:
    machine = FlowMachine(bank())
    async with FlowTester(machine) as a, FlowTester(machine) as b:
        await a.press("2")
        await b.press("1")
        a.expect_state("cards")
        b.expect_state("pin")
        assert machine.model_count == 2
    assert machine.model_count == 0


@pytest.mark.parametrize("when", ["prompt", "hook", "collect", "input"])
async def test_stop_at_any_point_hangs_up_and_ends_the_trace_saying_why(when: str) -> None:
    """`Call.stop` (the worker shutting down): the call ends at once wherever it is, the caller
    is hung up rather than left in silence, and nothing is left running."""
    CANCELLED.clear()
    flow = make_flow(
        State("m", "t.yaml:1", menu=Menu(P(MENU_TEXT), {"1": "wait", "2": "pin"})),
        State("wait", "t.yaml:2", run=hook("hangs"), next="m"),
        State("pin", "t.yaml:3", collect=Collect(P("PIN"), into="pin", sensitive=True, min_digits=4, max_digits=4),
              next="m"),
    )
    before = len(asyncio.all_tasks())
    async with FlowTester(flow) as t:
        await _go_to(t, when)
        t.expect_running()
        t.call.stop("the worker stopped")
        await t.advance(0)  # no time passes: the stop is handled as soon as it is read
        t.expect_ended("stopped")
        assert t.channel.hung_up and t.channel.closed
        assert t.trace.closed and t.trace.events[-1].data == {"ended_by": "stopped", "reason": "the worker stopped"}
        assert t.clock.pending() == 0
        assert len(asyncio.all_tasks()) == before + 0
        assert t.call.machine.model_count == 0
        if when == "hook":
            assert CANCELLED == ["wait"]
        if when == "collect":  # the PIN typed so far stays masked in the trace
            assert t.trace.of_kind("collect")[-1].data == {"into": "pin", "digits": "**", "reason": "cancelled"}
        if when == "prompt":
            assert t.channel.played[-1].interrupted


async def test_stop_before_run_ends_the_call_as_it_starts() -> None:
    clock = VirtualClock()
    channel = FakeChannel(clock)
    call = Call(FlowMachine(bank()), channel)
    call.stop("the worker stopped")
    result = await call.run()
    assert result.ended_by == "stopped" and channel.hung_up
    assert call.trace.events[-1].data == {"ended_by": "stopped", "reason": "the worker stopped"}
    assert [e.kind for e in call.trace] == ["call_start", "call_end"], "a state was entered after the stop"
    assert not channel.played
    assert clock.pending() == 0


async def test_stop_after_the_end_changes_nothing() -> None:
    async with FlowTester(bank()) as t:
        await t.hangup()
        t.expect_ended("caller_hangup")
        t.call.stop("the worker stopped")
        await t.advance(1)
        t.expect_ended("caller_hangup")
        assert not t.channel.hung_up
        assert [e.data for e in t.trace.of_kind("call_end")] == [{"ended_by": "caller_hangup"}]


async def _go_to(t: FlowTester, when: str) -> None:
    """Bring the call to the moment `when`: inside a hook that hangs, halfway through a PIN, at
    its confirmation, or waiting for input ("menu": as it starts)."""
    if when == "hook":
        await t.press("1")
    elif when == "collect":
        await t.press("2")
        await t.until_input()
        await t.press("12")
    elif when == "confirm":
        await t.press("21234")
    elif when == "input":
        await t.until_input()
