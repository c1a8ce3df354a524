"""A flow's outbound `dial:` state against the real stack: a test caller (caller.py, WebRTC)
joins a room, the worker's flow dials out, and LiveKit SIP calls a SIPp far end over an
outbound trunk:

    caller.py --room--> ivrkit worker --CreateSIPParticipant--> LiveKit SIP --INVITE--> SIPp

One SIP stack and one worker serve the module. The worker's `--sip-trunk` is an outbound trunk
whose address is the far end's (the namespace address, port FAR_PORT); each test starts its own
far end there, answering, busy or ringing. Flows (tests/e2e/dial_flows), chosen by room name:

    dial-legacy-*  -> dial-legacy  (dial +15550901, send_dtmf "12#", say done, hang up)
    dial-wait-*    -> dial-wait    (dial +15550902, timeout 3s; say connected, or on_error say
                                    failed; then 30 s of silence: the test ends the call)

What is asserted comes from the far end (the INVITE, its answer, the RFC 4733 keys its recorder
got, the BYE or CANCEL), the caller's ears (which prompt tone), the room (is the dialled leg in
it) and the worker's call trace. On failure the message holds all of these (`Env.why`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack.callers import CallerError, CallerProcess, Event
from stack.phones import sip_worker
from stack.sip import create_outbound_trunk
from stack.sip_stack import SipStack
from stack.sipp import SippFarEnd, SippResult
from stack.testenv import tone_flows
from stack.worker import Worker, events

pytestmark = pytest.mark.sip

FLOWS = Path(__file__).resolve().parent / "dial_flows"
AGENT = "ivrkit-dial"
FAR_PORT = 5300
TRUNK_NUMBER = "+15550900"  # the outbound trunk's number: the caller id the far end sees
LEGACY, WAIT = "+15550901", "+15550902"  # what the two flows dial
RATE = 48000

#: prompt -> (frequency Hz, seconds); the flows' audio files are tones/<prompt>.wav
PROMPTS: dict[str, tuple[float, float]] = {
    "hello": (440, 0.6),
    "done": (660, 0.8),
    "failed": (880, 0.8),
    "connected": (1100, 0.8),
}


# --- fixtures ------------------------------------------------------------------------------------

@dataclass
class Env:
    sip: SipStack
    worker: Worker
    workdir: Path

    def call(self, flow: str) -> tuple[str, CallerProcess]:
        """A test caller joins a new room routed to `flow`; its token dispatches the worker."""
        room = f"{flow}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
        return room, self.sip.stack.caller(room, agent_name=AGENT, timeout=30.0)

    def participants(self, room: str) -> list[str]:
        """Identities in `room` now (the worker's dialled legs are `ivrkit-dial-*`); none once
        the room is gone."""
        async def fn(lk: Any) -> list[str]:
            from livekit import api

            try:
                resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            except api.TwirpError as exc:
                if exc.code == api.TwirpErrorCode.NOT_FOUND:
                    return []
                raise
            return [p.identity for p in resp.participants]

        return self.sip.api(fn)

    def heard(self, caller: CallerProcess, names: tuple[str, ...], far: SippFarEnd, room: str,
              timeout: float = 60.0) -> str:
        """Wait until the caller has heard one of the prompts `names` to its end; returns which.
        If none comes, the failure says what the far end, LiveKit SIP and the worker saw."""
        freqs = {PROMPTS[n][0]: n for n in names}

        def match(ev: Event) -> bool:
            return ev.get("freq") is not None and any(abs(ev["freq"] - f) <= 15 for f in freqs)

        try:
            ev = caller.wait_for("tone_end", timeout, where=match)
        except CallerError as exc:
            raise AssertionError(f"none of the prompts {names} heard: {exc}" + self.why(far.wait(5), caller, room)) from None
        return next(n for f, n in freqs.items() if abs(ev["freq"] - f) <= 15)

    def why(self, far: SippResult, caller: CallerProcess, room: str) -> str:
        """What to print on a failure: the far end's view, LiveKit SIP's log of the room's
        dial (INFO and up), the worker's log tail and what the caller heard."""
        return (f"\nfar end: {far.describe()}\n--- LiveKit SIP in room {room} ({self.sip.sip.process.log_path})\n"
                + "\n".join(_sip_log(self.sip.sip.process.log_text(), room)[-15:])
                + f"\n--- worker log tail ({self.worker.process.log_path})\n" + self.worker.tail(20, skip_loggers=("transitions.extensions.asyncio",))
                + f"\n--- caller\n{caller.describe()}")


def _sip_log(text: str, room: str) -> list[str]:
    """LiveKit SIP's INFO+ lines about `room` as `time LEVEL message {error, reason...}`
    (zap console lines: time, level, logger, caller, message, JSON fields)."""
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or parts[1] == "DEBUG" or f'"room": "{room}"' not in parts[-1]:
            continue
        try:
            fields = json.loads(parts[-1])
        except json.JSONDecodeError:
            fields = {}
        extra = {k: v for k, v in fields.items() if k in ("error", "reason", "status", "result", "sipStatus")}
        out.append(f"{parts[0][11:23]} {parts[1]} {parts[-2]} {extra or ''}")
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    def trunks(sip: SipStack) -> list[str]:
        trunk = sip.api(lambda lk: create_outbound_trunk(lk, f"{sip.ns.address}:{FAR_PORT}", [TRUNK_NUMBER]))
        print(f"\nsip dial: outbound trunk {trunk} -> {sip.ns.address}:{FAR_PORT}")
        return ["--sip-trunk", trunk, "--route", "room:dial-legacy-*=dial-legacy", "--route", "room:dial-wait-*=dial-wait"]

    flows = tone_flows(FLOWS.glob("*.yaml"), tmp_path_factory.mktemp("dial") / "flows", PROMPTS, RATE)
    with sip_worker("sip-dial", flows, agent=AGENT, expect_flows="dial-legacy,dial-wait", trunks=trunks,
                    trace_timeout=60.0) as up:
        yield Env(*up)


@pytest.fixture
def e(env: Env) -> Iterator[Env]:
    started = time.monotonic()
    yield env
    env.sip.stop_calls()  # the far end
    env.sip.stack.stop_processes(since=started)  # the caller (not the module's worker)


# --- helpers -------------------------------------------------------------------------------------

def index(trace: list[dict[str, Any]], kind: str, **fields: Any) -> int:
    """Position of the first `kind` record whose fields equal `fields` (-1: none)."""
    return next((i for i, r in enumerate(trace) if r["event"] == kind
                 and all(r.get(k) == v for k, v in fields.items())), -1)


# --- the scenarios -------------------------------------------------------------------------------

def test_dial_is_answered_and_the_flow_keys_digits_into_it(e: Env) -> None:
    far = e.sip.far_end(e.workdir / "legacy", sip_port=FAR_PORT, answer="200", hold=40.0)
    room, caller = e.call("dial-legacy")
    # hello (0.6 s), the dial, "12#" (~1.7 s), then "done": the flow got through the dial.
    heard = e.heard(caller, ("done", "failed"), far, room)
    r = far.wait(timeout=30 if heard == "done" else 5)  # the flow's hang-up deletes the room: BYE
    why = e.why(r, caller, room)
    assert heard == "done", f"the caller heard {heard!r}: the dial failed" + why
    assert r.called_user == LEGACY and r.calling_user == TRUNK_NUMBER, why
    assert r.answered, why
    assert r.exit_code == 0 and r.bye_from == "far", why
    digits = r.recording.digits()
    assert [d.key for d in digits] == ["1", "2", "#"], why
    assert all(d.ended for d in digits), f"{digits}" + why

    trace = e.worker.trace(room)
    dial = index(trace, "dial", to=LEGACY)
    moved = index(trace, "transition", **{"from": "out", "to": "legacy", "why": "dial"})
    first_key = index(trace, "dtmf_sent")
    assert events(trace, "error") == [], trace
    assert 0 <= dial < moved < first_key, f"dial {dial}, dial ok {moved}, first dtmf_sent {first_key}: {trace}"
    assert [x["digit"] for x in events(trace, "dtmf_sent")] == ["1", "2", "#"], trace
    assert events(trace, "call_end")[0]["ended_by"] == "hangup", trace[-3:]


@pytest.mark.parametrize("answer", ["486", "ring"])
def test_dial_not_answered_takes_the_error_path(e: Env, answer: str) -> None:
    # "486": the far end is busy; "ring": it rings past the dial state's `timeout: 3s`.
    far = e.sip.far_end(e.workdir / f"unanswered-{answer}", sip_port=FAR_PORT, answer=answer, hold=40.0)
    room, caller = e.call("dial-wait")
    heard = e.heard(caller, ("failed", "connected"), far, room)
    assert heard == "failed", f"the caller heard {heard!r}, not the error path's prompt" + e.why(far.wait(5), caller, room)

    # The flow is now silent for 30 s: the room (and the caller) stay. A few seconds after the
    # error path began the dialled leg (it joins the room while it rings) must be gone for
    # good, and the far end's call over: a phone left ringing could answer into the room.
    time.sleep(3.0)
    seen = []
    for _ in range(8):
        seen.append(e.participants(room))
        time.sleep(0.5)
    r = far.wait(timeout=3.0)
    why = e.why(r, caller, room)
    assert all("caller" in ids for ids in seen), f"the call ended early: participants {seen}" + why
    legs = [ids for ids in seen if any(i.startswith("ivrkit-dial-") for i in ids)]
    assert legs == [], f"dialled leg still in room {room} 3-7 s after the error path: {legs}" + why
    assert not r.timed_out, "the far end was still ringing ~7 s after the error path" + why
    assert r.exit_code == 0 and r.called_user == WAIT and not r.answered, why
    if answer == "486":
        assert r.invite_responses[-1] == 486 and not r.cancelled, why
    else:  # the ring window ended: LiveKit SIP cancelled the INVITE
        assert r.cancelled and r.invite_responses[-1] == 487, why

    caller.leave()  # ends the call (and the job) now rather than after the silence
    trace = e.worker.trace(room)
    dial, error = index(trace, "dial", to=WAIT), index(trace, "error")
    assert 0 <= dial < error, trace
    message = trace[error]["message"]
    assert f"dialling {WAIT}" in message, message
    took = trace[error]["t"] - trace[dial]["t"]
    print(f"\n{answer}: error path {took:.2f} s after the dial: {message}")
    assert took < 3.0 + 10.0, f"the error path came {took:.1f} s after the dial (timeout 3 s)" + why
    if answer == "ring":
        assert took > 2.5, f"a ringing far end failed after {took:.1f} s, before the 3 s timeout" + why
    assert index(trace, "transition", **{"from": "out", "to": "failed", "why": "error"}) > error, trace
    assert index(trace, "transition", to="connected") == -1, trace


def test_caller_hangs_up_while_the_far_end_rings(e: Env) -> None:
    # The legacy flow dials with `timeout: 20s`; the far end just rings. When the caller hangs
    # up, the dial must be abandoned at once: the far end gets CANCEL, not 20 s more ringing.
    far = e.sip.far_end(e.workdir / "caller-gone", sip_port=FAR_PORT, answer="ring", hold=40.0)
    room, caller = e.call("dial-legacy")
    deadline = time.monotonic() + 60
    while not any(m.first_line.startswith("SIP/2.0 180") for m in far.sip_messages()):
        assert time.monotonic() < deadline and far.running(), "the far end never rang" + e.why(far.wait(5), caller, room)
        time.sleep(0.2)
    time.sleep(1.0)  # ringing for a second: the dialled leg is in the room now
    left = time.monotonic()
    caller.leave()
    r = far.wait(timeout=10.0)
    why = e.why(r, caller, room)
    assert not r.timed_out and r.cancelled, \
        f"the far end still rang {time.monotonic() - left:.0f} s after the caller hung up" + why
    assert r.exit_code == 0 and not r.answered and r.invite_responses[-1] == 487, why
    trace = e.worker.trace(room)
    assert events(trace, "call_end")[0]["ended_by"] == "caller_hangup", trace[-3:]
    assert events(trace, "error") == [], trace


def test_caller_hangs_up_after_the_dial_connected(e: Env) -> None:
    # The far end answers and the flow stays on the line; the caller hangs up. The leg the
    # flow dialled must be hung up with the call, not left connected to an empty room.
    far = e.sip.far_end(e.workdir / "connected-caller-gone", sip_port=FAR_PORT, answer="200", hold=40.0)
    room, caller = e.call("dial-wait")
    heard = e.heard(caller, ("connected", "failed"), far, room)
    assert heard == "connected", f"the caller heard {heard!r}: the dial failed" + e.why(far.wait(5), caller, room)
    left = time.monotonic()
    caller.leave()
    r = far.wait(timeout=10.0)
    why = e.why(r, caller, room)
    assert r.answered and r.called_user == WAIT, why
    assert not r.timed_out and r.bye_from == "far", \
        f"the dialled leg was still connected {time.monotonic() - left:.0f} s after the caller hung up" + why
    assert not any(i.startswith("ivrkit-dial-") for i in e.participants(room)), why
    trace = e.worker.trace(room)
    assert events(trace, "call_end")[0]["ended_by"] == "caller_hangup", trace[-3:]
    assert events(trace, "error") == [], trace
