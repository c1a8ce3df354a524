"""ConsoleChannel on a virtual clock: prompts play for their simulated time, keys become DTMF, the
caller and the flow hang up."""

from __future__ import annotations

import io

import pytest

from ivrkit.channel import ChannelEvent, Hangup, Key, PromptEnded
from ivrkit.console.channel import ConsoleChannel
from ivrkit.errors import ChannelError
from ivrkit.testing import VirtualClock
from tests.console.helpers import Phone, make_prompt


def test_prompt_plays_for_its_simulated_time_then_ends() -> None:
    phone = Phone(seconds_per_char=0.1)
    prompt = make_prompt("Press 1.")  # 8 characters -> 0.8 s
    phone.channel.play(prompt)
    assert "state main" in phone.text and "prompt: Press 1." in phone.text
    phone.clock.advance(0.79)
    assert phone.events == []
    phone.clock.advance(0.01)
    (ended,) = phone.events
    assert isinstance(ended, PromptEnded) and (ended.id, ended.interrupted) == (1, False)
    assert ended.at == pytest.approx(0.8)
    assert phone.clock.pending() == 0


def test_stop_cuts_the_prompt_with_one_interrupted_end() -> None:
    phone = Phone()
    phone.channel.play(make_prompt("A long menu prompt"))
    phone.clock.advance(0.2)
    phone.channel.stop()
    phone.channel.stop()  # no-op: nothing plays
    phone.clock.advance(10)
    (ended,) = phone.events
    assert isinstance(ended, PromptEnded) and (ended.id, ended.interrupted) == (1, True)
    assert ended.at == pytest.approx(0.2)
    assert "prompt stopped (barge-in)" in phone.text
    assert phone.clock.pending() == 0


def test_keys_typed_before_the_call_connects_are_kept() -> None:
    clock = VirtualClock()
    channel = ConsoleChannel(clock=clock, out=io.StringIO())
    assert channel.press("1") is False and channel.press("#") is False
    events: list[ChannelEvent] = []
    channel.connect(events.append)
    assert [e.digit for e in events if isinstance(e, Key)] == ["1", "#"]


def test_keys_become_dtmf_and_other_input_does_not() -> None:
    phone = Phone()
    for ch in "1a#x*\n ?D":
        phone.channel.press(ch)
    assert [e.digit for e in phone.events if isinstance(e, Key)] == ["1", "A", "#", "*", "D"]
    assert "'x' is not a phone key (not sent)" in phone.text
    assert "'?' is not a phone key (not sent)" in phone.text


@pytest.mark.parametrize("char", ["q", "\x04", "\x03"])
def test_q_and_ctrl_keys_hang_up_and_nothing_follows(char: str) -> None:
    phone = Phone()
    phone.channel.play(make_prompt("Welcome"))
    phone.channel.press(char)
    phone.channel.press("1")
    reason = {"q": "caller", "\x04": "Ctrl-D", "\x03": "Ctrl-C"}[char]
    phone.clock.advance(30)
    phone.channel.caller_hangup()
    assert phone.events == [Hangup(at=0.0, reason=reason)]
    assert phone.channel.ended is not None and phone.channel.ended.startswith("caller hung up")
    assert phone.clock.pending() == 0


async def test_flow_hangup_and_transfer_end_the_call() -> None:
    phone = Phone()
    phone.channel.play(make_prompt("Goodbye"))
    await phone.channel.hangup()
    phone.clock.advance(5)
    assert phone.events == [] and phone.channel.ended == "the flow hung up"
    other = Phone()
    await other.channel.transfer("sip:agents@pbx.example.com")
    assert other.channel.ended == "transferred to sip:agents@pbx.example.com"
    assert "transfer to sip:agents@pbx.example.com" in other.text


async def test_send_dtmf_is_shown_and_checked() -> None:
    phone = Phone()
    await phone.channel.send_dtmf("1")
    await phone.channel.send_dtmf("#")
    with pytest.raises(ChannelError, match="only one of 0-9"):
        await phone.channel.send_dtmf("x")
    assert phone.channel.keys_sent == ["1", "#"]
    assert "sent DTMF #" in phone.text


async def test_a_sensitive_key_sent_is_shown_masked() -> None:
    phone = Phone()
    phone.channel.sensitive = True  # the call sends a value filled from a sensitive variable
    await phone.channel.send_dtmf("7")
    assert "sent DTMF *" in phone.text and "DTMF 7" not in phone.text
