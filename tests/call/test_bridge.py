"""Hold audio and `bridge:` on a dial and a navigate, on the virtual clock: the caller hears the
hold prompt, looping, while the far end rings or the agent navigates; the legs are bridged only
when the flow says so and only after the dial was answered (and the navigation succeeded)."""

from __future__ import annotations

import pytest

from ivrkit.errors import FlowValidationError
from ivrkit.flow.loader import load_flow_text
from ivrkit.testing import FakeChannel, FlowTester, ScriptedIvr, VirtualClock, far_end_speech

FLOW = """
start: out
states:
  out:
    dial: {to: "+15550100", hold: "Please hold."}
    next: drive
    on_error: failed
  drive:
    navigate:
      steps:
        - {listen: 800ms, timeout: 15s}
        - {send: "2"}
        - {listen: 800ms}
      on_fail: failed
      hold: "One moment please."
      bridge: true
    next: talk
  talk: {say: "You are connected.", next: wait}
  wait: {say: {silence: 10s}, hangup: true}
  failed: {say: "Failed.", hangup: true}
"""


def acme() -> ScriptedIvr:
    return ScriptedIvr({
        "main": (far_end_speech("Welcome to Acme billing. For payments press 1. For your balance press 2."),
                 {"1": "pay", "2": "balance"}),
        "pay": (far_end_speech("Payments are closed."), {}),
        "balance": (far_end_speech("Your balance is twelve dollars."), {}),
    }, "main")


async def run(flow: str = FLOW, ivr: ScriptedIvr | None = None, **channel: object) -> FlowTester:
    fake = FakeChannel(VirtualClock(), far_end=ivr if ivr is not None else acme(), **channel)  # type: ignore[arg-type]
    async with FlowTester(load_flow_text(flow), channel=fake) as t:
        await t.advance(60)
    return t


async def test_hold_loops_while_navigating_then_the_legs_are_bridged() -> None:
    t = await run()
    fake = t.channel
    assert isinstance(fake, FakeChannel)
    holds = [p for p in fake.played if p.state == "drive"]
    assert len(holds) >= 3 and all(p.text == "One moment please." and p.hold for p in holds), fake.played
    assert [p.text for p in fake.played if p.hold and p.state == "out"] == ["Please hold."]
    assert not any(p.hold for p in fake.played if p.state not in ("out", "drive"))
    # back to back: each replay starts as the last one ended, the last is cut when navigation ends
    assert all(b.started == a.ended for a, b in zip(holds, holds[1:])), holds
    assert holds[-1].interrupted and not any(p.interrupted for p in holds[:-1])
    sent = fake.sent[-1].at
    assert len(fake.bridged) == 1 and fake.bridged[0] >= sent, (fake.bridged, fake.sent)
    assert holds[-1].ended == fake.bridged[0]  # hold stops as the bridge starts
    assert t.prompts[len(t.prompts) - 2] == "You are connected."
    kinds = [e.kind for e in t.trace.events]
    assert kinds.count("bridge") == 1 and kinds.index("bridge") > max(i for i, k in enumerate(kinds) if k == "dtmf_sent")
    t.expect_ended("hangup")


async def test_a_failed_navigation_is_never_bridged() -> None:
    t = await run(FLOW.replace("{listen: 800ms, timeout: 15s}", "{expect: tone, timeout: 3s}"))  # none comes
    fake = t.channel
    assert isinstance(fake, FakeChannel)
    assert fake.bridged == [] and "bridge" not in [e.kind for e in t.trace.events]
    assert t.prompts[-1] == "Failed."
    assert [p for p in fake.played if p.state == "drive"][-1].interrupted  # hold cut as on_fail was taken


async def test_a_dial_with_bridge_bridges_once_answered_and_plays_hold_while_ringing() -> None:
    flow = """
start: out
states:
  out:
    dial: {to: "+15550100", hold: "Ringing, please hold.", bridge: true}
    next: talk
    on_error: failed
  talk: {say: {silence: 5s}, hangup: true}
  failed: {say: "Failed.", hangup: true}
"""
    t = await run(flow)
    fake = t.channel
    assert isinstance(fake, FakeChannel)
    assert fake.dials == ["+15550100"] and fake.bridged == [0.0]
    assert [p.text for p in fake.played if p.state == "out"] == ["Ringing, please hold."]
    t.expect_ended("hangup")

    t = await run(flow, fail_dial=True)
    assert isinstance(t.channel, FakeChannel) and t.channel.bridged == [] and t.prompts[-1] == "Failed."


@pytest.mark.parametrize("where, value, message", [
    ("dial", "bridge: maybe", "bridge must be true or false"),
    ("navigate", "bridge: 1", "bridge must be true or false"),
    ("dial", "hold: {tune: x.wav}", "tune"),
])
def test_bad_hold_or_bridge_is_reported_with_its_place(where: str, value: str, message: str) -> None:
    text = FLOW.replace('hold: "Please hold."', value) if where == "dial" else FLOW.replace('bridge: true', value)
    with pytest.raises(FlowValidationError) as info:
        load_flow_text(text, "f.yaml")
    line = 5 if where == "dial" else 16
    assert any(message in i.message and i.line == line and i.file == "f.yaml" for i in info.value.issues), \
        [i.format() for i in info.value.issues]


async def test_hang_up_ends_the_leg_after_the_steps_and_the_call_goes_on_with_the_caller() -> None:
    flow = FLOW.replace("      bridge: true\n", "      hang_up: true\n")
    for far, ended in ((None, "talk"), ("silent", "failed")):
        text = flow if far is None else flow.replace("{listen: 800ms, timeout: 15s}", "{expect: tone, timeout: 3s}")
        t = await run(text)
        fake = t.channel
        assert isinstance(fake, FakeChannel)
        assert fake.bridged == [] and len(fake.legs_hung_up) == 1, (far, fake.legs_hung_up)
        leaving = next(e.t for e in t.trace.events if e.kind == "transition" and e.data.get("from") == "drive")
        assert fake.legs_hung_up[0] <= leaving  # hung up before the call moved on (done or failed)
        assert [p.state for p in fake.played][-1] in (ended, "wait"), fake.played


def test_bridge_and_hang_up_together_is_a_load_error() -> None:
    with pytest.raises(FlowValidationError) as info:
        load_flow_text(FLOW.replace("      bridge: true\n", "      bridge: true\n      hang_up: true\n"), "f.yaml")
    assert [(i.line, i.code) for i in info.value.issues] == [(17, "leg-conflict")], [i.format() for i in info.value.issues]
