"""Test a flow without a phone, a server or a real second going by.

Shipped in the package (as Starlette ships `testclient.py`) so teams unit-test their own flows:

    async def test_balance() -> None:
        async with FlowTester("flows/acme.yaml", caller=CallerInfo(number="+15550100")) as t:
            t.expect_prompt("For balances press 1")
            await t.press("1")
            await t.press("1234#")
            t.expect_state("balance")
            await t.advance(5)
            t.expect_ended("hangup")

- `VirtualClock` only moves when told; `advance(s)` fires due timers in time order, ties in the
  order they were scheduled — deterministic, so a 5 s timeout costs microseconds.
- `FakeChannel` is the scripted phone: it records what was played (each prompt lasts
  `seconds_per_char` per character of its text on the virtual clock), sent DTMF, transfers,
  dials and hang-ups, and emits `PromptEnded` when playout would have finished. A dial is
  answered at once; `far_end` is the audio the answering party plays (e.g. `far_end_speech(
  "Hello?")`), heard in 20 ms frames in virtual time by a dial with `amd:`.
- `t.say("billing")` is the caller speaking: what a recogniser would hand the call (the
  recognised text, on the virtual clock), heard only in states that take speech.
- `FlowTester` drives one `Call` over both, and after every `press`/`advance` waits until the
  call is idle (no runnable task, no queued event, no hook thread running) — no real sleeps.

One module each: `clock` (VirtualClock), `phone` (FakeChannel), `tester` (FlowTester); import
them from here.
"""

from ivrkit.far_end import ScriptedIvr, far_end_speech
from ivrkit.testing.clock import VirtualClock
from ivrkit.testing.phone import FakeChannel, PlayedPrompt, SentDtmf
from ivrkit.testing.tester import FINISHED_CALLS, FlowTester

__all__ = ["FINISHED_CALLS", "FakeChannel", "FlowTester", "PlayedPrompt", "ScriptedIvr", "SentDtmf", "VirtualClock",
           "far_end_speech"]
