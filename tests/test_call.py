"""The call runtime, driven through FlowTester on a VirtualClock (no sleeps, no mocks of the engine)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ivrkit.call import MAX_HOPS, Call
from ivrkit.call.keys import Keys
from ivrkit.channel import CallerInfo
from ivrkit.flow.conditions import Condition
from ivrkit.flow.model import Branch, Collect, Dial, Flow, HookRef, Menu, SendDtmf, Settings, State, Transfer
from ivrkit.hooks import HookContext, Hooks
from ivrkit.machine import BUILTIN_ERROR, FlowMachine
from ivrkit.prompts import Prompt
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock
from ivrkit.trace import TraceEvent

P = Prompt.text
MENU_TEXT = "For balances press 1. For cards press 2."  # 40 chars: 2.4 s at 0.06 s/char


def hook(name: str, **kw: Any) -> HookRef:
    return HookRef("test_call", name, where=f"t.yaml:{name}", **kw)


def make_flow(*states: State, **kw: Any) -> Flow:
    return Flow(name="t", start=states[0].name, states={s.name: s for s in states}, file="t.yaml", **kw)


def main_menu(**kw: Any) -> State:
    settings = kw.pop("settings", Settings())
    args: dict[str, Any] = {
        "no_input": (P("Sorry, I didn't hear a choice."), P("Please press a key now.")),
        "no_match": (P("That is not a valid choice."),),
        "on_max_retries": "bye",
    }
    args.update(kw)
    return State("main", "t.yaml:2", settings=settings,
                 menu=Menu(P(MENU_TEXT), {"1": "pin", "2": "cards", "0": "agent"}, **args))


def bank(**menu_kw: Any) -> Flow:
    return make_flow(
        main_menu(**menu_kw),
        State("pin", "t.yaml:10", collect=Collect(P("Enter your PIN, then pound."), into="pin", min_digits=4,
                                                  max_digits=8, sensitive=True, back_key="*",
                                                  no_match=(P("That PIN is too short."),), on_max_retries="bye"),
              next="balance"),
        State("balance", "t.yaml:20", run=hook("lookup_balance"), say=P("Your balance is {balance} dollars."),
              next="main"),
        State("cards", "t.yaml:25", menu=Menu(P("Lost card press 1."), {"1": "bye"}, back_key="*", repeat_key="9")),
        State("agent", "t.yaml:30", transfer=Transfer("sip:agents@pbx.example.com", announce=P("Please hold."))),
        State("bye", "t.yaml:35", say=P("Goodbye."), hangup=True),
    )


# --- hooks used by the flows (resolved by module:function, like a real flow file) ----------------

SEEN: list[HookContext] = []
CANCELLED: list[str] = []


def lookup_balance(ctx: HookContext) -> dict[str, Any]:  # sync: runs on a thread
    SEEN.append(ctx)
    return {"balance": 42}


async def route(ctx: HookContext) -> str:
    return "vip" if ctx.variables.get("caller_number") == "+1555" else "main"


async def hangs(ctx: HookContext) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        CANCELLED.append(ctx.state)


def boom(ctx: HookContext) -> None:
    raise RuntimeError("database is down")


async def returns_int(ctx: HookContext) -> int:
    return 7


async def returns_ghost(ctx: HookContext) -> str:
    return "ghost"


def check_pin(ctx: HookContext, digits: str) -> bool:
    return digits == "4321"


def leaky_validate(ctx: HookContext, digits: str) -> bool:
    raise ValueError(f"bad pin {digits}")


async def start_hook(ctx: HookContext) -> dict[str, Any]:
    return {"open": True}


END_CALLS: list[str] = []


async def end_hook(ctx: HookContext) -> None:
    END_CALLS.append(ctx.state)


def key_records(t: FlowTester) -> list[TraceEvent]:
    return t.trace.keys()


# --- menus, barge-in, type-ahead -----------------------------------------------------------------


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


async def test_back_key_in_collect() -> None:
    async with FlowTester(bank()) as t:
        await t.press("1")
        await t.press("12")
        await t.press("*")
        t.expect_state("main")
        collect = t.trace.of_kind("collect")[-1]
        assert collect.data == {"into": "pin", "digits": "**", "reason": "cancelled"}
        assert t.variables["pin_reason"] == "cancelled" and "pin" not in t.variables


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


async def test_max_retries_without_on_max_retries_takes_the_error_path() -> None:
    flow = make_flow(State("m", "t.yaml:1", menu=Menu(P("Press 1."), {"1": "m"}), settings=Settings(retries=1)))
    async with FlowTester(flow) as t:
        await t.press("5")
        await t.advance(10)
        t.expect_ended("error")
        t.expect_prompt("Sorry, something went wrong")
        assert "no on_max_retries" in t.trace.of_kind("error")[0].data["message"]


# --- collect -------------------------------------------------------------------------------------


def collect_flow(**kw: Any) -> Flow:
    settings = kw.pop("settings", Settings())
    args: dict[str, Any] = {"into": "acct", "min_digits": 4, "max_digits": 6, "on_max_retries": "bye"}
    args.update(kw)
    return make_flow(
        State("acct", "t.yaml:1", collect=Collect(P("Enter your account number."), **args), settings=settings,
              next="done"),
        State("done", "t.yaml:5", say=P("Thanks {acct}."), hangup=True),
        State("bye", "t.yaml:6", say=P("Bye."), hangup=True),
    )


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


# --- hooks and the error path --------------------------------------------------------------------


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
        assert hook_rec.data == {"hook": "test_call:lookup_balance", "result": "variables", "set": {"balance": 42}}


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
        assert t.trace.of_kind("timeout")[0].data == {"what": "hook", "hook": "test_call:hangs", "limit": 2.0}
        assert "time limit of 2 s" in t.trace.of_kind("error")[0].data["message"]
        await t.advance(10)
        t.expect_ended("error")


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


# --- transfer, DTMF, dial ------------------------------------------------------------------------


async def test_transfer_announces_then_transfers() -> None:
    async with FlowTester(bank()) as t:
        await t.press("0")
        t.expect_prompt("Please hold.")
        assert t.channel.transfers == []
        await t.advance(1)
        assert t.channel.transfers == ["sip:agents@pbx.example.com"]
        t.expect_ended("transfer")


async def test_failed_transfer_takes_the_error_path() -> None:
    clock = VirtualClock()
    channel = FakeChannel(clock, fail_transfer=True)
    async with FlowTester(bank(), channel=channel) as t:
        await t.press("0")
        await t.advance(1)
        assert "ChannelError" in t.trace.of_kind("error")[0].data["message"]
        t.expect_state(BUILTIN_ERROR)
        await t.advance(5)
        t.expect_ended("error")


async def test_send_dtmf_paces_keys_on_the_clock() -> None:
    flow = make_flow(
        State("drive", "t.yaml:1", send_dtmf=SendDtmf("1w2a{acct}#", pace=0.25), next="done"),
        State("done", "t.yaml:2", say=P("done"), hangup=True),
    )
    async with FlowTester(flow, variables={"acct": "77"}) as t:
        await t.advance(0.1)
        assert t.channel.sent_digits == "1"
        await t.advance(5)
        assert [(s.digit, s.at) for s in t.channel.sent] == [
            ("1", 0.0), ("2", 0.75), ("A", 1.0), ("7", 1.25), ("7", 1.5), ("#", 1.75)]
        assert [e.data["digit"] for e in t.trace.of_kind("dtmf_sent")] == list("12A77#")
        t.expect_state("done")


async def test_send_dtmf_masks_sensitive_templates_and_rejects_bad_keys() -> None:
    flow = make_flow(
        State("pin", "t.yaml:1", collect=Collect(P("PIN"), into="pin", min_digits=4, max_digits=4, sensitive=True),
              next="drive"),
        State("drive", "t.yaml:2", send_dtmf=SendDtmf("{pin}#"), next="bad"),
        State("bad", "t.yaml:3", send_dtmf=SendDtmf("12x"), next="drive"),
    )
    async with FlowTester(flow) as t:
        await t.press("9876")
        await t.advance(5)
        assert t.channel.sent_digits == "9876#12"
        assert [e.data["digit"] for e in t.trace.of_kind("dtmf_sent")] == ["*"] * 5 + ["1", "2"]
        assert "cannot send 'x'" in t.trace.of_kind("error")[0].data["message"]
        assert "9876" not in t.trace.to_jsonl()


async def test_dial_then_next() -> None:
    flow = make_flow(
        State("out", "t.yaml:1", dial=Dial("tel:+15550100"), next="done"),
        State("done", "t.yaml:2", say=P("done"), hangup=True),
    )
    async with FlowTester(flow) as t:
        assert t.channel.dials == ["tel:+15550100"]
        t.expect_state("done")


# --- hang-up, cancellation, leaks ----------------------------------------------------------------


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
        if when == "hook":
            await t.press("1")
        elif when == "collect":
            await t.press("2")
            await t.until_input()
            await t.press("12")
        elif when == "confirm":
            await t.press("21234")
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


async def test_keys_during_the_builtin_error_prompt_are_discarded_not_lost() -> None:
    flow = make_flow(State("s", "t.yaml:1", run=hook("boom"), next="s"))
    async with FlowTester(flow) as t:
        await t.press("12")
        await t.advance(10)
        t.expect_ended("error")
        assert [(e.data["digit"], e.data.get("discarded")) for e in key_records(t)] == [
            ("1", "call ended"), ("2", "call ended")]


async def test_two_concurrent_calls_share_one_machine() -> None:
    machine = FlowMachine(bank())
    async with FlowTester(machine) as a, FlowTester(machine) as b:
        await a.press("2")
        await b.press("1")
        a.expect_state("cards")
        b.expect_state("pin")
        assert machine.model_count == 2
    assert machine.model_count == 0


# --- more edges ----------------------------------------------------------------------------------


def start_fails(ctx: HookContext) -> None:
    raise LookupError("CRM unreachable")


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


async def test_non_dtmf_keys_are_discarded_with_a_reason() -> None:
    async with FlowTester(bank()) as t:
        t.channel.emit(__import__("ivrkit.channel", fromlist=["Key"]).Key("Z", 0.0))
        await t.press("2")
        records = key_records(t)
        assert records[0].data["discarded"] == "not a DTMF key: 'Z'"
        assert records[1].data["consumed"] == "main"


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


RELEASE = __import__("threading").Event()
FINISHED = __import__("threading").Event()


def blocks(ctx: HookContext) -> dict[str, Any]:
    RELEASE.wait(10)
    FINISHED.set()
    return {"late": True}


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


# --- a terminator pressed out of habit after a complete entry -------------------------------------

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
