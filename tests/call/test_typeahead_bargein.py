"""Barge-in and type-ahead: keys that cut a prompt, keys kept while a prompt or hook runs, keys
that skip the next prompt. Driven through FlowTester on a VirtualClock (no sleeps, no mocks of
the engine)."""

from __future__ import annotations

import pytest

from ivrkit.flow.model import Menu, Settings, State
from ivrkit.testing import FlowTester
from tests.call.helpers import MENU_TEXT, P, bank, hook, key_records, main_menu, make_flow


async def test_barge_in_stops_the_prompt_at_once() -> None:
    async with FlowTester(bank()) as t:
        await t.advance(1.0)
        await t.press("2")
        first = t.channel.played[0]
        assert first.interrupted and first.ended == 1.0
        t.expect_state("cards")


async def test_barge_in_off_plays_to_the_end_and_keeps_the_key() -> None:
    async with FlowTester(bank(settings=Settings(barge_in=False))) as t:
        await t.advance(1.0)
        await t.press("2")
        t.expect_state("main")  # still listening to the whole prompt
        assert not t.channel.played[0].interrupted and t.channel.played[0].ended is None
        await t.advance(1.4)
        assert t.channel.played[0].ended == pytest.approx(2.4) and not t.channel.played[0].interrupted
        t.expect_state("cards")
        assert key_records(t)[0].data["consumed"] == "main"


async def test_type_ahead_through_menu_into_collect_skips_prompts() -> None:
    """A regular caller types "1 4 3 2 1 #" before the menu finishes."""
    async with FlowTester(bank()) as t:
        await t.advance(0.5)
        await t.press("14321#")
        t.expect_state("balance")  # the hook ran; its answer is being said
        assert t.variables["pin"] == "4321" and t.variables["pin_reason"] == "terminator"
        await t.advance(1.62)
        t.expect_state("main")
        t.expect_prompt("For balances")
        t.expect_prompt("Your balance is 42 dollars")
        digits = [e.data["digit"] for e in key_records(t)]
        assert digits == ["1", "*", "*", "*", "*", "*"]


async def test_keys_during_a_hook_and_say_are_kept_and_skip_the_next_prompt() -> None:
    flow = make_flow(
        State("hello", "t.yaml:1", run=hook("lookup_balance"), say=P("Calls are recorded. " * 5),
              settings=Settings(barge_in=False), next="main"),
        main_menu(),
        State("pin", "t.yaml:3", say=P("pin"), hangup=True),
        State("cards", "t.yaml:4", say=P("cards"), hangup=True),
        State("agent", "t.yaml:5", say=P("agent"), hangup=True),
        State("bye", "t.yaml:6", say=P("bye"), hangup=True),
    )
    async with FlowTester(flow) as t:
        await t.press("2")  # during the (non-interruptible) disclaimer
        assert not t.channel.played[0].interrupted
        await t.advance(6)  # disclaimer (100 chars = 6 s) ends; the buffered key skips the menu prompt
        t.expect_state("cards")
        assert [e.data["text"] for e in t.trace.of_kind("prompt_skip")] == [MENU_TEXT]
        assert key_records(t)[0].data["consumed"] == "main"
        assert MENU_TEXT not in t.prompts


async def test_no_match_discards_remaining_type_ahead_and_says_so() -> None:
    async with FlowTester(bank(settings=Settings(barge_in=False))) as t:
        await t.press("9123")  # all typed during the non-interruptible menu prompt
        await t.advance(2.4)
        records = key_records(t)
        # 1 2 3 never reached a state: they may have been the start of the PIN, so masked
        assert [r.data["digit"] for r in records] == ["9", "?", "?", "?"]
        assert records[0].data["consumed"] == "main"
        assert [r.data["discarded"] for r in records[1:]] == ["no_match in 'main'"] * 3
        t.expect_prompt("That is not a valid choice.")  # the caller is re-prompted, not sent to 'pin'
        t.expect_state("main")


async def test_a_caller_mashing_keys_during_a_disclaimer_is_handled_iteratively() -> None:
    """600 repeat-key presses typed ahead: each replays (skipped) the menu, none is lost, no recursion."""
    flow = make_flow(
        State("hello", "t.yaml:1", say=P("This call is recorded."), settings=Settings(barge_in=False), next="cards"),
        State("cards", "t.yaml:2", menu=Menu(P("Lost card press 1."), {"1": "bye"}, repeat_key="9")),
        State("bye", "t.yaml:3", say=P("bye"), hangup=True),
    )
    async with FlowTester(flow) as t:
        for _ in range(600):
            t.channel.press("9")
        await t.advance(2)  # the disclaimer ends; the menu drains 600 buffered keys
        records = key_records(t)
        assert len(records) == 600 and all(r.data.get("consumed") == "cards" for r in records)
        # entering skips the menu prompt, so do 599 repeats with more keys behind them; the last
        # repeat (nothing typed after it) really replays the menu
        assert len(t.trace.of_kind("prompt_skip")) == 600 and t.prompts[-1] == "Lost card press 1."
        t.expect_state("cards")
        assert t.clock.pending() == 1  # just the no-input timer
