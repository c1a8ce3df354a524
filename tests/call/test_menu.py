"""Menus: options, repeat and back keys, no-input and no-match retries with escalating prompts.
Driven through FlowTester on a VirtualClock (no sleeps, no mocks of the engine)."""

from __future__ import annotations

from ivrkit.channel import CallerInfo
from ivrkit.flow.conditions import Condition
from ivrkit.flow.model import Branch, Collect, Menu, State
from ivrkit.testing import FlowTester
from tests.call.helpers import P, bank, key_records, make_flow


async def test_menu_option_moves_and_trace_is_ordered() -> None:
    async with FlowTester(bank(), caller=CallerInfo(number="+1555", called_number="+1800", call_id="c1")) as t:
        t.expect_prompt("For balances")
        t.expect_state("main")
        await t.press("2")
        t.expect_state("cards")
        t.expect_prompt("Lost card")
        assert t.variables["caller_number"] == "+1555" and t.variables["call_id"] == "c1"
        kinds = [e.kind for e in t.trace]
        assert kinds[:5] == ["call_start", "transition", "state", "prompt", "prompt_end"]
        assert [e.seq for e in t.trace] == list(range(1, len(kinds) + 1))
        key = key_records(t)[0]
        assert key.data == {"digit": "2", "arrived": 0.0, "consumed": "main"}


async def test_repeat_key_replays_without_counting_a_retry() -> None:
    async with FlowTester(bank()) as t:
        await t.press("2")
        for _ in range(5):
            await t.press("9")
        assert t.prompts.count("Lost card press 1.") == 6
        assert not t.trace.of_kind("no_match")
        t.expect_state("cards")


async def test_back_key_returns_to_previous_menu_and_without_one_is_no_match() -> None:
    async with FlowTester(bank()) as t:
        await t.press("2")
        await t.press("*")
        t.expect_state("main")
        transitions = [(e.data["from"], e.data["to"], e.data["why"]) for e in t.trace.of_kind("transition")]
        assert transitions[-1] == ("cards", "main", "back")
    flow = make_flow(State("cards", "t.yaml:1", menu=Menu(P("Lost card press 1."), {"1": "bye"}, back_key="*",
                                                          on_max_retries="bye")),
                     State("bye", "t.yaml:2", say=P("bye"), hangup=True))
    async with FlowTester(flow) as t:
        await t.press("*")
        assert len(t.trace.of_kind("no_match")) == 1
        t.expect_state("cards")


async def test_no_input_and_no_match_counted_separately_with_escalating_prompts() -> None:
    async with FlowTester(bank()) as t:
        await t.advance(2.4 + 5)  # prompt, then 5 s of silence
        t.expect_prompt("For balances")
        t.expect_prompt("Sorry, I didn't hear a choice.")
        await t.until_input()
        t.expect_prompt("For balances")
        await t.press("7")
        t.expect_prompt("That is not a valid choice.")
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Please press a key now.")  # the second no-input prompt
        await t.until_input()
        await t.press("8")
        t.expect_prompt("That is not a valid choice.")  # the last no-match prompt is reused
        assert [e.data["count"] for e in t.trace.of_kind("no_input")] == [1, 2]
        assert [e.data["count"] for e in t.trace.of_kind("no_match")] == [1, 2]
        t.expect_state("main")
        await t.until_input()
        await t.advance(5)  # third no-input: retries (3) reached
        t.expect_state("bye")
        await t.advance(5)
        t.expect_ended("hangup")
        assert t.channel.hung_up


async def test_non_dtmf_keys_are_discarded_with_a_reason() -> None:
    async with FlowTester(bank()) as t:
        t.channel.emit(__import__("ivrkit.channel", fromlist=["Key"]).Key("Z", 0.0))
        await t.press("2")
        records = key_records(t)
        assert records[0].data["discarded"] == "not a DTMF key: 'Z'"
        assert records[1].data["consumed"] == "main"


async def test_last_key_is_the_menu_option_chosen_and_never_a_collected_digit() -> None:
    flow = make_flow(
        State("main", "t.yaml:1", menu=Menu(P("Press 1 or 2."), {"1": "pin", "2": "pin"})),
        State("pin", "t.yaml:2", collect=Collect(P("PIN?"), into="pin", min_digits=4, max_digits=4, sensitive=True),
              next="which"),
        State("which", "t.yaml:3", goto=(Branch("two", Condition.parse('last_key == "2"')),), next="one"),
        State("one", "t.yaml:4", say=P("You chose {last_key}."), hangup=True),
        State("two", "t.yaml:5", say=P("Option {last_key}."), hangup=True),
    )
    for choice, state, said in (("1", "one", "You chose 1."), ("2", "two", "Option 2.")):
        async with FlowTester(flow) as t:
            await t.press(choice)
            await t.press("9876")
            t.expect_state(state)
            t.expect_prompt(said)
            assert t.variables["last_key"] == choice
