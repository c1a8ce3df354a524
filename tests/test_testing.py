"""The testing adapter itself: FakeChannel, FlowTester idling and its failure messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivrkit.channel import CallerInfo, Key, PromptEnded
from ivrkit.flow.model import Flow, Menu, State
from ivrkit.prompts import FilledPrompt, Prompt, PromptPart
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock

P = Prompt.text
ROOT = Path(__file__).resolve().parents[1]


def simple() -> Flow:
    states = {
        "m": State("m", "t.yaml:1", menu=Menu(P("Press 1 for news."), {"1": "news"}, on_max_retries="bye")),
        "news": State("news", "t.yaml:2", say=P("No news today."), hangup=True),
        "bye": State("bye", "t.yaml:3", say=P("Bye."), hangup=True),
    }
    return Flow(name="simple", start="m", states=states, file="t.yaml")


def test_fake_channel_plays_for_a_virtual_duration_and_reports_the_end() -> None:
    clock = VirtualClock()
    ch = FakeChannel(clock, seconds_per_char=0.1, audio_seconds=2.0)
    events: list[object] = []
    ch.connect(events.append)
    prompt = FilledPrompt(1, (PromptPart("text", "hello"), PromptPart("silence", "0.5"), PromptPart("audio", "x.wav")),
                            "hello [silence: 0.5] [audio: x.wav]", "s")
    ch.play(prompt)
    assert ch.played[0].duration == pytest.approx(0.5 + 0.5 + 2.0)
    clock.advance(2.9)
    assert events == []
    clock.advance(0.1)
    assert events == [PromptEnded(1, False, 3.0)]
    ch.play(FilledPrompt(2, (PromptPart("text", "again"),), "again", "s"))
    clock.advance(0.2)
    ch.stop()
    ch.stop()  # no-op when nothing plays
    assert events[-1] == PromptEnded(2, True, clock.now()) and clock.now() == pytest.approx(3.2)
    assert clock.pending() == 0
    ch.press("a")
    assert events[-1] == Key("A", clock.now())


async def test_fake_channel_actions_and_failures() -> None:
    ch = FakeChannel(fail_dial=True)
    ch.connect(lambda e: None)
    await ch.send_dtmf("1")
    await ch.transfer("sip:x")
    with pytest.raises(Exception, match="dialling tel:1 failed"):
        await ch.dial("tel:1")
    await ch.hangup()
    await ch.aclose()
    assert ch.sent_digits == "1" and ch.transfers == ["sip:x"] and ch.hung_up and ch.closed


async def test_expect_helpers_pass_and_fail_with_the_recent_trace() -> None:
    async with FlowTester(simple(), caller=CallerInfo(number="+1")) as t:
        assert t.expect_prompt("Press 1") == "Press 1 for news."
        with pytest.raises(AssertionError) as err:
            t.expect_prompt("Press 1")  # already matched: prompts are consumed in order
        assert "since the last match" in str(err.value) and "last trace records" in str(err.value)
        assert "prompt id=1" in str(err.value)
        t.expect_no_prompt()
        with pytest.raises(AssertionError, match="expected state 'news', the call is in 'm'"):
            t.expect_state("news")
        with pytest.raises(AssertionError, match="expected the call to have ended"):
            t.expect_ended()
        t.expect_running()
        await t.press("1")
        t.expect_prompt("No news")
        await t.advance(1)
        with pytest.raises(AssertionError, match="expected the call to end by 'transfer', it ended by 'hangup'"):
            t.expect_ended("transfer")
        t.expect_ended("hangup")
        with pytest.raises(AssertionError, match="cannot press '2': the call has ended"):
            await t.press("2")
        with pytest.raises(AssertionError, match="expected variable 'x'"):
            t.expect_variable("x", 1)


async def test_advance_fires_timers_in_order_and_lets_the_call_react_between_them() -> None:
    async with FlowTester(simple()) as t:
        # 1.02 s prompt, 5 s no-input, 3 retries with a menu re-prompt each time -> 'bye'
        await t.advance(100)
        t.expect_ended("hangup")
        assert [e.data["count"] for e in t.trace.of_kind("no_input")] == [1, 2, 3]
        times = [e.t for e in t.trace.of_kind("timeout")]
        assert times == pytest.approx([6.02, 12.04, 18.06])
        assert t.clock.now() == 100


async def test_exit_hangs_up_a_running_call_and_checks_for_leaks() -> None:
    async with FlowTester(simple()) as t:
        pass
    assert t.result is not None and t.result.ended_by == "caller_hangup"
    assert t.clock.pending() == 0


async def test_tester_loads_a_flow_file_by_path() -> None:
    path = ROOT / "flows" / "bank.yaml"
    async with FlowTester(str(path), caller=CallerInfo(number="+15550100")) as t:
        t.expect_prompt("Welcome to Acme Bank")
        await t.press("1")
        await t.press("12345678")
        await t.press("4321")
        await t.until_input()
        t.expect_prompt("Your balance is 1234.56 dollars")
        assert "4321" not in t.trace.to_jsonl()


async def test_idle_waits_for_a_sync_hook_thread_without_real_sleeps_in_the_test() -> None:
    """A sync hook runs on a thread; press() returns only once its result was used."""
    import ivrkit.flow.model as m

    states = {
        "s": State("s", "t.yaml:1", run=m.HookRef(__name__, "slow_sync"), say=P("v={v}"), hangup=True),
    }
    async with FlowTester(Flow(name="x", start="s", states=states, file="t.yaml")) as t:
        t.expect_prompt("v=done")


def slow_sync(ctx: object) -> dict[str, str]:
    total = sum(range(200_000))  # real work on the hook thread
    return {"v": "done" if total else "?"}


async def test_no_task_left_after_many_calls() -> None:
    before = len(asyncio.all_tasks())
    for _ in range(20):
        async with FlowTester(simple()) as t:
            await t.press("7")
    assert len(asyncio.all_tasks()) == before
