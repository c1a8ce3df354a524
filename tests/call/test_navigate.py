"""A `navigate:` state on the virtual clock against a scripted legacy IVR (`ScriptedIvr`): keys
go out only after each far prompt has ended, in order, once; sensitive keys are masked; a far
end that stays silent, hangs up or never sends the tone takes the failure path."""

from __future__ import annotations

import pytest

from ivrkit.errors import FlowValidationError
from ivrkit.flow.loader import load_flow_text
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.testing import FakeChannel, FlowTester, ScriptedIvr, VirtualClock, far_end_speech
from ivrkit.voice.audio import concat, silence, tone

FLOW = """
start: account
states:
  account:
    collect: {prompt: "Enter your account number.", into: account, min_digits: 4, max_digits: 4, sensitive: true}
    next: out
  out: {dial: "+15550100", next: drive}
  drive:
    navigate:
      steps:
        - {listen: 800ms, timeout: 15s}
        - {send: "2"}
        - {listen: 800ms}
        - {send: "{account}#", pace: 200ms}
        - {listen: 800ms}
      on_fail: failed
    next: done
  done: {say: "Done.", hangup: true}
  failed: {say: "Failed.", hangup: true}
"""


def acme() -> ScriptedIvr:
    return ScriptedIvr({
        "main": (far_end_speech("Welcome to Acme billing. For payments press 1. For your balance press 2."),
                 {"1": "pay", "2": "balance"}),
        "pay": (far_end_speech("Payments are closed."), {}),
        "balance": (far_end_speech("Please enter your account number, followed by pound."), {"4321#": "told"}),
        "told": (far_end_speech("Your balance is twelve dollars."), {}),
    }, "main", invalid=far_end_speech("That is not a valid choice."))


async def run(ivr: ScriptedIvr | None = None, flow: str = FLOW, **channel: object) -> FlowTester:
    fake = FakeChannel(VirtualClock(), far_end=ivr, **channel)  # type: ignore[arg-type]
    async with FlowTester(load_flow_text(flow), channel=fake) as t:
        await t.press("4321")
        await t.advance(60)
    return t


async def test_keys_go_out_after_each_far_prompt_ended_in_order_once() -> None:
    ivr = acme()
    t = await run(ivr)
    t.expect_ended("hangup")
    assert "Done." in t.prompts[-1], t.prompts
    assert [k[0] for k in ivr.keys] == list("24321#")
    assert ivr.menu == "told"
    assert not any(playing for *_, playing in ivr.keys), ivr.keys  # never over a prompt
    # each key after its menu's prompt ended + the 800 ms of silence the flow listens for
    main_end = ivr._plays[0][0] + ivr.menus["main"][0].duration
    assert ivr.keys[0][1] >= main_end + 0.8 - 0.02
    steps = t.trace.of_kind("navigate_step")
    assert [(s.data["step"], s.data["ok"]) for s in steps] == [(1, True), (3, True), (5, True)]
    sent = [r.data["digit"] for r in t.trace.of_kind("dtmf_sent")]
    assert sent == ["2", "*", "*", "*", "*", "*"]  # the account number and its # masked: sensitive
    assert "4321" not in t.trace.to_jsonl()
    assert not t.channel.hearing_far_end


async def test_a_silent_far_end_takes_on_fail() -> None:
    t = await run(None)
    t.expect_variable("navigate_failed", "step 1: no prompt ended within 15 s")
    assert "Failed." in t.prompts[-1]
    assert t.channel.sent == []
    assert not t.channel.hearing_far_end


async def test_a_far_end_that_hangs_up_takes_on_fail() -> None:
    fake = FakeChannel(VirtualClock(), far_end=far_end_speech("Goodbye."), far_end_hangs_up=True)
    async with FlowTester(load_flow_text(FLOW), channel=fake) as t:
        await t.press("4321")
        await t.advance(30)
    t.expect_variable("navigate_failed", "step 1: the far end hung up")


async def test_energy_only_cannot_tell_an_invalid_entry_reply_from_the_next_prompt() -> None:
    ivr = acme()
    async with FlowTester(load_flow_text(FLOW.replace("{send: \"2\"}", "{send: \"9\"}")),
                          channel=FakeChannel(VirtualClock(), far_end=ivr)) as t:
        await t.press("4321")
        await t.advance(60)
    # "That is not a valid choice. Welcome to Acme..." is heard as one prompt; the next keys wait
    # for it to end, but go to the main menu, not the balance menu: without words (no recogniser)
    # the flow cannot notice — its later keys then meet the IVR's re-prompts.
    assert [k[0] for k in ivr.keys] == list("94321#")
    assert [playing for *_, playing in ivr.keys[:2]] == [False, False]
    assert ivr.menu != "told" and "Done." in t.prompts[-1]


async def test_expect_a_tone_and_pause() -> None:
    flow = """
start: out
states:
  out: {dial: "+15550100", next: drive}
  drive:
    navigate:
      steps:
        - {expect: tone, timeout: 5s}
        - {pause: 1s}
        - {send: "1"}
      on_fail: failed
    next: done
  done: {say: "Done.", hangup: true}
  failed: {say: "Failed.", hangup: true}
"""
    beep = concat([silence(1.0, sample_rate=8000), tone(1000, 0.5, sample_rate=8000, amplitude=0.3)])
    ivr = ScriptedIvr({"main": (beep, {"1": "main"})}, "main")
    async with FlowTester(load_flow_text(flow), channel=FakeChannel(VirtualClock(), far_end=ivr)) as t:
        await t.advance(10)
    assert [k[0] for k in ivr.keys] == ["1"]
    assert ivr.keys[0][1] == pytest.approx(1.12 + 1.0)  # tone heard 120 ms in, then the 1 s pause
    speech = ScriptedIvr({"main": (far_end_speech("Hello, this is not a tone."), {})}, "main")
    async with FlowTester(load_flow_text(flow), channel=FakeChannel(VirtualClock(), far_end=speech)) as t:
        await t.advance(10)
    t.expect_variable("navigate_failed", "step 1: no tone began within 5 s")


async def test_without_on_fail_a_failure_takes_the_error_path() -> None:
    t = await run(None, flow=FLOW.replace("      on_fail: failed\n", ""))
    assert "navigate step 1: no prompt ended" in t.trace.of_kind("error")[0].data["message"]
    assert t.state == BUILTIN_ERROR


@pytest.mark.parametrize(("step", "message"), [
    ('{listen: 1s, send: "1"}', "a navigate step does exactly one of listen, send, pause, expect, not listen and send"),
    ("{expect: words}", "expect must be speech or tone, not 'words'"),
    ('{send: "1", timeout: 2s}', "timeout does nothing in a send step"),
    ('{send: "1x"}', "send_dtmf '1x' has 'x', which is not a DTMF key"),
    ("{wait: 2s}", "unknown key 'wait' in navigate step"),
])
def test_step_problems_are_reported_with_their_place(step: str, message: str) -> None:
    text = FLOW.replace("- {send: \"2\"}", f"- {step}")
    with pytest.raises(FlowValidationError) as info:
        load_flow_text(text, "f.yaml")
    assert any(message in i.message and i.line == 12 for i in info.value.issues), [i.format() for i in info.value.issues]


# --- words: expect: {say: [...], unexpected: [...]} against the scripted far end's text -------

WORDS = """
start: out
states:
  out: {dial: "+15550100", next: drive}
  drive:
    navigate:
      steps:
        - {expect: {say: [for billing], unexpected: [invalid entry, please hold]}, timeout: 15s}
        - {send: "KEY"}
        - {expect: {say: [account number], unexpected: [invalid entry]}, timeout: 10s}
      on_fail: failed
    next: done
  done: {say: "Done.", hangup: true}
  failed:
    goto:
      - {if: "navigate_heard == 'invalid entry'", then: refused}
      - {else: gave_up}
  refused: {say: "The menu refused the key.", hangup: true}
  gave_up: {say: "Failed.", hangup: true}
"""


def worded() -> ScriptedIvr:
    return ScriptedIvr({
        "main": ("Welcome to Acme. For payments press 1. For billing press 2.", {"1": "pay", "2": "billing"}),
        "pay": ("Payments are closed.", {}),
        "billing": ("Please enter your account number, followed by pound.", {}),
    }, "main", invalid="Invalid entry.")


async def run_words(ivr: ScriptedIvr | None, key: str = "2", far: object = None) -> FlowTester:
    channel = FakeChannel(VirtualClock(), far_end=ivr if ivr is not None else far)  # type: ignore[arg-type]
    async with FlowTester(load_flow_text(WORDS.replace("KEY", key)), channel=channel) as t:
        await t.advance(40)
    return t


async def test_words_heard_pass_each_step_and_the_key_goes_out_after_them() -> None:
    ivr = worded()
    t = await run_words(ivr)
    assert "Done." in t.prompts[-1], t.prompts
    t.expect_variable("navigate_heard", "account number")
    main_end = ivr._plays[0].end
    assert [k[0] for k in ivr.keys] == ["2"] and ivr.keys[0][1] >= main_end and not ivr.keys[0][3]
    steps = t.trace.of_kind("navigate_step")
    assert [(s.data["step"], s.data["ok"], s.data.get("said")) for s in steps] == [
        (1, True, "for billing"), (3, True, "account number")]


async def test_an_unexpected_phrase_fails_at_once_and_the_flow_branches_on_it() -> None:
    ivr = worded()
    t = await run_words(ivr, key="9")
    t.expect_variable("navigate_heard", "invalid entry")
    t.expect_variable("navigate_failed", "step 3: heard 'invalid entry'")
    assert "The menu refused the key." in t.prompts[-1]
    invalid_end = ivr._plays[1].end  # "Invalid entry." then the main menu again
    failed = t.trace.of_kind("navigate_step")[-1]
    assert failed.data["ok"] is False and failed.t == pytest.approx(invalid_end, abs=0.021)


async def test_other_words_are_waited_past_until_the_timeout() -> None:
    ivr = ScriptedIvr({"main": ("Thank you for calling. All our lines are busy.", {})}, "main")
    t = await run_words(ivr)
    t.expect_variable("navigate_failed",
                      "step 1: no 'for billing' heard within 15 s (heard 'Thank you for calling. All our lines are busy.')")
    assert "Failed." in t.prompts[-1]
    assert [r.data["text"] for r in t.trace.of_kind("navigate_heard")] == [
        "Thank you for calling. All our lines are busy."]
    assert ivr.keys == []


async def test_words_need_a_recogniser_for_the_far_end() -> None:
    t = await run_words(None, far=far_end_speech("For billing press 2."))
    assert "cannot recognise what the dialled party says" in t.trace.of_kind("error")[0].data["message"]
    assert t.state == BUILTIN_ERROR


@pytest.mark.parametrize(("step", "message", "col"), [
    ("{expect: {say: [press 2]}}", "say entry 'press 2' is not plain words", 27),
    ("{expect: {say: [billing], unexpected: [billing]}}", "'billing' is in both say and unexpected", 50),
    ("{expect: {sya: [billing]}}", "unknown key 'sya' in expect", 21),
    ("{expect: {unexpected: [invalid entry]}}", "expect needs 'say'", 20),
])
def test_words_step_problems_are_reported_with_their_place(step: str, message: str, col: int) -> None:
    text = FLOW.replace("- {send: \"2\"}", f"- {step}")
    with pytest.raises(FlowValidationError) as info:
        load_flow_text(text, "f.yaml")
    found = [(i.line, i.col) for i in info.value.issues if message in i.message]
    assert found == [(12, col)], [i.format() for i in info.value.issues]


async def test_what_the_far_end_reads_back_is_masked_in_the_trace() -> None:
    flow = FLOW.replace("        - {listen: 800ms}\n      on_fail", "        - {expect: {say: [your balance is]}}\n      on_fail")
    ivr = ScriptedIvr({"main": ("For your balance press 2.", {"2": "balance"}),
                       "balance": ("Enter your account number.", {"4321#": "wrong"}),
                       "wrong": ("Account 4321 is closed.", {})}, "main")
    t = await run(ivr, flow)
    assert [k[0] for k in ivr.keys] == list("24321#") and "Failed." in t.prompts[-1]
    (other,) = t.trace.of_kind("navigate_heard")
    assert other.data["text"] == "Account **** is closed."
    assert t.trace.of_kind("navigate_step")[-1].data["why"] == (
        "no 'your balance is' heard within 10 s (heard 'Account **** is closed.')")
    assert "4321" not in t.trace.to_jsonl()
