"""Confirming a collected entry: 1 accepts, 2 re-enters, silence and other keys count as retries.
Driven through FlowTester on a VirtualClock (no sleeps, no mocks of the engine)."""

from __future__ import annotations

from ivrkit.testing import FlowTester
from tests.call.helpers import P, collect_flow


async def test_confirm_one_accepts_two_reenters() -> None:
    flow = collect_flow(confirm=P("You entered {acct}. Press 1 to confirm or 2 to re-enter."))
    async with FlowTester(flow) as t:
        await t.press("1234#")
        t.expect_prompt("You entered 1234. Press 1")
        t.expect_state("acct")
        await t.press("2")
        t.expect_prompt("Enter your account number.")
        await t.press("5555#")
        await t.press("1")
        t.expect_variable("acct", "5555")
        t.expect_state("done")
        transitions = [e.data["why"] for e in t.trace.of_kind("transition")]
        assert transitions == ["start", "re-enter", "collected"]


async def test_confirm_silence_and_wrong_key_count_as_retries() -> None:
    flow = collect_flow(confirm=P("Press 1 to confirm."), no_input=(P("Still there?"),), no_match=(P("1 or 2."),))
    async with FlowTester(flow) as t:
        await t.press("1234#")
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Still there?")
        await t.until_input()
        t.expect_prompt("Press 1 to confirm.")
        await t.press("7")
        t.expect_prompt("1 or 2.")
        await t.press("1")
        t.expect_state("done")
        t.expect_variable("acct", "1234")


async def test_the_confirm_step_has_its_own_retry_prompts() -> None:
    """Silence at "press 1 to confirm" is not answered with the entry's "type your PIN"."""
    flow = collect_flow(confirm=P("Press 1 to confirm."), no_input=(P("Type your number now."),),
                        no_match=(P("Too short."),), confirm_no_input=(P("Please press 1 or 2."),),
                        confirm_no_match=(P("Only 1 or 2."),))
    async with FlowTester(flow) as t:
        await t.press("1234#")
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Please press 1 or 2.")
        await t.until_input()
        await t.press("7")
        t.expect_prompt("Only 1 or 2.")
        assert "Type your number now." not in t.prompts and "Too short." not in t.prompts
        await t.press("1")
        t.expect_state("done")
