"""The error path: `on_error`, the flow's `error_state`, the built-in error state, and the guards
that keep it from looping. Driven through FlowTester on a VirtualClock (no sleeps, no mocks of
the engine)."""

from __future__ import annotations

from typing import Any

import pytest

from ivrkit.call import MAX_HOPS
from ivrkit.call.keys import Keys
from ivrkit.flow.conditions import Condition
from ivrkit.flow.model import Branch, HookRef, Menu, Settings, State
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.testing import FlowTester
from tests.call.helpers import P, collect_flow, hook, key_records, make_flow


async def test_max_retries_without_on_max_retries_takes_the_error_path() -> None:
    flow = make_flow(State("m", "t.yaml:1", menu=Menu(P("Press 1."), {"1": "m"}), settings=Settings(retries=1)))
    async with FlowTester(flow) as t:
        await t.press("5")
        await t.advance(10)
        t.expect_ended("error")
        t.expect_prompt("Sorry, something went wrong")
        assert "no on_max_retries" in t.trace.of_kind("error")[0].data["message"]


async def test_error_inside_the_error_state_goes_to_the_builtin() -> None:
    flow = make_flow(
        State("s", "t.yaml:1", run=hook("boom"), next="s"),
        State("oops", "t.yaml:2", run=hook("boom"), say=P("oops"), hangup=True),
        error_state="oops",
    )
    async with FlowTester(flow) as t:
        t.expect_state(BUILTIN_ERROR)
        assert len(t.trace.of_kind("error")) == 2
        await t.advance(10)
        t.expect_ended("error")
        assert t.result is not None and t.result.state == BUILTIN_ERROR


async def test_a_retry_once_loop_through_on_error_ends_in_the_builtin_error_state() -> None:
    """What lets the loader accept on_error edges in a loop: the second error goes to the built-in."""
    flow = make_flow(
        State("intro", "t.yaml:1", say=P("One moment."), next="lookup"),
        State("lookup", "t.yaml:2", run=hook("boom"), on_error="intro", next="bye"),
        State("bye", "t.yaml:3", say=P("Bye."), hangup=True),
    )
    async with FlowTester(flow) as t:
        await t.advance(30)
        t.expect_ended("error")
        assert [e.state for e in t.trace.of_kind("state")] == ["intro", "lookup", "intro", "lookup", BUILTIN_ERROR]


async def test_spinning_flow_is_stopped_by_the_runtime_guard() -> None:
    flow = make_flow(
        State("a", "t.yaml:1", goto=(Branch("b"),)),
        State("b", "t.yaml:2", goto=(Branch("a", Condition.parse("x > 1")), Branch("a"))),
    )
    async with FlowTester(flow, variables={"x": 2}) as t:
        t.expect_state(BUILTIN_ERROR)
        assert "without waiting for the caller" in t.trace.of_kind("error")[0].data["message"]
        assert len(t.trace.of_kind("state")) == MAX_HOPS + 2
        await t.advance(5)
        t.expect_ended("error")


async def test_keys_during_the_builtin_error_prompt_are_discarded_not_lost() -> None:
    flow = make_flow(State("s", "t.yaml:1", run=hook("boom"), next="s"))
    async with FlowTester(flow) as t:
        await t.press("12")
        await t.advance(10)
        t.expect_ended("error")
        assert [(e.data["digit"], e.data.get("discarded")) for e in key_records(t)] == [
            ("1", "call ended"), ("2", "call ended")]


async def test_failing_call_start_hook_takes_the_flows_error_state() -> None:
    flow = make_flow(
        State("m", "t.yaml:1", say=P("hello"), hangup=True),
        State("oops", "t.yaml:2", say=P("Technical difficulties."), hangup=True),
        error_state="oops", call_start=(hook("start_fails"),),
    )
    async with FlowTester(flow) as t:
        t.expect_state("oops")
        assert "CRM unreachable" in t.trace.of_kind("error")[0].data["message"]
        t.expect_prompt("Technical difficulties.")


async def test_unimportable_hook_takes_the_error_path_at_call_time() -> None:
    flow = make_flow(State("m", "t.yaml:1", run=HookRef("nowhere_mod", "f", where="t.yaml:1:8"), say=P("x"),
                           hangup=True))
    async with FlowTester(flow) as t:
        t.expect_state(BUILTIN_ERROR)
        err = t.trace.of_kind("error")[0].data
        assert err["where"] == "t.yaml:1:8" and "cannot import module 'nowhere_mod'" in err["message"]


async def test_an_engine_bug_still_ends_the_call_cleanly_and_masked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The safety net: an unexpected exception inside the runtime ends the call as "error",
    hangs up, leaves nothing behind and logs no PIN."""
    original = Keys.collected

    def broken(self: Keys, result: Any) -> Any:
        if result.digits:
            raise RuntimeError(f"bug while handling {result.digits}")
        return original(self, result)

    monkeypatch.setattr(Keys, "collected", broken)
    flow = collect_flow(sensitive=True)
    async with FlowTester(flow) as t:
        await t.press("2580#")
        t.expect_ended("error")
        assert t.channel.hung_up and t.clock.pending() == 0
        assert "bug while handling" in t.trace.of_kind("error")[0].data["message"]
    assert "2580" not in caplog.text + t.trace.to_jsonl() and "internal error" in caplog.text


async def test_an_error_path_that_leads_back_into_the_failure_cannot_loop() -> None:
    """error_state says sorry and goes back to the failing state; the second failure, before the
    caller was waited on again, goes to the built-in prompt and hangs up."""
    flow = make_flow(
        State("s", "t.yaml:1", run=hook("boom"), menu=Menu(P("menu"), {"1": "s"})),
        State("oops", "t.yaml:2", say=P("One moment."), next="s"),
        error_state="oops",
    )
    async with FlowTester(flow) as t:
        await t.advance(1)
        t.expect_state(BUILTIN_ERROR)
        assert [e.data["to"] for e in t.trace.of_kind("transition")] == ["s", "oops", "s", BUILTIN_ERROR]
        await t.advance(5)
        t.expect_ended("error")
