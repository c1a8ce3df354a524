"""A dial with `amd:` on the virtual clock: the far end's scripted audio (rendered speech, a
beep, silence) goes through the real detectors, and the flow branches on the outcome."""

from __future__ import annotations

from typing import Any

import pytest

from ivrkit.channel import Channel
from ivrkit.flow.loader import load_flow_text
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock, far_end_speech
from ivrkit.voice.audio import Pcm, silence

FLOW = """
start: out
states:
  out:
    dial: {to: "+15550100", amd: {wait_for_beep: 20s}}
    next: route
  route:
    goto:
      - {if: "amd == 'human'", then: human}
      - {if: "amd == 'machine' and amd_beep", then: message}
      - {else: other}
  human:   {say: "Hello, this is Acme.", hangup: true}
  message: {say: "This is Acme with a message.", hangup: true}
  other:   {say: "Nobody.", hangup: true}
"""
GREETING = ("Hi, you've reached Sam. I can't take your call right now. "
            "Please leave your name and number after the tone.")


def record(t: FlowTester) -> dict[str, Any]:
    return dict(t.trace.of_kind("amd")[0].data)


async def test_hello_is_a_human_and_the_flow_speaks_when_the_greeting_has_ended() -> None:
    async with FlowTester(load_flow_text(FLOW), far_end=far_end_speech("Hello?")) as t:
        await t.advance(3)
        t.expect_variable("amd", "human")
        t.expect_variable("amd_cause", "after_greeting_silence")
        t.expect_variable("amd_beep", False)
        t.expect_prompt("Hello, this is Acme.")
        r = record(t)
        assert r["words"] == 1 and 1000 < r["at_ms"] < 2000, r
        assert t.channel.played[0].started == pytest.approx(r["at_ms"] / 1000)  # no time lost between answer and speech
        assert not t.channel.hearing_far_end  # the far end is no longer listened to


async def test_a_voicemail_greeting_is_a_machine_and_the_message_starts_after_the_beep() -> None:
    audio = far_end_speech(GREETING, voice="en-gb", beep_after=0.5)
    beep_end = audio.duration
    async with FlowTester(load_flow_text(FLOW), far_end=audio) as t:
        await t.advance(20)
        t.expect_variable("amd", "machine")
        assert t.variables["amd_cause"] in ("long_greeting", "max_words")
        t.expect_variable("amd_beep", True)
        t.expect_prompt("This is Acme with a message.")
        beep = record(t)["beep"]
        assert abs(beep["hz"] - 1000) < 10 and beep["end_ms"] / 1000 <= beep_end + 0.02
        started = t.channel.played[0].started
        assert beep_end <= started <= beep_end + 0.1, (beep_end, started)
        assert not t.channel.hearing_far_end


async def test_no_beep_within_wait_for_beep() -> None:
    async with FlowTester(load_flow_text(FLOW), far_end=far_end_speech(GREETING)) as t:
        await t.advance(40)
        t.expect_variable("amd", "machine")
        t.expect_variable("amd_beep", False)
        t.expect_prompt("Nobody.")
        amd_at = record(t)["at_ms"] / 1000
        assert t.channel.played[0].started == pytest.approx(amd_at + 20)  # waited the whole wait_for_beep


async def test_a_short_greeting_whose_beep_ends_before_the_rules_decide_is_a_machine() -> None:
    async with FlowTester(load_flow_text(FLOW), far_end=far_end_speech("Leave a message.", beep_after=0.2)) as t:
        await t.advance(10)
        t.expect_variable("amd", "machine")
        t.expect_variable("amd_cause", "beep")
        t.expect_variable("amd_beep", True)


async def test_silence_and_a_far_end_that_hangs_up() -> None:
    async with FlowTester(load_flow_text(FLOW), far_end=silence(10, sample_rate=8000)) as t:
        await t.advance(5)
        t.expect_variable("amd", "silence")
        t.expect_variable("amd_cause", "initial_silence")
        assert t.channel.played[0].started == pytest.approx(2.5)
    channel = FakeChannel(VirtualClock(), far_end=silence(0.3, sample_rate=16000), far_end_hangs_up=True)
    async with FlowTester(load_flow_text(FLOW), channel=channel) as t:
        await t.advance(5)
        t.expect_variable("amd", "unsure")
        t.expect_variable("amd_cause", "hangup")


async def test_a_far_end_that_sends_no_audio_is_unsure_after_the_analysis_time_and_grace() -> None:
    class Mute(FakeChannel):
        async def dialled_audio(self):  # type: ignore[no-untyped-def, override]
            await self.vclock.sleep(3600)
            yield Pcm(b"", 8000)

    async with FlowTester(load_flow_text(FLOW), channel=Mute(VirtualClock())) as t:
        await t.advance(6.9)
        t.expect_state("out")
        await t.advance(0.2)
        t.expect_variable("amd", "unsure")
        t.expect_variable("amd_cause", "no_audio")


async def test_an_adapter_that_cannot_hear_the_far_end_takes_the_error_path() -> None:
    class Deaf(FakeChannel):
        def dialled_audio(self):  # type: ignore[no-untyped-def, override]
            return Channel.dialled_audio(self)

    async with FlowTester(load_flow_text(FLOW), channel=Deaf(VirtualClock())) as t:
        await t.advance(1)
        assert "cannot hear the party it dialled" in t.trace.of_kind("error")[0].data["message"]
        t.expect_state(BUILTIN_ERROR)


async def test_the_caller_hanging_up_during_the_analysis_stops_the_listening() -> None:
    async with FlowTester(load_flow_text(FLOW), far_end=far_end_speech(GREETING)) as t:
        await t.advance(1)
        assert t.channel.hearing_far_end
        await t.hangup()
        t.expect_ended("caller_hangup")
        assert not t.channel.hearing_far_end
        assert t.trace.of_kind("amd") == []


async def test_amd_true_with_into() -> None:
    flow = load_flow_text(FLOW.replace("amd: {wait_for_beep: 20s}", "amd: {into: who}").replace("amd ==", "who ==")
                          .replace(" and amd_beep", ""))
    async with FlowTester(flow, far_end=far_end_speech("Hello?")) as t:
        await t.advance(3)
        t.expect_variable("who", "human")
        assert "amd" not in t.variables and "who_beep" not in t.variables
