"""Property tests: random keys and timings against the DigitCollector and against whole calls.

Invariants: no digit lost or invented (every key pressed is accounted for, in order), no timer
left behind, no exception.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivrkit.digits import CollectResult, DigitCollector, EndReason, KeyOutcome
from ivrkit.flow.model import Collect, Flow, HookRef, Menu, SendDtmf, Settings, State
from ivrkit.hooks import HookContext
from ivrkit.machine import FlowMachine
from ivrkit.prompts import Prompt
from ivrkit.testing import FlowTester, VirtualClock

KEYS = "0123456789*#ABCD"
P = Prompt.text

key_st = st.sampled_from(KEYS)
op_st = st.one_of(
    st.tuples(st.just("press"), key_st),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=8.0, allow_nan=False)),
    st.tuples(st.just("start"), st.just(0.0)),
)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(op_st, max_size=40),
    min_digits=st.integers(0, 4),
    extra=st.integers(0, 6),
    terminator=st.sampled_from(["#", None, "*"]),
    clear_key=st.sampled_from([None, "*", "0"]),
    first=st.floats(0.5, 6.0),
    inter=st.floats(0.5, 4.0),
    end=st.sampled_from(["none", "cancel", "hangup"]),
)
def test_collector_never_loses_or_invents_a_digit(
    ops: list[tuple[str, Any]], min_digits: int, extra: int, terminator: str | None, clear_key: str | None,
    first: float, inter: float, end: str,
) -> None:
    if terminator is not None and terminator == clear_key:
        clear_key = None
    clock = VirtualClock()
    timeouts: list[CollectResult] = []
    c = DigitCollector(clock, on_timeout=timeouts.append, min_digits=min_digits, max_digits=max(1, min_digits + extra),
                       terminator=terminator, clear_key=clear_key, first_digit_timeout=first, inter_digit_timeout=inter)
    expected = ""  # what the digits must be, rebuilt from each key's outcome
    started = False
    last_activity = 0.0
    for op, arg in ops:
        if op == "press":
            before_done = c.done
            outcome = c.press(arg)
            if before_done:
                assert outcome is KeyOutcome.REJECTED
            elif outcome is KeyOutcome.DIGIT:
                expected += arg
            elif outcome is KeyOutcome.CLEARED:
                assert arg == clear_key
                expected = ""
            elif outcome is KeyOutcome.TERMINATOR:
                assert arg == terminator
            else:
                raise AssertionError("a live collector rejected a key")
            assert c.digits == expected
            if not before_done:
                last_activity = clock.now()
        elif op == "wait":
            clock.advance(arg)
        else:
            if not started and not c.done:
                last_activity = max(last_activity, clock.now())
            started = True
            c.start()
        if c.done:
            assert clock.pending() == 0
    if end == "cancel":
        c.cancel()
    elif end == "hangup":
        c.hangup()
    assert clock.pending() == 0 or (not c.done and started)
    if c.done:
        r = c.result
        assert r is not None and r.digits == expected and clock.pending() == 0
        assert len(r.digits) <= c.max_digits
        assert (r.reason is EndReason.MAX_DIGITS) == (len(r.digits) == c.max_digits and r.reason is EndReason.MAX_DIGITS)
        if r.reason in (EndReason.FIRST_DIGIT_TIMEOUT, EndReason.INTER_DIGIT_TIMEOUT):
            assert started and timeouts == [r]
            limit = first if r.reason is EndReason.FIRST_DIGIT_TIMEOUT else inter
            assert r.at >= last_activity + limit - 1e-9
        else:
            assert timeouts == []
    else:
        assert not timeouts and c.digits == expected
        c.cancel()
        assert clock.pending() == 0


# --- whole calls ---------------------------------------------------------------------------------


async def lookup(ctx: HookContext) -> dict[str, Any]:
    return {"balance": 12}


def flow() -> Flow:
    states = [
        State("intro", "p.yaml:1", say=P("Calls may be recorded."), settings=Settings(barge_in=False), next="main"),
        State("main", "p.yaml:2", menu=Menu(P("Press 1 for balance, 2 for account, 3 to send."),
                                            {"1": "pin", "2": "acct", "3": "send", "0": "bye"}, repeat_key="9",
                                            no_input=(P("Hello?"),), no_match=(P("Invalid."),), on_max_retries="bye")),
        State("pin", "p.yaml:3", collect=Collect(P("PIN then pound."), into="pin", min_digits=4, max_digits=6,
                                                 sensitive=True, clear_key="*", on_max_retries="main"),
              next="balance", settings=Settings(retries=2)),
        State("acct", "p.yaml:4", collect=Collect(P("Account."), into="acct", min_digits=2, max_digits=3, back_key="*",
                                                  confirm=P("You said {acct}. 1 yes, 2 no."), on_max_retries="main"),
              next="main", settings=Settings(terminator=None, barge_in=False)),
        State("balance", "p.yaml:5", run=HookRef(__name__, "lookup"), say=P("Balance {balance}."),
              next="main"),
        State("send", "p.yaml:6", send_dtmf=SendDtmf("12w#"), next="main"),
        State("bye", "p.yaml:7", say=P("Bye."), hangup=True),
    ]
    return Flow(name="p", start="intro", states={s.name: s for s in states}, file="p.yaml")


MACHINE = FlowMachine(flow())
call_op_st = st.one_of(
    st.tuples(st.just("press"), st.sampled_from(KEYS + "x")),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=7.0, allow_nan=False)),
)


async def run_call(ops: list[tuple[str, Any]], hang_up: bool) -> None:
    pressed: list[str] = []
    async with FlowTester(MACHINE) as t:
        for op, arg in ops:
            if t.result is not None:
                break
            if op == "press":
                pressed.append(arg.upper())
                await t.press(arg)
            else:
                await t.advance(arg)
        if hang_up and t.result is None:
            await t.hangup()
    # after the tester exits: the call ended, nothing is pending, every key is accounted for
    assert t.result is not None and t.clock.pending() == 0 and t.trace.closed
    records = t.trace.keys()
    assert len(records) == len(pressed), (pressed, t.trace.tail(60))
    for key, rec in zip(pressed, records):
        assert ("consumed" in rec.data) != ("discarded" in rec.data)
        assert rec.data["digit"] in (key, "*", "?"), (key, rec)
        if rec.data["digit"] != key:  # masked: while collecting the PIN, or typed ahead and never used
            assert rec.state == "pin" or (rec.data["digit"] == "?" and "discarded" in rec.data), rec
    assert "consumed" not in str([r.data for r in records if r.data["digit"] == "X"])
    assert MACHINE.model_count == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(call_op_st, max_size=30), hang_up=st.booleans())
def test_random_callers_never_lose_or_invent_a_key(ops: list[tuple[str, Any]], hang_up: bool) -> None:
    asyncio.run(run_call(ops, hang_up))
