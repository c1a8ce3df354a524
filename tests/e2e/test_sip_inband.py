"""In-band DTMF on real phone calls: SIPp -> LiveKit SIP -> room -> `ivrkit start`.

LiveKit SIP decodes RFC 4733 telephone-events only, so these calls prove the worker hears keys
as tones in the caller's audio (`dtmf: inband`), counts a press once when a trunk sends it both
ways (`dtmf: both`), and leaves the caller's audio alone in a key-only flow:

    +15550031 -> inband-menu (inband_flows/inband.yaml, dtmf: inband)
    +15550032 -> both-menu   (both.yaml, dtmf: both)
    +15550033 -> keys-menu   (keys.yaml, no dtmf: -> the worker default, rfc4733)

The phone's keys are generated into its PCMU pcap (`stack.rtp_pcap.phone_packets(dtmf=...)`):
100 ms tones at -12 dBFS per tone, 100 ms apart. Every prompt is a sine tone of its own
frequency; assertions come from what the phone hears and from the worker's call traces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack.phones import PhoneEnv, sip_worker
from stack.rtp_analysis import detect_tones
from stack.sip import create_dispatch_rule, create_inbound_trunk
from stack.sip_stack import SipStack
from stack.sipp import SippResult
from stack.testenv import log_text, pins_in, tone_flows, trace_text
from stack.worker import events

pytestmark = pytest.mark.sip

FLOWS = Path(__file__).resolve().parent / "inband_flows"
AGENT = "ivrkit-inband"
INBAND, BOTH, KEYS = "+15550031", "+15550032", "+15550033"
RATE = 48000
PROMPTS: dict[str, tuple[float, float]] = {
    "menu": (550, 1.0),
    "no_input": (660, 0.5),
    "pin": (880, 0.8),
    "pin_ok": (990, 0.8),
    "pin_bad": (1100, 0.6),
    "goodbye": (1320, 0.8),
}
_BY_HZ = {float(hz): name for name, (hz, _) in PROMPTS.items()}
#: The menu prompt ends ~1.0 s after answer; key "2" then the PIN, as the SIP suite's callers do.
PIN_KEYS = [(2.2, "2"), (3.6, "4321#")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneEnv]:
    def trunks(sip: SipStack) -> list[str]:
        trunk = sip.api(lambda lk: create_inbound_trunk(lk, [INBAND, BOTH, KEYS],
                                                        allowed_addresses=[f"{sip.ns.address}/32"]))
        sip.api(lambda lk: create_dispatch_rule(lk, [trunk], agent_name=AGENT))
        return ["--route", f"number:{INBAND}=inband-menu", "--route", f"number:{BOTH}=both-menu",
                "--route", f"number:{KEYS}=keys-menu"]

    flows = tone_flows(FLOWS.glob("*.yaml"), tmp_path_factory.mktemp("inband") / "flows", PROMPTS, RATE)
    with sip_worker("sip-inband", flows, agent=AGENT, expect_flows="both-menu,inband-menu,keys-menu", trunks=trunks) as up:
        yield PhoneEnv(*up)


@pytest.fixture
def e(env: PhoneEnv) -> Iterator[PhoneEnv]:
    env.sip.clear_rooms()
    yield env
    env.sip.stop_calls()


def heard(result: SippResult) -> list[str]:
    """The prompts the phone heard, in order (one run of a frequency = one prompt)."""
    samples, times = result.recording.audio()
    names: list[str] = []
    for seg in detect_tones(samples, times, list(_BY_HZ)):
        if not names or names[-1] != _BY_HZ[seg.hz]:
            names.append(_BY_HZ[seg.hz])
    return names


def _pin_taken(e: PhoneEnv, r: SippResult, trace: list[dict[str, Any]]) -> None:
    assert r.exit_code == 0 and r.bye_from == "far", e.why(r)
    assert heard(r) == ["menu", "pin", "pin_ok"], e.why(r)
    assert [x["digit"] for x in events(trace, "key")] == ["2", "*", "*", "*", "*", "*"], trace
    collect = events(trace, "collect")
    assert collect and collect[-1]["reason"] == "terminator" and collect[-1]["digits"] == "****", collect
    assert not pins_in(trace_text(trace), ["4321"]), "the PIN reached the trace"
    assert not pins_in(log_text(e.worker.process.log_text()), ["4321"]), "the PIN reached the log"


def test_a_phone_without_telephone_event_is_heard_through_its_tones(e: PhoneEnv) -> None:
    caller = "+15550131"
    phone = e.call(INBAND, "inband", caller=caller, keys=PIN_KEYS, hold=15.0, hangup="far",
                   offer_telephone_event=False, dtmf="inband")
    r = phone.wait()
    assert "telephone-event" not in (r.invite.text if r.invite else ""), "the phone offered telephone-event"
    trace = e.worker.call_trace(caller, INBAND)
    _pin_taken(e, r, trace)
    assert len(events(trace, "caller_audio_subscribed")) == 1, trace
    # given back when the flow hung up (ParticipantAudio: the last listener gone unsubscribes)
    kinds = [x["event"] for x in trace]
    assert kinds.count("caller_audio_unsubscribed") == 1, kinds
    assert kinds.index("caller_audio_subscribed") < kinds.index("caller_audio_unsubscribed"), kinds
    assert events(trace, "dtmf_merged") == [] and events(trace, "dtmf_ignored") == []


def test_a_press_sent_both_as_event_and_as_tone_counts_once(e: PhoneEnv) -> None:
    caller = "+15550132"
    phone = e.call(BOTH, "both", caller=caller, keys=PIN_KEYS, hold=15.0, hangup="far", dtmf="both")
    r = phone.wait()
    trace = e.worker.call_trace(caller, BOTH)
    _pin_taken(e, r, trace)
    # every press arrived twice, and every second half was dropped
    merged = events(trace, "dtmf_merged")
    assert len(merged) == 6, merged
    gaps = sorted(m["after_ms"] for m in merged)
    print(f"\nboth: the second half of a press came {gaps} ms after the first "
          f"(sources {sorted({m['source'] for m in merged})})")


def test_a_key_only_flow_never_subscribes_to_the_callers_audio(e: PhoneEnv) -> None:
    caller = "+15550133"
    phone = e.call(KEYS, "keys", caller=caller, keys=PIN_KEYS, hold=15.0, hangup="far")
    r = phone.wait()
    trace = e.worker.call_trace(caller, KEYS)
    _pin_taken(e, r, trace)
    assert events(trace, "caller_audio_subscribed") == [], trace


def test_a_key_only_flow_does_not_take_tones_as_keys(e: PhoneEnv) -> None:
    """The same tones into a flow that listens for RFC 4733 only: nothing is pressed."""
    caller = "+15550134"
    phone = e.call(KEYS, "keys-tones", caller=caller, keys=[(2.2, "2")], hold=15.0, hangup="far",
                   offer_telephone_event=False, dtmf="inband")
    r = phone.wait()
    trace = e.worker.call_trace(caller, KEYS)
    assert r.exit_code == 0 and r.bye_from == "far", e.why(r)
    assert events(trace, "key") == [], trace
    assert heard(r) == ["menu", "no_input", "menu", "goodbye"], e.why(r)
