"""Digit collection in a call: terminator, max digits, timeouts, patterns, the clear and back keys,
validate hooks, sensitive masking, and a terminator pressed out of habit after a complete entry.
Driven through FlowTester on a VirtualClock (no sleeps, no mocks of the engine)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivrkit.call.keys import STRAY
from ivrkit.testing import FlowTester
from tests.call import helpers
from tests.call.helpers import P, bank, collect_flow, hook, key_records


async def test_back_key_in_collect() -> None:
    async with FlowTester(bank()) as t:
        await t.press("1")
        await t.press("12")
        await t.press("*")
        t.expect_state("main")
        collect = t.trace.of_kind("collect")[-1]
        assert collect.data == {"into": "pin", "digits": "**", "reason": "cancelled"}
        assert t.variables["pin_reason"] == "cancelled" and "pin" not in t.variables


async def test_collect_terminator_max_digits_and_reason_variable() -> None:
    async with FlowTester(collect_flow()) as t:
        await t.press("1234#")
        t.expect_variable("acct", "1234")
        t.expect_variable("acct_reason", "terminator")
        t.expect_state("done")
    async with FlowTester(collect_flow()) as t:
        await t.press("123456")  # max reached: done at once, no waiting
        t.expect_variable("acct_reason", "max_digits")
        t.expect_state("done")
        assert t.clock.now() == 0.0


async def test_collect_timeouts_first_digit_vs_inter_digit() -> None:
    async with FlowTester(collect_flow()) as t:
        await t.advance(1.56)  # prompt (26 chars) ends
        await t.advance(4.9)
        t.expect_state("acct")
        assert not t.trace.of_kind("timeout")
        await t.advance(0.1)
        assert t.trace.of_kind("timeout")[0].data == {"what": "first_digit_timeout"}
        assert t.trace.of_kind("no_input")
        t.expect_variable("acct_reason", "first_digit_timeout")
    async with FlowTester(collect_flow()) as t:
        await t.until_input()
        await t.press("12345", gap=2.0)  # 2 s gaps are fine (inter-digit is 3 s)
        await t.advance(3)
        t.expect_variable("acct", "12345")
        t.expect_variable("acct_reason", "inter_digit_timeout")
        t.expect_state("done")


async def test_collect_too_short_pattern_and_clear_key() -> None:
    async with FlowTester(collect_flow(no_match=(P("Not valid."),))) as t:
        await t.press("12#")
        t.expect_prompt("Not valid.")
        assert t.trace.of_kind("no_match")[0].data["count"] == 1
        t.expect_state("acct")
    async with FlowTester(collect_flow(pattern=r"9\d+")) as t:
        await t.press("1234#")
        assert t.trace.of_kind("no_match") and "acct" not in t.variables
        await t.press("9234#")
        t.expect_variable("acct", "9234")
    async with FlowTester(collect_flow(clear_key="*")) as t:
        await t.press("99*1234#")
        t.expect_variable("acct", "1234")


async def test_collect_validate_hook() -> None:
    flow = collect_flow(validate=hook("check_pin"), sensitive=True, no_match=(P("Wrong PIN."),))
    async with FlowTester(flow) as t:
        await t.press("1111#")
        t.expect_prompt("Wrong PIN.")
        await t.press("4321#")
        t.expect_state("done")
        t.expect_prompt("Thanks ****.")
        results = [e.data["result"] for e in t.trace.of_kind("hook")]
        assert results == [False, True]
        assert "4321" not in t.trace.to_jsonl() and "1111" not in t.trace.to_jsonl()


async def test_sensitive_digits_are_masked_in_trace_prompts_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ivrkit")
    flow = collect_flow(validate=hook("leaky_validate"), sensitive=True, into="pin")
    async with FlowTester(flow) as t:
        await t.press("5678#")
        t.expect_ended  # noqa: B018  (the error path plays the built-in prompt)
        await t.advance(10)
        t.expect_ended("error")
        blob = t.trace.to_jsonl() + caplog.text + " ".join(t.prompts)
        assert "5678" not in blob
        assert "bad pin ****" in t.trace.of_kind("error")[0].data["message"]
        assert [e.data["digit"] for e in key_records(t)] == ["*"] * 5


_HABIT_FLOW = """
flow: habit
start: pin
states:
  pin:
    collect: {prompt: "PIN please.", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: main
  main:
    menu:
      prompt: "Press 1."
      options: {"1": done}
      no_match: "Not an option."
  done: {say: "Done.", hangup: true}
"""


async def test_a_terminator_after_a_max_digits_entry_is_not_a_no_match_in_the_next_menu() -> None:
    from ivrkit.flow.loader import load_flow_text

    async with FlowTester(load_flow_text(_HABIT_FLOW)) as t:
        await t.until_input()
        await t.press("1234#", gap=0.2)
        t.expect_state("main")
        assert t.trace.of_kind("no_match") == []
        last = t.trace.keys()[-1].data
        assert last["digit"] == "#" and "max_digits" in last["discarded"]
        await t.press("1")
        t.expect_prompt("Done.")


async def test_a_typed_ahead_terminator_after_a_max_digits_entry_is_dropped_too() -> None:
    from ivrkit.flow.loader import load_flow_text

    async with FlowTester(load_flow_text(_HABIT_FLOW)) as t:
        await t.press("1234#1")  # all during the first prompt
        t.expect_prompt("Done.")
        assert t.trace.of_kind("no_match") == []


async def test_a_terminator_long_after_the_entry_is_an_ordinary_key() -> None:
    from ivrkit.flow.loader import load_flow_text

    async with FlowTester(load_flow_text(_HABIT_FLOW)) as t:
        await t.until_input()
        await t.press("1234")
        await t.advance(10)
        await t.press("#")
        assert len(t.trace.of_kind("no_match")) == 1


async def test_a_terminator_right_after_the_entry_is_kept_when_the_next_menu_takes_it() -> None:
    """The habit rule must not eat a real choice: in a menu where # is an option, it counts."""
    from ivrkit.flow.loader import load_flow_text

    flow = _HABIT_FLOW.replace('options: {"1": done}', 'options: {"1": done, "#": done}').replace(
        "  main:\n", "  main:\n    terminator: null\n")
    async with FlowTester(load_flow_text(flow)) as t:
        await t.until_input()
        await t.press("1234#", gap=0.2)
        t.expect_prompt("Done.")
        assert t.trace.keys()[-1].data == {"digit": "#", "arrived": t.trace.keys()[-1].data["arrived"], "consumed": "main"}


_HELD_FLOW = """
flow: held
start: pin
states:
  pin:
    collect: {prompt: "Legal text first. Then enter your PIN.", into: pin, min_digits: 4, max_digits: 4,
              sensitive: true}
    barge_in: false
    next: main
  main:
    menu:
      prompt: "Press 1."
      options: {"1": done}
      no_input: "I didn't hear a choice."
  done: {say: "Done.", hangup: true}
"""


async def test_a_held_terminator_after_a_held_pin_does_not_skip_the_next_menu_prompt() -> None:
    """"1234#" typed through a `barge_in: false` prompt: the PIN is collected from the buffer,
    and its habitual # is discarded as such — the menu still plays its prompt, no retry lost."""
    from ivrkit.flow.loader import load_flow_text

    async with FlowTester(load_flow_text(_HELD_FLOW)) as t:
        await t.press("1234#", gap=0.1)  # all while the PIN prompt plays and holds the keys
        await t.until_input()
        assert t.variables["pin"] == "1234" and t.variables["pin_reason"] == "max_digits"
        t.expect_state("main")
        t.expect_prompt("Press 1.")
        assert t.trace.of_kind("prompt_skip") == [] and t.trace.of_kind("no_input", "no_match") == []
        last = t.trace.keys()[-1].data
        assert last["digit"] == "#" and last["discarded"] == STRAY
        await t.press("1")
        t.expect_prompt("Done.")


async def test_a_held_terminator_after_a_held_pin_is_the_choice_when_the_menu_takes_it() -> None:
    from ivrkit.flow.loader import load_flow_text

    flow = _HELD_FLOW.replace('options: {"1": done}', 'options: {"1": done, "#": done}').replace(
        "  main:\n", "  main:\n    terminator: null\n")
    async with FlowTester(load_flow_text(flow)) as t:
        await t.press("1234#", gap=0.1)
        await t.until_input()
        t.expect_prompt("Done.")
        assert t.trace.keys()[-1].data["consumed"] == "main"


async def test_a_pin_and_terminator_held_while_a_hook_runs_leave_the_next_menu_its_prompt() -> None:
    """"1234#" typed while the hook before the PIN runs: the PIN prompt is skipped (type-ahead),
    the PIN is collected, and the leftover # does not skip the menu's prompt."""
    from ivrkit.flow.loader import load_flow_text

    flow = _HELD_FLOW.replace("start: pin", "start: hello").replace("    barge_in: false\n", "").replace(
        "states:\n", "states:\n  hello: {run: \"tests.call.helpers:gated\", next: pin}\n")
    helpers.GATE = asyncio.Event()
    async with FlowTester(load_flow_text(flow)) as t:
        await t.press("1234#", gap=0.1)
        t.expect_state("hello")  # the hook is still running: every key is held
        helpers.GATE.set()
        await t.advance(0)
        await t.until_input()
        t.expect_state("main")
        assert t.variables["pin"] == "1234"
        assert [e.data["text"] for e in t.trace.of_kind("prompt_skip")] == ["Legal text first. Then enter your PIN."]
        t.expect_prompt("Press 1.")
        assert t.trace.keys()[-1].data["discarded"] == STRAY
        await t.advance(10)
        assert t.trace.of_kind("no_input")[0].data["count"] == 1  # a first, not a lost retry


async def test_a_collect_without_pattern_takes_only_digits() -> None:
    """`*` and A-D are collected as typed, but without a `pattern` they are no digits: no-match."""
    async with FlowTester(collect_flow()) as t:
        await t.until_input()
        await t.press("12*4#")
        assert t.trace.of_kind("collect")[0].data["digits"] == "12*4"
        assert len(t.trace.of_kind("no_match")) == 1 and "acct" not in t.variables
        await t.press("1234#")
        t.expect_prompt("Thanks 1234.")


async def test_a_pattern_lets_a_collect_take_star_and_letters() -> None:
    async with FlowTester(collect_flow(pattern="[0-9*A-D]+")) as t:
        await t.until_input()
        await t.press("12*A#")
        t.expect_prompt("Thanks 12*A.")


async def test_a_bare_terminator_is_an_empty_entry_when_min_digits_is_0() -> None:
    """The way a caller skips an optional entry ("press # if you have no reference")."""
    async with FlowTester(collect_flow(min_digits=0)) as t:
        await t.until_input()
        await t.press("#")
        assert t.variables["acct"] == "" and t.variables["acct_reason"] == "terminator"
        assert t.trace.of_kind("no_match") == []
        t.expect_prompt("Thanks .")


async def test_a_bare_terminator_is_a_no_match_when_digits_are_required() -> None:
    async with FlowTester(collect_flow()) as t:
        await t.until_input()
        await t.press("#")
        assert len(t.trace.of_kind("no_match")) == 1 and "acct" not in t.variables
async def test_key_records_say_what_each_key_did_to_the_entry_and_whether_it_is_masked() -> None:
    """What an observer (the console phone) renders from: the call's decision, not a copy of it."""
    async with FlowTester(bank()) as t:
        await t.until_input()
        await t.press("1")
        await t.until_input()
        await t.press("43#")  # too short: a no-match
        await t.until_input()
        await t.press("4321#")
        t.expect_variable("pin", "4321")
    keys = [(r.data["digit"], r.data.get("entry"), r.data.get("masked")) for r in key_records(t)]
    assert keys == [("1", None, None), *[("*", "digit", True)] * 2, ("*", "terminator", True),
                    *[("*", "digit", True)] * 4, ("*", "terminator", True)]
    waits = [(w.state, dict(w.data)) for w in t.trace.of_kind("wait")]
    assert waits[0] == ("main", {"for": "menu", "timeout": 5.0, "no_input": 0, "no_match": 0, "retries": 3})
    assert waits[1:] == [
        ("pin", {"for": "collect", "timeout": 5.0, "inter_digit_timeout": 3.0, "terminator": "#",
                 "no_input": 0, "no_match": n, "retries": 3}) for n in (0, 1)
    ]


async def test_masked_discards_say_so() -> None:
    async with FlowTester(bank()) as t:
        await t.press("1")
        await t.until_input()
        await t.press("4321")
        await t.hangup()
    assert all(r.data.get("masked") is True for r in key_records(t) if r.data["digit"] in ("*", "?"))
