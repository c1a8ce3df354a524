"""Hooks as a call runs them: flow hooks (`run`, `call_start`, `call_end`), their context, results
and time limits, and observers. Driven through FlowTester on a VirtualClock (no sleeps, no mocks
of the engine)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivrkit.channel import CallerInfo
from ivrkit.flow.model import Collect, Menu, State
from ivrkit.hooks import Hooks
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.testing import FlowTester
from ivrkit.trace import TraceEvent
from tests.call.helpers import CANCELLED, END_CALLS, FINISHED, RELEASE, SEEN, P, bank, hook, make_flow


async def test_sync_hook_gets_context_and_its_variables_are_used() -> None:
    SEEN.clear()
    async with FlowTester(bank(), caller=CallerInfo(number="+1999", attributes={"sip.trunk": "x"})) as t:
        await t.press("1")
        await t.press("1234#")
        t.expect_prompt("Your balance is 42 dollars.")
        ctx = SEEN[-1]
        assert ctx.state == "balance" and ctx.caller_number == "+1999" and ctx.sip_attributes == {"sip.trunk": "x"}
        assert ctx.flow.name == "t" and ctx.variables["pin"] == "1234"
        hook_rec = t.trace.of_kind("hook")[0]
        assert hook_rec.data == {"hook": "tests.call.helpers:lookup_balance", "result": "variables", "set": {"balance": 42}}


async def test_async_hook_returning_a_state_name_moves_there() -> None:
    flow = make_flow(
        State("start", "t.yaml:1", run=hook("route"), say=P("never said")),
        State("vip", "t.yaml:2", say=P("Hello VIP."), hangup=True),
        State("main", "t.yaml:3", say=P("Hello."), hangup=True),
    )
    async with FlowTester(flow, caller=CallerInfo(number="+1555")) as t:
        t.expect_state("vip")
        assert "never said" not in t.prompts
    async with FlowTester(flow) as t:
        t.expect_state("main")


@pytest.mark.parametrize(
    ("fn", "message"),
    [("boom", "raised RuntimeError: database is down"), ("returns_int", "returned int"),
     ("returns_ghost", "returned state 'ghost'")],
)
async def test_failing_hook_goes_to_on_error_and_is_logged_with_where(
    fn: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow(
        State("s", "t.yaml:7", run=hook(fn), say=P("ok"), next="s", on_error="sorry"),
        State("sorry", "t.yaml:9", say=P("We have a problem."), hangup=True),
    )
    async with FlowTester(flow) as t:
        t.expect_state("sorry")
        t.expect_prompt("We have a problem.")
        err = t.trace.of_kind("error")[0]
        assert message in err.data["message"] and err.data["where"] == f"t.yaml:{fn}"
        assert f"flow t state s (t.yaml:{fn})" in caplog.text and message in caplog.text
        await t.advance(5)
        t.expect_ended("hangup")


async def test_hung_hook_hits_its_time_limit_on_the_virtual_clock() -> None:
    CANCELLED.clear()
    flow = make_flow(
        State("s", "t.yaml:1", run=hook("hangs", timeout=2.0), say=P("ok"), next="s"),
        error_state=None,
    )
    async with FlowTester(flow) as t:
        await t.advance(1.9)
        t.expect_state("s")
        assert not t.prompts
        await t.advance(0.1)
        t.expect_state(BUILTIN_ERROR)
        assert CANCELLED == ["s"]
        assert t.trace.of_kind("timeout")[0].data == {"what": "hook", "hook": "tests.call.helpers:hangs", "limit": 2.0}
        assert "time limit of 2 s" in t.trace.of_kind("error")[0].data["message"]
        await t.advance(10)
        t.expect_ended("error")


async def test_a_sync_hook_past_its_limit_is_abandoned_and_its_late_result_ignored() -> None:
    RELEASE.clear()
    FINISHED.clear()
    flow = make_flow(
        State("s", "t.yaml:1", run=hook("blocks", timeout=3.0), say=P("late={late}"), hangup=True, on_error="oops"),
        State("oops", "t.yaml:2", say=P("Sorry."), hangup=True),
    )
    async with FlowTester(flow, thread_wait=0.01) as t:
        await t.advance(3)
        t.expect_state("oops")
        assert "time limit of 3 s" in t.trace.of_kind("error")[0].data["message"]
        RELEASE.set()  # the abandoned thread returns now; nothing may change
        assert await asyncio.to_thread(FINISHED.wait, 5)  # the worker thread has returned its value
        await t.advance(0)
        assert "late" not in t.variables
        t.expect_prompt("Sorry.")
        assert not any("late=" in p for p in t.prompts)


async def test_call_start_and_call_end_flow_hooks_and_observers() -> None:
    END_CALLS.clear()
    seen: list[tuple[str, str | None]] = []

    async def observe(event: TraceEvent) -> None:
        seen.append((event.kind, event.state))

    async def broken(event: TraceEvent) -> None:
        raise RuntimeError("metrics down")

    hooks = Hooks(call_start=[observe], state_enter=[observe, broken], digits=[observe], transition=[observe],
                  call_end=[observe])
    flow = make_flow(
        State("m", "t.yaml:1", say=P("open={open}"), menu=Menu(P("Press 1."), {"1": "bye"})),
        State("bye", "t.yaml:2", say=P("bye"), hangup=True),
        call_start=(hook("start_hook"),), call_end=(hook("end_hook"),),
    )
    async with FlowTester(flow, hooks=hooks) as t:
        t.expect_prompt("open=True")
        await t.press("1")
        await t.advance(5)
        t.expect_ended("hangup")
    assert seen[0] == ("call_start", None)
    assert ("state", "m") in seen and ("key", "m") in seen and ("transition", "bye") in seen
    assert seen[-1] == ("call_end", "bye")
    assert END_CALLS == ["bye"]
    errors = t.trace.of_kind("observer_error")
    assert len(errors) == 2 and errors[0].data["point"] == "state_enter" and "metrics down" in errors[0].data["error"]


async def test_a_hanging_observer_is_bounded_and_the_call_goes_on() -> None:
    async def stuck(event: TraceEvent) -> None:
        await asyncio.Event().wait()

    async with FlowTester(bank(), hooks=Hooks(transition=[stuck], timeout=0.5)) as t:
        await t.advance(0.5)  # the first transition's observer hits its limit
        assert t.trace.of_kind("observer_error")[0].data["point"] == "transition"
        t.expect_prompt("For balances")
        await t.press("2")
        await t.advance(0.5)
        t.expect_state("cards")


def _line(fn: object, text: str) -> int:
    """The line number of `text` in `fn`'s source."""
    import inspect

    lines, first = inspect.getsourcelines(fn)  # type: ignore[arg-type]
    return first + next(i for i, line in enumerate(lines) if text in line)


async def test_a_hook_error_names_the_python_line_that_raised_and_the_traceback_is_logged_masked(
        caplog: pytest.LogCaptureFixture) -> None:
    from tests.call import helpers

    flow = make_flow(
        State("s", "t.yaml:7", run=hook("boom"), say=P("ok"), hangup=True, on_error="deeper"),
        State("deeper", "t.yaml:8", run=hook("deep"), say=P("ok"), hangup=True),
    )
    with caplog.at_level(logging.DEBUG, logger="ivrkit.call"):
        async with FlowTester(flow) as t:
            await t.advance(5)
    first, second = (e.data["message"] for e in t.trace.of_kind("error"))
    assert f"(raised at tests/call/helpers.py:{_line(helpers.boom, 'raise')} (boom))" in first
    assert "json/decoder.py" in second  # where it was raised, inside the library…
    assert f"called from tests/call/helpers.py:{_line(helpers.deep, 'json.loads')} (deep))" in second  # …and the hook's line
    tracebacks = [r.getMessage() for r in caplog.records if "traceback (sensitive values masked)" in r.getMessage()]
    assert len(tracebacks) == 2 and all(r.levelno == logging.DEBUG for r in caplog.records if "traceback" in r.getMessage())
    assert 'raise RuntimeError("database is down")' in tracebacks[0] and "JSONDecodeError" in tracebacks[1]


async def test_a_validate_hook_traceback_masks_the_digits(caplog: pytest.LogCaptureFixture) -> None:
    flow = make_flow(
        State("pin", "t.yaml:1", collect=Collect(P("PIN"), into="pin", min_digits=4, max_digits=4, sensitive=True,
                                                 validate=hook("leaky_validate")), next="bye", on_error="bye"),
        State("bye", "t.yaml:2", say=P("Bye."), hangup=True),
    )
    with caplog.at_level(logging.DEBUG, logger="ivrkit.call"):
        async with FlowTester(flow) as t:
            await t.press("5678")
            await t.advance(5)
    assert "ValueError: bad pin ****" in caplog.text and "raised at tests/call/helpers.py:" in caplog.text
    assert "traceback (sensitive values masked)" in caplog.text
    assert "5678" not in caplog.text + t.trace.to_jsonl()
