"""A recorded call that ran `amd:` replays to the same outcome, cause and moment: the far end
is rebuilt from the trace's amd record (the trace keeps no audio)."""

from __future__ import annotations

from typing import Any

import pytest

from ivrkit.flow.loader import load_flow_text
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock, far_end_speech
from ivrkit.voice.audio import Pcm, concat, silence, tone

FLOW = """
start: out
states:
  out:
    dial: {to: "+15550100", amd: {wait_for_beep: 20s, maximum_number_of_words: 4}}
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
GREETING = "Hi, you've reached Sam. I can't take your call right now, please leave a message after the tone."


def blips() -> Pcm:
    """Voice too short to be a word, every 100 ms: undecided until the analysis time runs out."""
    return concat([p for _ in range(60) for p in (tone(200, 0.02, sample_rate=8000), silence(0.08, sample_rate=8000))])


CASES: dict[str, tuple[Any, bool]] = {
    "human": (lambda: far_end_speech("Hello?"), False),
    "machine, beep": (lambda: far_end_speech(GREETING, beep_after=0.4), False),
    "machine, no beep": (lambda: far_end_speech(GREETING, voice="en-gb"), False),
    "words": (lambda: concat([p for _ in range(5) for p in (silence(0.1, sample_rate=8000), tone(200, 0.15, sample_rate=8000))]), False),
    "beep first": (lambda: far_end_speech("Leave a message.", beep_after=0.2), False),
    "silence": (lambda: silence(6, sample_rate=8000), False),
    "too long": (blips, False),
    "hangup": (lambda: silence(1, sample_rate=8000), True),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_replay_reaches_the_recorded_amd_result(case: str) -> None:
    audio, hangs_up = CASES[case]
    flow = load_flow_text(FLOW)
    channel = FakeChannel(VirtualClock(), far_end=audio(), far_end_hangs_up=hangs_up)
    async with FlowTester(flow, channel=channel) as t:
        await t.advance(40)
    recorded = t.trace.of_kind("amd")[0]
    result = await FlowTester.replay(t.trace, flow)
    # not diverged: the same states entered at the same virtual times, the same prompts
    assert not result.diverged, result.report()
    again = next(r for r in result.replayed if r.kind == "amd")
    keys = ("outcome", "cause", "at_ms")
    assert [again.data[k] for k in keys] == [recorded.data[k] for k in keys]
    assert again.t == pytest.approx(recorded.t)


async def test_a_flow_without_the_dial_now_says_so() -> None:
    flow = load_flow_text(FLOW)
    async with FlowTester(flow, far_end=far_end_speech("Hello?")) as t:
        await t.advance(5)
    changed = load_flow_text(FLOW.replace(', amd: {wait_for_beep: 20s, maximum_number_of_words: 4}', ''))
    result = await FlowTester.replay(t.trace, changed)
    assert "which has no dial with amd: now" in result.report()
