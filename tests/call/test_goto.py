"""`goto` branches: the first true condition wins, else `next`. Driven through FlowTester on a
VirtualClock (no sleeps, no mocks of the engine)."""

from __future__ import annotations

import logging

import pytest

from ivrkit.flow.conditions import Condition
from ivrkit.flow.model import Branch, State
from ivrkit.testing import FlowTester
from tests.call.helpers import P, make_flow


async def test_goto_takes_the_first_true_branch_or_next() -> None:
    flow = make_flow(
        State("g", "t.yaml:1", goto=(Branch("low", Condition.parse("balance < 10")),
                                     Branch("high", Condition.parse("balance >= 1000"))), next="mid"),
        State("low", "t.yaml:2", say=P("low"), hangup=True),
        State("high", "t.yaml:3", say=P("high"), hangup=True),
        State("mid", "t.yaml:4", say=P("mid"), hangup=True),
    )
    for balance, state in ((5, "low"), (5000, "high"), (500, "mid")):
        async with FlowTester(flow, variables={"balance": balance}) as t:
            t.expect_state(state)


_TYPE_ERROR_FLOW = """
flow: g
start: pin
states:
  pin:
    collect: {prompt: "PIN?", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: route
  route:
    goto:
      - {if: "balance > 100", then: rich}
      - {if: "pin - code > 0", then: rich}
      - {else: plain}
  rich: {say: "rich", hangup: true}
  plain: {say: "plain", hangup: true}
"""


async def test_a_condition_type_error_takes_the_else_arm_and_is_logged_and_traced_masked(
        caplog: pytest.LogCaptureFixture) -> None:
    from ivrkit.flow.loader import load_flow_text

    with caplog.at_level(logging.WARNING, logger="ivrkit.call"):
        async with FlowTester(load_flow_text(_TYPE_ERROR_FLOW), variables={"code": "abc"}) as t:
            await t.until_input()
            await t.press("0042")  # leading zero: the message must not show it as 42 either
            t.expect_prompt("plain")
    problems = t.trace.of_kind("condition_error")
    assert [p.data["where"] for p in problems] == ["<string>:10:9", "<string>:11:9"]
    assert "cannot compare None and 100" in problems[0].data["message"]
    assert "cannot compute '****' - 'abc'" in problems[1].data["message"]
    lines = [r.getMessage() for r in caplog.records if "the arm is taken as false" in r.getMessage()]
    assert len(lines) == 2 and "flow g state route (<string>:10:9)" in lines[0] and "balance > 100" in lines[0]
    assert "0042" not in caplog.text + t.trace.to_jsonl() and not t.trace.of_kind("error")
