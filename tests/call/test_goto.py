"""`goto` branches: the first true condition wins, else `next`. Driven through FlowTester on a
VirtualClock (no sleeps, no mocks of the engine)."""

from __future__ import annotations

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
