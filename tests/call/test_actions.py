"""Channel actions a state takes: transfer (with its announcement), send_dtmf, dial. Driven through
FlowTester on a VirtualClock (no sleeps, no mocks of the engine)."""

from __future__ import annotations

from ivrkit.flow.model import Collect, Dial, Menu, SendDtmf, State
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock
from tests.call.helpers import P, bank, make_flow


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


class _SeesSensitive(FakeChannel):
    """Notes, for each key sent, whether the call told the channel its keys are sensitive."""

    def __init__(self) -> None:
        super().__init__()
        self.flags: list[bool] = []

    async def send_dtmf(self, digit: str) -> None:
        self.flags.append(self.sensitive)
        await super().send_dtmf(digit)


async def test_the_channel_is_told_when_keys_are_sensitive_in_and_out() -> None:
    """The adapter masks keys it logs itself (a malformed key it drops, a key it sends) while
    `Channel.sensitive` is set: during a sensitive collect and while sending a sensitive value."""
    flow = make_flow(
        State("pin", "t.yaml:1", collect=Collect(P("PIN"), into="pin", min_digits=4, max_digits=4, sensitive=True),
              next="drive"),
        State("drive", "t.yaml:2", send_dtmf=SendDtmf("{pin}"), next="plain"),
        State("plain", "t.yaml:3", send_dtmf=SendDtmf("12"), next="end"),
        State("end", "t.yaml:4", menu=Menu(P("Press 1."), {"1": "pin"})),
    )
    channel = _SeesSensitive()
    async with FlowTester(flow, channel=channel) as t:
        assert channel.sensitive  # in the PIN collect
        await t.press("9876")
        await t.advance(5)
        t.expect_state("end")
        assert channel.flags == [True] * 4 + [False] * 2 and not channel.sensitive
        await t.press("1")
        assert channel.sensitive  # back in the PIN collect
