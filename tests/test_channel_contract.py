"""The Channel contract: the same FlowTester scenarios against every adapter.

As transitions reruns its core tests against each machine variant (`TestAsync(TestTransitions)`),
`ChannelContract` holds the scenarios and each adapter's subclass says how to build it and how
to read what it presented to the caller. Everything runs on a `VirtualClock`: no real second
passes. The LiveKit adapter is covered end to end against a real livekit-server elsewhere.

What every adapter must do (see `ivrkit.channel.Channel`): one `PromptEnded` per `play`
(interrupted when stopped), `stop` cuts at once, keys arrive normalised and in order, nothing
after `Hangup`, and no timer left behind — plus show sensitive values only masked.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivrkit.channel import CallerInfo, Channel
from ivrkit.console.channel import ConsoleChannel
from ivrkit.console.cli import console_hooks
from ivrkit.console.view import ConsoleView
from ivrkit.flow.loader import load_flow_text
from ivrkit.flow.model import Flow
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock

FLOW = """\
flow: contract
start: main
defaults: {timeout: 5s, inter_digit_timeout: 3s, retries: 2, terminator: "#"}
states:
  main:
    menu:
      prompt: "For the PIN press 1. For the notice press 2. For an agent press 0. For tones press 3. To end press 9."
      options: {"1": pin, "2": notice, "0": agent, "3": tones, "9": bye}
      no_input: ["I did not hear a choice.", "Please press a key now."]
      no_match: "That is not a choice."
      on_max_retries: bye
  pin:
    collect: {prompt: "Enter your PIN, then press pound.", into: pin, min_digits: 4, max_digits: 6, sensitive: true}
    next: thanks
  thanks:
    say: "Thanks, your PIN is {pin}."
    next: main
  notice:
    say: "This legal notice cannot be interrupted."
    barge_in: false
    next: main
  agent:
    transfer: {to: "sip:agent@pbx.example.com", announce: "Connecting you."}
  tones:
    send_dtmf: "12#"
    next: main
  bye:
    say: "Goodbye."
    hangup: true
"""


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow_text(FLOW, "contract.yaml")


class ChannelContract:
    """The scenarios. Subclasses implement the adapter-specific methods below."""

    # --- per adapter -----------------------------------------------------------------------------

    def make_channel(self, clock: VirtualClock, flow: Flow) -> Channel:
        raise NotImplementedError

    def hooks(self, channel: Channel) -> Any:
        return None

    def shown_prompts(self, channel: Any) -> list[str]:
        """The prompt texts the adapter presented, in order."""
        raise NotImplementedError

    def cut_count(self, channel: Any) -> int:
        """How many prompts the adapter cut short (barge-in)."""
        raise NotImplementedError

    def sent_dtmf(self, channel: Any) -> str:
        raise NotImplementedError

    def transfers(self, channel: Any) -> list[str]:
        raise NotImplementedError

    def everything_shown(self, channel: Any) -> str:
        """All the adapter put anywhere a person could read it (for leak checks)."""
        raise NotImplementedError

    # --- helpers ---------------------------------------------------------------------------------

    def start_call(self, flow: Flow) -> FlowTester:
        clock = VirtualClock()
        channel = self.make_channel(clock, flow)
        return FlowTester(flow, channel=channel, hooks=self.hooks(channel))

    @staticmethod
    def prompt_pairs(t: FlowTester) -> tuple[list[int], list[int]]:
        started = [e.data["id"] for e in t.trace.of_kind("prompt")]
        ended = [e.data["id"] for e in t.trace.of_kind("prompt_end")]
        return started, ended

    # --- the scenarios ---------------------------------------------------------------------------

    async def test_prompt_plays_for_its_time_then_ends(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            t.expect_prompt("For the PIN press 1")
            assert self.shown_prompts(t.channel)[0].startswith("For the PIN press 1")
            await t.advance(1.0)
            assert not t.trace.of_kind("prompt_end")  # still playing after 1 s
            await t.until_input()
            (end,) = t.trace.of_kind("prompt_end")
            assert end.data["interrupted"] is False
            # The simulated speaking time: 0.06 s per character of the text.
            assert end.t == pytest.approx(0.06 * len(t.prompts[0]), abs=1e-6)
            t.expect_state("main")

    async def test_barge_in_cuts_the_prompt_and_the_key_is_used(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.advance(0.5)
            await t.press("1")
            t.expect_state("pin")
            first_end = t.trace.of_kind("prompt_end")[0]
            assert first_end.data["interrupted"] is True and first_end.t == pytest.approx(0.5)
            assert self.cut_count(t.channel) == 1
            t.expect_prompt("Enter your PIN")

    async def test_type_ahead_reaches_a_sensitive_collect_and_stays_masked(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.press("14321#")  # typed during the menu prompt, before the PIN prompt exists
            t.expect_variable("pin", "4321")
            t.expect_prompt("Thanks, your PIN is ****.")
            assert "4321" not in self.everything_shown(t.channel)
            assert "4321" not in t.trace.to_jsonl()
            digits = [e.data["digit"] for e in t.trace.keys()]
            assert digits == ["1", "*", "*", "*", "*", "*"]  # every key recorded once, masked

    async def test_no_barge_in_prompt_plays_out_and_keys_wait(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.press("2")
            t.expect_prompt("legal notice")
            await t.advance(0.3)
            await t.press("9")  # during the notice: kept, not cutting it
            assert self.cut_count(t.channel) == 1  # only the menu was cut (by the 2)
            t.expect_state("notice")
            await t.advance(10)
            notice_end = [e for e in t.trace.of_kind("prompt_end") if e.state == "notice"]
            assert [e.data["interrupted"] for e in notice_end] == [False]
            t.expect_prompt("Goodbye.")
            t.expect_ended("hangup")

    async def test_no_input_escalates_then_leaves_after_retries(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.until_input()
            await t.advance(5)
            t.expect_prompt("I did not hear a choice.")
            await t.until_input()
            await t.advance(5)
            t.expect_prompt("Goodbye.")
            await t.advance(5)
            t.expect_ended("hangup")
            shown = self.shown_prompts(t.channel)
            assert shown[1] == "I did not hear a choice." and shown[-1] == "Goodbye."

    async def test_inter_digit_timeout_ends_a_short_entry(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.press("1")
            await t.until_input()
            await t.press("12")
            await t.advance(2.9)
            assert not t.trace.of_kind("collect")
            await t.advance(0.2)
            (collect,) = t.trace.of_kind("collect")
            assert collect.data["reason"] == "inter_digit_timeout" and collect.data["digits"] == "**"

    async def test_caller_hangs_up_mid_prompt_and_nothing_follows(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.advance(0.5)
            await t.hangup()
            t.expect_ended("caller_hangup")
            await t.advance(60)
            kinds = [e.kind for e in t.trace]
            assert kinds[-1] == "call_end"
            assert t.clock.pending() == 0

    async def test_transfer_announces_then_hands_over(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.press("0")
            t.expect_prompt("Connecting you.")
            await t.advance(5)
            t.expect_ended("transfer")
            assert self.transfers(t.channel) == ["sip:agent@pbx.example.com"]

    async def test_send_dtmf_sends_each_key(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.press("3")
            await t.advance(2)
            assert self.sent_dtmf(t.channel) == "12#"
            t.expect_state("main")

    async def test_every_play_gets_exactly_one_end(self, flow: Flow) -> None:
        async with self.start_call(flow) as t:
            await t.press("1")
            await t.advance(1)
            await t.press("99")  # too short: no-match, re-prompt
            await t.advance(4)
            await t.press("5555#")
            await t.advance(3)
            await t.press("7")  # not an option
            await t.advance(20)
        started, ended = self.prompt_pairs(t)
        assert started == ended and len(started) >= 5
        assert len(self.shown_prompts(t.channel)) == len(started)


# --- the adapters -------------------------------------------------------------------------------


class TestFakeChannel(ChannelContract):
    def make_channel(self, clock: VirtualClock, flow: Flow) -> Channel:
        return FakeChannel(clock)

    def shown_prompts(self, channel: FakeChannel) -> list[str]:
        return [p.text for p in channel.played]

    def cut_count(self, channel: FakeChannel) -> int:
        return sum(p.interrupted for p in channel.played)

    def sent_dtmf(self, channel: FakeChannel) -> str:
        return channel.sent_digits

    def transfers(self, channel: FakeChannel) -> list[str]:
        return channel.transfers

    def everything_shown(self, channel: FakeChannel) -> str:
        return "\n".join(p.text for p in channel.played)


@dataclass(frozen=True, slots=True)
class _Shown:
    text: str


_PROMPT_LINE = re.compile(r"^\[\s*[\d.]+\] prompt: (.*?)(?:  \[no barge-in\])?$")


class _ScriptedConsole(ConsoleChannel):
    """The ConsoleChannel as FlowTester drives a phone: keys in through `press` (the same path
    the keyboard uses), and what it *printed* read back as the played prompts."""

    @property
    def vclock(self) -> VirtualClock:
        assert isinstance(self.clock, VirtualClock)
        return self.clock

    @property
    def text(self) -> str:
        out = self.view.out
        assert isinstance(out, io.StringIO)
        return out.getvalue()

    @property
    def played(self) -> list[_Shown]:
        return [_Shown(m[1]) for line in self.text.splitlines() if (m := _PROMPT_LINE.match(line))]


class TestConsoleChannel(ChannelContract):
    def make_channel(self, clock: VirtualClock, flow: Flow) -> Channel:
        out = io.StringIO()
        # The same (empty) caller as FakeChannel's, so the two traces can be compared.
        return _ScriptedConsole(clock=clock, out=out, view=ConsoleView(out, clock, flow=flow), caller=CallerInfo())

    def hooks(self, channel: Any) -> Any:
        return console_hooks(channel.view)

    def shown_prompts(self, channel: _ScriptedConsole) -> list[str]:
        return [p.text for p in channel.played]

    def cut_count(self, channel: _ScriptedConsole) -> int:
        return channel.text.count("prompt stopped (barge-in)")

    def sent_dtmf(self, channel: _ScriptedConsole) -> str:
        return "".join(channel.keys_sent)

    def transfers(self, channel: _ScriptedConsole) -> list[str]:
        return re.findall(r"transfer to (\S+) \(", channel.text)

    def everything_shown(self, channel: _ScriptedConsole) -> str:
        return channel.text

    async def test_console_shows_states_and_masked_entry(self, flow: Flow) -> None:
        """Console-only: the state and the collected digits are shown as the call goes."""
        async with self.start_call(flow) as t:
            await t.press("1")
            await t.until_input()
            await t.press("4321#")
            text = t.channel.text
            assert "state main (menu)" in text and "state pin (collect, sensitive)" in text
            assert "collected pin = **** (terminator)" in text
            assert re.search(r"key (•|x)   entered: (••••|xxxx)", text)
            assert "4321" not in text


# --- differential: the same caller on both adapters gives the same call ---------------------------

Action = tuple[str, Any]

_actions = st.lists(
    st.one_of(
        st.tuples(st.just("press"), st.text(alphabet="0123456789*#", min_size=1, max_size=5)),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.9, 3.0, 5.0, 8.0])),
        st.tuples(st.just("hangup"), st.none()),
    ),
    max_size=12,
)


def _comparable(t: FlowTester) -> list[tuple[Any, ...]]:
    return [(e.kind, e.state, round(e.t, 6), sorted((k, str(v)) for k, v in e.data.items())) for e in t.trace]


async def _run(contract: ChannelContract, flow: Flow, actions: list[Action]) -> list[tuple[Any, ...]]:
    async with contract.start_call(flow) as t:
        for kind, arg in actions:
            if t.result is not None:
                break
            if kind == "press":
                for key in arg:
                    if t.result is None:
                        await t.press(key)
            elif kind == "advance":
                await t.advance(arg)
            else:
                await t.hangup()
        await t.advance(60)
    return _comparable(t)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=_actions)
async def test_console_and_fake_channel_give_the_same_trace(flow: Flow, actions: list[Action]) -> None:
    fake = await _run(TestFakeChannel(), flow, actions)
    console = await _run(TestConsoleChannel(), flow, actions)
    assert console == fake
