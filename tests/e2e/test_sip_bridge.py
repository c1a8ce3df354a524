"""Two SIP legs, one call: who hears which keys, and the audio bridge between them.

    SIPp phone --INVITE--> LiveKit SIP --room--> ivrkit worker --CreateSIPParticipant--> LiveKit SIP --INVITE--> SIPp far end

LiveKit SIP relays every DTMF data packet in a room to every SIP leg in it. With the dialled leg
in the caller's room the caller's PIN went out to the far end as tones and the digits the flow
keyed into the far end were played to the caller (measured with this module before the fix:
see docs/security.md). The worker now puts a dialled leg in a room of its own and bridges
audio between the rooms itself, never keys. Each end is a SIPp UA whose RTP is recorded, so
what is asserted is what each phone line carried: RFC 4733 events and tones.

The caller's phone sends a 1300 Hz tone all along, the far end a 700 Hz tone: hearing the
other's tone means the audio is bridged.

Flows (tests/e2e/bridge_flows), routed by the number the phone calls:
    +15550020 -> xtalk   (dial, collect a sensitive 4-digit PIN, navigate: key "97" with hold
                          audio for the caller, then hang the leg up; "done"; hang up)
    +15550021 -> bridge  (dial with bridge: true, send_dtmf "5", 6 s on the bridge, hang up)
    +15550022 -> rebridge (dial far end A with bridge: true, a sensitive PIN sent as RFC 4733
                          events and tones, hang A up, dial far end B on a second trunk and
                          bridge again, 3 s on the bridge, hang up)
    +15550023 -> navbridge (dial with bridge: true, navigate: listen for the end of the far end's
                          prompt, then 4 s on the bridge: the listener's end must not cut it)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from stack.phones import PhoneEnv, sip_worker
from stack.process import LEAK
from stack.rtp_analysis import detect_tones
from stack.sip import create_dispatch_rule, create_inbound_trunk, create_outbound_trunk
from stack.sip_stack import SipStack
from stack.sipp import SippResult
from stack.testenv import tone_flows
from stack.worker import events

from ivrkit.voice.dtmf_tones import DtmfDetector

pytestmark = pytest.mark.sip

FLOWS = Path(__file__).resolve().parent / "bridge_flows"
AGENT = "ivrkit-bridge"
FAR_PORT = 5320
FAR_B_PORT = 5322  # the second far end of rebridge (5321 would take 5320's recorder port)
XTALK, BRIDGE, REBRIDGE, NAVBRIDGE = "+15550020", "+15550021", "+15550022", "+15550023"
TRUNK_NUMBER = "+15550900"
RATE = 48000
CALLER_HZ, FAR_HZ, FAR_B_HZ = 1300.0, 700.0, 1000.0
#: prompt -> (frequency Hz, seconds)
PROMPTS: dict[str, tuple[float, float]] = {
    "hello": (440, 0.6),
    "pin": (550, 0.8),
    "done": (660, 0.8),
    "failed": (880, 0.8),
    "hold": (990, 0.5),  # looped while the flow navigates
}


def far_tone(seconds: float, hz: float = FAR_HZ) -> bytes:
    """What the far end says: a 700 Hz tone (8 kHz 16-bit PCM) at about -20 dBFS."""
    n = round(seconds * 8000)
    return b"".join(round(3000 * math.sin(2 * math.pi * hz * i / 8000)).to_bytes(2, "little", signed=True)
                    for i in range(n))


def far_quiet(seconds: float) -> bytes:
    return bytes(2 * round(seconds * 8000))


def tone_segments(result: SippResult, hz: float) -> list[tuple[float, float]]:
    """(start, seconds) of each stretch of `hz` in what the end recorded (among the test tones
    and the hold tone)."""
    samples, times = result.recording.audio()
    return [(s.start, s.seconds) for s in detect_tones(samples, times, [CALLER_HZ, FAR_HZ, FAR_B_HZ, PROMPTS["hold"][0]])
            if s.hz == hz]


def tone_seconds(result: SippResult, hz: float) -> float:
    """Seconds of `hz` in what the end recorded."""
    return sum(seconds for _, seconds in tone_segments(result, hz))


def keys_in_audio(result: SippResult) -> str:
    """The DTMF keys heard as tones in what the end recorded (ivrkit's own in-band detector)."""
    samples: Sequence[int] = result.recording.audio()[0]
    return "".join(k.digit for k in DtmfDetector(8000).feed(np.asarray(samples, dtype=np.int16)))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneEnv]:
    flows = tone_flows(FLOWS.glob("*.yaml"), tmp_path_factory.mktemp("bridge") / "flows", PROMPTS, RATE)

    def trunks(sip: SipStack) -> list[str]:
        inbound = sip.api(lambda lk: create_inbound_trunk(lk, [XTALK, BRIDGE, REBRIDGE, NAVBRIDGE],
                                                          allowed_addresses=[f"{sip.ns.address}/32"]))
        sip.api(lambda lk: create_dispatch_rule(lk, [inbound], agent_name=AGENT))
        outbound = sip.api(lambda lk: create_outbound_trunk(lk, f"{sip.ns.address}:{FAR_PORT}", [TRUNK_NUMBER]))
        trunk_b = sip.api(lambda lk: create_outbound_trunk(lk, f"{sip.ns.address}:{FAR_B_PORT}", [TRUNK_NUMBER],
                                                           name="ivrkit-test-outbound-b"))
        rebridge = flows / "rebridge.yaml"
        rebridge.write_text(rebridge.read_text().replace("trunk: TRUNK_B", f"trunk: {trunk_b}"))
        return ["--sip-trunk", outbound, "--route", f"number:{XTALK}=xtalk", "--route", f"number:{BRIDGE}=bridge",
                "--route", f"number:{REBRIDGE}=rebridge", "--route", f"number:{NAVBRIDGE}=navbridge"]

    with sip_worker("sip-bridge", flows, agent=AGENT, expect_flows="bridge,navbridge,rebridge,xtalk", trunks=trunks,
                    trace_timeout=60.0) as up:
        yield PhoneEnv(*up)


@pytest.fixture
def e(env: PhoneEnv) -> Iterator[PhoneEnv]:
    env.sip.clear_rooms()
    yield env
    env.sip.stop_calls()


def test_keys_stay_on_their_leg(e: PhoneEnv) -> None:
    # The far end answers at ~2 s; the PIN is keyed at 6 s, while both legs are up.
    far = e.sip.far_end(e.workdir / "xtalk-far", sip_port=FAR_PORT, answer="200", hold=40.0, audio=far_tone(30))
    phone = e.call(XTALK, "xtalk-phone", caller="+15550130", keys=[(6.0, "4321")], hold=25.0, hangup="far",
                   tone_hz=CALLER_HZ)
    r = phone.wait()
    f = far.wait(timeout=15)
    why = e.why(r) + f"\nfar end: {f.describe()}"
    caller_got, far_got = r.recording.digit_string(), f.recording.digit_string()
    print(f"\ncaller's line carried keys {caller_got!r}, the far end's {far_got!r}; "
          f"caller heard {tone_seconds(r, FAR_HZ):.2f} s of the far end, far end {tone_seconds(f, CALLER_HZ):.2f} s of the caller")
    trace = e.worker.call_trace("+15550130", XTALK)
    assert [x["digit"] for x in events(trace, "dtmf_sent")] == ["9", "7"], trace
    assert [x["digits"] for x in events(trace, "collect")] == ["****"], trace
    assert f.answered and r.bye_from == "far", why
    assert far_got == "97", f"the far end's line carried {far_got!r}: the caller's PIN leaked to it" + why
    assert caller_got == "", f"the caller's line carried {caller_got!r}: the navigation digits leaked to it" + why
    # never bridged: neither end heard the other
    assert tone_seconds(r, FAR_HZ) == 0.0 and tone_seconds(f, CALLER_HZ) == 0.0, why
    # the caller heard the hold audio loop through the navigation (3 s); the far end none of it
    hold_hz = PROMPTS["hold"][0]
    print(f"hold audio: the caller heard {tone_seconds(r, hold_hz):.2f} s, the far end {tone_seconds(f, hold_hz):.2f} s")
    assert tone_seconds(r, hold_hz) > 2.0 and tone_seconds(f, hold_hz) == 0.0, why
    # hang_up: true: the far end's line went quiet (BYE) before the caller heard "done"
    samples, times = r.recording.audio()
    done = [seg.start for seg in detect_tones(samples, times, [PROMPTS["done"][0]])]
    far_last = f.recording.audio()[1][-1]
    print(f"the far end's last audio {far_last - done[0]:+.2f} s from the start of 'done' at the caller" if done else "")
    assert done and far_last < done[0], f"far end's last audio at {far_last}, 'done' at {done}" + why
    assert events(trace, "dialled_hung_up"), trace


def test_bridge_carries_audio_both_ways_and_no_keys(e: PhoneEnv) -> None:
    far = e.sip.far_end(e.workdir / "bridge-far", sip_port=FAR_PORT, answer="200", hold=40.0, audio=far_tone(30))
    phone = e.call(BRIDGE, "bridge-phone", caller="+15550131", keys=[(5.0, "8")], hold=25.0, hangup="far",
                   tone_hz=CALLER_HZ)
    r = phone.wait()
    f = far.wait(timeout=15)
    why = e.why(r) + f"\nfar end: {f.describe()}"
    to_caller, to_far = tone_seconds(r, FAR_HZ), tone_seconds(f, CALLER_HZ)
    caller_got, far_got = r.recording.digit_string(), f.recording.digit_string()
    print(f"\nbridged: the caller heard {to_caller:.2f} s of the far end's tone, the far end {to_far:.2f} s of "
          f"the caller's; keys on the caller's line {caller_got!r}, on the far end's {far_got!r}")
    trace = e.worker.call_trace("+15550131", BRIDGE)
    assert events(trace, "error") == [], trace
    assert f.answered and r.bye_from == "far", why
    # the bridge is up from the worker's `bridged` record to the call's end: each end hears the
    # other's tone for (nearly) all of it — a share, since the two ends' clocks are not the worker's
    up = events(trace, "call_end")[0]["t"] - events(trace, "bridged")[0]["t"]
    print(f"bridge up {up:.2f} s (worker clock): {to_caller / up:.0%} / {to_far / up:.0%} of it heard at each end")
    assert up > 2.0 and to_caller > 0.8 * up and to_far > 0.8 * up, \
        f"bridge up {up:.2f} s carried {to_caller:.2f} s / {to_far:.2f} s of audio" + why
    assert far_got == "5" and caller_got == "", f"keys crossed the bridge: caller {caller_got!r}, far {far_got!r}" + why


def test_a_second_bridge_reaches_the_second_far_end_and_a_pin_typed_while_bridged_does_not_cross(e: PhoneEnv) -> None:
    # Far end A answers at ~2 s and is bridged; the PIN is keyed at 6.5 s, each key both as an
    # RFC 4733 event (which ends the collect) and as tones, whose tail comes after it.
    far_a = e.sip.far_end(e.workdir / "rebridge-far-a", sip_port=FAR_PORT, answer="200", hold=40.0, audio=far_tone(30))
    far_b = e.sip.far_end(e.workdir / "rebridge-far-b", sip_port=FAR_B_PORT, answer="200", hold=40.0,
                          audio=far_tone(30, FAR_B_HZ))
    phone = e.call(REBRIDGE, "rebridge-phone", caller="+15550134", keys=[(6.5, "4321")], hold=30.0, hangup="far",
                   tone_hz=CALLER_HZ, dtmf="both")
    r = phone.wait()
    a, b = far_a.wait(timeout=15), far_b.wait(timeout=15)
    why = e.why(r) + f"\nfar end A: {a.describe()}\nfar end B: {b.describe()}"
    trace = e.worker.call_trace("+15550134", REBRIDGE)
    bridged = events(trace, "bridged")
    unbridged = events(trace, "unbridged")
    a_keys, a_tones = a.recording.digit_string(), keys_in_audio(a)
    print(f"\nfar end A: keys {a_keys!r} as events, {a_tones!r} as tones; heard {tone_seconds(a, CALLER_HZ):.2f} s of the caller; "
          f"unbridged {[(u.get('frames_to_far'), u.get('muted_frames')) for u in unbridged]} (frames to far, muted)")
    assert events(trace, "error") == [], trace
    assert [x["digits"] for x in events(trace, "collect")] == ["****"], trace
    assert a.answered and b.answered and r.bye_from == "far", why
    assert len(bridged) == 2 and bridged[0]["room"] != bridged[1]["room"], trace
    # The PIN reached far end A neither as keys nor as tones, though A heard the caller
    assert tone_seconds(a, CALLER_HZ) > 1.0, "far end A never heard the caller: not bridged" + why
    assert a_keys == "" and a_tones == "", f"the PIN crossed the bridge: {a_keys!r} / {a_tones!r}" + why
    assert unbridged and unbridged[0]["muted_frames"] > 0, trace
    # The caller heard A, then B (the second bridge), and nothing of A after it was hung up
    a_heard, b_heard = tone_segments(r, FAR_HZ), tone_segments(r, FAR_B_HZ)
    up = events(trace, "call_end")[0]["t"] - bridged[1]["t"]
    print(f"the caller heard A {sum(s for _, s in a_heard):.2f} s, then B {sum(s for _, s in b_heard):.2f} s "
          f"of {up:.2f} s bridged to B; the far end B heard {tone_seconds(b, CALLER_HZ):.2f} s of the caller")
    assert a_heard and b_heard, why
    assert sum(s for _, s in b_heard) > 0.8 * up and tone_seconds(b, CALLER_HZ) > 0.8 * up, why
    assert a_heard[-1][0] + a_heard[-1][1] <= b_heard[0][0] + 0.1, f"A {a_heard}, B {b_heard}" + why
    assert b.recording.digit_string() == "" and keys_in_audio(b) == "", why


def test_navigating_a_bridged_leg_leaves_the_bridge_carrying_the_far_end(e: PhoneEnv) -> None:
    # The far end's "prompt" (1.5 s of tone), the pause that ends it, then the tone on and on:
    # the navigate step hears the pause and stops listening; the bridge must carry the rest.
    far = e.sip.far_end(e.workdir / "navbridge-far", sip_port=FAR_PORT, answer="200", hold=40.0,
                        audio=far_tone(1.5) + far_quiet(1.5) + far_tone(25))
    phone = e.call(NAVBRIDGE, "navbridge-phone", caller="+15550132", hold=25.0, hangup="far", tone_hz=CALLER_HZ)
    r = phone.wait()
    f = far.wait(timeout=15)
    why = e.why(r) + f"\nfar end: {f.describe()}"
    trace = e.worker.call_trace("+15550132", NAVBRIDGE)
    assert events(trace, "error") == [], trace
    moves = [(t["from"], t["to"]) for t in events(trace, "transition")]
    assert ("prompt", "talk") in moves, f"the navigate step did not hear the far end's prompt end: {moves}" + why
    samples, times = r.recording.audio()
    heard = [s for s in detect_tones(samples, times, [CALLER_HZ, FAR_HZ, PROMPTS["hold"][0]]) if s.hz == FAR_HZ]
    print(f"\nthe caller heard the far end in segments of {[round(s.seconds, 2) for s in heard]} s")
    # the prompt through the bridge while navigating, then the tone again for the 4 s on the
    # bridge after the navigate step let go of the leg's audio (before the fix: nothing)
    assert heard and heard[0].seconds > 0.8, f"the caller did not hear the far end's prompt: {heard}" + why
    assert len(heard) >= 2 and heard[-1].seconds > 2.5, \
        f"the bridge stopped carrying the far end when navigate stopped listening: {heard}" + why
    assert f.answered and r.bye_from == "far", why
    leaks = [ln for ln in e.worker.process.log_text().splitlines() if LEAK.search(ln)]
    assert leaks == [], leaks  # no stream or task of the leg's audio left behind
