"""The worker listening to a dialled leg on the real stack — answering-machine detection and
`navigate:`. The flow dials out through LiveKit SIP to a SIPp far end that answers and plays
rendered audio, and the worker hears that leg:

    caller.py --room--> ivrkit worker --CreateSIPParticipant--> LiveKit SIP --INVITE--> SIPp
                             ^ subscribes to the dialled leg's audio while amd runs ----'

amd (tests/e2e/listen_flows/amd.yaml): the far end says "Hello?" (eSpeak NG, then silence) or a
voicemail greeting, then a 1 kHz beep; the flow plays one tone per outcome. The test checks
what the caller heard, what the far end's recorder got (the message is spoken into the
machine), and the worker's trace (the amd record: outcome, cause, beep).

navigate (listen_flows/nav.yaml): the far end plays two menu prompts 3 s apart; the flow
listens for the end of each before keying "2", then "9#". The far end's recorder says which
keys came, once each, in order, and when.

navigate to a far end that stays silent (listen_flows/nav_quiet.yaml): the listen step times
out, the flow takes its failure path and sends no key.

navigate by words (listen_flows/nav_words.yaml): the far end says its menu, then "Invalid
entry." after the flow's wrong key; the worker's offline recogniser hears "for billing" and
then "invalid entry" on the dialled leg, and the flow takes its failure path on it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack.callers import CallerError, CallerProcess
from stack.rtp_analysis import detect_tones
from stack.phones import sip_worker
from stack.sip import create_outbound_trunk
from stack.sip_stack import SipStack
from stack.sipp import SippFarEnd, SippResult
from stack.testenv import tone_flows
from stack.worker import Worker, events

pytestmark = pytest.mark.sip

FLOWS = Path(__file__).resolve().parent / "listen_flows"
AGENT = "ivrkit-amd"
FAR_PORT = 5310
TRUNK_NUMBER = "+15550900"
RATE = 48000
#: prompt -> (frequency Hz, seconds); none near the far end's 1 kHz beep
PROMPTS: dict[str, tuple[float, float]] = {
    "hello": (440, 0.6),
    "human": (550, 0.8),
    "message": (1400, 1.2),
    "other": (770, 0.8),
    "failed": (880, 0.8),
    "done": (660, 0.8),
    "refused": (1200, 0.8),
}
MENU = "Welcome to Acme billing. For your balance, press 2."
ACCOUNT = "Please enter your account number, followed by pound."
GREETING = ("Hello, you have reached the voicemail of Jane Smith. I can't take your call right now, "
            "please leave your name and number after the tone.")


def far_audio(text: str, beep: bool) -> bytes:
    """What the far end says once it answered: 0.5 s of silence, `text`, then (`beep`) 0.4 s of
    silence and a 0.5 s 1 kHz beep — 8 kHz 16-bit PCM, as the SIPp far end sends it (PCMU)."""
    from ivrkit.voice.audio import concat, resample, silence, tone
    from ivrkit.voice.speech import EspeakVoice

    parts = [silence(0.5, sample_rate=8000), resample(EspeakVoice("en-us").synthesize(text), 8000)]
    if beep:
        parts += [silence(0.4, sample_rate=8000), tone(1000, 0.5, sample_rate=8000, amplitude=0.3)]
    return concat(parts, sample_rate=8000).samples


@dataclass
class Env:
    sip: SipStack
    worker: Worker
    workdir: Path

    def call(self, flow: str = "dial-amd") -> tuple[str, CallerProcess]:
        room = f"{flow}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
        return room, self.sip.stack.caller(room, agent_name=AGENT, timeout=40.0)

    def heard(self, caller: CallerProcess, far: SippFarEnd, room: str) -> str:
        """Which outcome tone the caller heard to its end."""
        freqs = {hz: name for name, (hz, _) in PROMPTS.items() if name != "hello"}
        try:
            ev = caller.wait_for("tone_end", 60.0, where=lambda ev: ev.get("freq") is not None
                                 and any(abs(ev["freq"] - f) <= 15 for f in freqs))
        except CallerError as exc:
            raise AssertionError(f"no outcome tone heard: {exc}\nfar end: {far.wait(5).describe()}\n"
                                 f"worker: {self.worker.tail(30)}") from None
        return next(n for f, n in freqs.items() if abs(ev["freq"] - f) <= 15)

    def navigate(self, flow: str, name: str, audio: bytes,
                 hold: float = 40.0) -> tuple[str, SippResult, list[dict[str, Any]], list[dict[str, Any]]]:
        """Call `flow`, whose dialled far end answers and says `audio` (files in `name`): the
        outcome the caller heard, the far end's result, the worker's trace and its navigate steps."""
        far = self.sip.far_end(self.workdir / name, sip_port=FAR_PORT, answer="200", hold=hold, audio=audio)
        room, caller = self.call(flow)
        heard = self.heard(caller, far, room)
        r = far.wait(timeout=30)
        trace = self.worker.trace(room)
        return heard, r, trace, events(trace, "navigate_step")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    def trunks(sip: SipStack) -> list[str]:
        trunk = sip.api(lambda lk: create_outbound_trunk(lk, f"{sip.ns.address}:{FAR_PORT}", [TRUNK_NUMBER]))
        return ["--sip-trunk", trunk, "--route", "room:dial-amd-*=dial-amd", "--route", "room:dial-nav-*=dial-nav",
                "--route", "room:dial-words-*=dial-words", "--route", "room:dial-quiet-*=dial-quiet"]

    flows = tone_flows(FLOWS.glob("*.yaml"), tmp_path_factory.mktemp("amd") / "flows", PROMPTS, RATE)
    with sip_worker("sip-listen", flows, agent=AGENT, expect_flows="dial-amd,dial-nav,dial-quiet,dial-words",
                    trunks=trunks, trace_timeout=60.0) as up:
        yield Env(*up)


@pytest.fixture
def e(env: Env) -> Iterator[Env]:
    started = time.monotonic()
    yield env
    env.sip.stop_calls()
    env.sip.stack.stop_processes(since=started)


def amd_record(trace: list[dict[str, Any]]) -> dict[str, Any]:
    found = events(trace, "amd")
    assert len(found) == 1, trace
    return found[0]


def test_a_person_saying_hello_is_human(e: Env) -> None:
    far = e.sip.far_end(e.workdir / "human", sip_port=FAR_PORT, answer="200", hold=40.0,
                        audio=far_audio("Hello?", beep=False))
    room, caller = e.call()
    heard = e.heard(caller, far, room)
    r = far.wait(timeout=30)
    trace = e.worker.trace(room)
    amd = amd_record(trace)
    print(f"\nhuman: heard {heard}; amd {amd}")
    assert heard == "human", f"the caller heard {heard!r}; amd {amd}\n{r.describe()}"
    assert (amd["outcome"], amd["cause"]) == ("human", "after_greeting_silence"), amd
    assert r.answered and r.exit_code == 0, r.describe()
    samples, times = r.recording.audio()
    tones = [s.hz for s in detect_tones(samples, times, [PROMPTS[n][0] for n in ("human", "message", "other")])]
    assert PROMPTS["human"][0] in tones, f"the far end did not hear the flow's answer: {tones}"
    assert events(trace, "error") == [], trace


def test_a_voicemail_greeting_is_a_machine_and_the_message_follows_the_beep(e: Env) -> None:
    audio = far_audio(GREETING, beep=True)
    beep_end_ms = len(audio) // 2 * 1000 // 8000
    far = e.sip.far_end(e.workdir / "machine", sip_port=FAR_PORT, answer="200", hold=40.0, audio=audio)
    room, caller = e.call()
    heard = e.heard(caller, far, room)
    r = far.wait(timeout=30)
    trace = e.worker.trace(room)
    amd = amd_record(trace)
    print(f"\nmachine: heard {heard}; amd {amd}; beep ends at {beep_end_ms} ms of the far end's audio")
    assert heard == "message", f"the caller heard {heard!r}; amd {amd}\n{r.describe()}"
    assert amd["outcome"] == "machine" and amd["cause"] in ("long_greeting", "max_words"), amd
    beep = amd["beep"]
    assert abs(beep["hz"] - 1000) < 15, beep
    # Audio time on the leg starts when the agent subscribed, a little after the answer: the
    # beep ends up to that much earlier in the leg's audio than in the far end's.
    assert beep_end_ms - 1500 <= beep["end_ms"] <= beep_end_ms + 100, (beep, beep_end_ms)
    samples, times = r.recording.audio()
    segments = detect_tones(samples, times, [PROMPTS[n][0] for n in ("human", "message", "other")])
    assert [s.hz for s in segments] == [PROMPTS["message"][0]], f"the far end heard {segments}"
    moved = next(i for i, x in enumerate(trace) if x["event"] == "transition" and x.get("to") == "message")
    assert trace.index(amd) < moved, trace
    assert events(trace, "error") == [], trace


def test_navigate_keys_each_entry_after_the_far_prompt_ended(e: Env) -> None:
    from ivrkit.voice.audio import concat, resample, silence
    from ivrkit.voice.speech import EspeakVoice

    speak = EspeakVoice("en-us")
    menu, account = (resample(speak.synthesize(text), 8000) for text in (MENU, ACCOUNT))
    lead, gap = 0.5, 3.0
    audio = concat([silence(lead, sample_rate=8000), menu, silence(gap, sample_rate=8000), account], sample_rate=8000)
    menu_end, account_end = lead + menu.duration, lead + menu.duration + gap + account.duration
    heard, r, trace, steps = e.navigate("dial-nav", "navigate", audio.samples)
    digits = r.recording.digits()
    t0 = r.recording.packets[0].arrival  # LiveKit SIP's media starts with the answer, as the far end's audio does
    at = [round(d.first_arrival - t0, 2) for d in digits]
    print(f"\nnavigate: heard {heard}; steps {steps}; keys {[d.key for d in digits]} at {at} s "
          f"(menu ends {menu_end:.2f} s, account prompt ends {account_end:.2f} s)")
    assert heard == "done", f"the caller heard {heard!r}; steps {steps}\n{r.describe()}"
    assert [d.key for d in digits] == ["2", "9", "#"], r.describe()
    assert all(d.ended for d in digits), digits
    # each entry after its prompt ended and the 800 ms of silence the flow listens for (the
    # far end's clock starts with its answer, as LiveKit SIP's media does: about 0.3 s slack)
    assert menu_end + 0.8 - 0.3 <= at[0] < menu_end + gap, (at, menu_end)
    assert at[1] >= account_end + 0.8 - 0.3, (at, account_end)
    assert [s["ok"] for s in steps] == [True, True], steps
    # the listen steps heard the prompts: voiced audio (ms, pauses between words not counted)
    assert 500 <= steps[0]["heard_ms"] <= menu.duration * 1000, (steps[0], menu.duration)
    assert 500 <= steps[1]["heard_ms"] <= account.duration * 1000, (steps[1], account.duration)
    assert events(trace, "error") == [], trace


def test_navigate_to_a_far_end_that_stays_silent_takes_the_failure_path_and_sends_nothing(e: Env) -> None:
    from ivrkit.voice.audio import silence

    heard, r, trace, steps = e.navigate("dial-quiet", "navigate-quiet", silence(20.0, sample_rate=8000).samples,
                                        hold=30.0)
    print(f"\nnavigate to a silent far end: heard {heard}; steps {steps}")
    assert heard == "failed", f"the caller heard {heard!r}; steps {steps}\n{r.describe()}"
    assert [(s["step"], s["ok"]) for s in steps] == [(1, False)], steps
    assert steps[0]["why"] == "no prompt ended within 3 s", steps
    assert r.recording.digits() == [], r.describe()
    assert events(trace, "error") == [], trace


WORDS_MENU = "For billing, press 2."


def test_navigate_by_words_hears_the_menu_and_takes_the_failure_path_on_invalid_entry(e: Env) -> None:
    from ivrkit.voice.audio import concat, resample, silence
    from ivrkit.voice.speech import EspeakVoice

    speak = EspeakVoice("en-us")
    menu, invalid = (resample(speak.synthesize(text), 8000) for text in (WORDS_MENU, "Invalid entry."))
    lead, gap = 0.5, 3.0  # the flow keys ~1 s after the menu: "Invalid entry." comes after its key
    # "Invalid entry." said twice, as IVRs often repeat it: the offline recogniser over a loaded
    # 2-core box missed a single one in about 1 run of 3 (heard 'you at the the please')
    audio = concat([silence(lead, sample_rate=8000), menu, silence(gap, sample_rate=8000), invalid,
                    silence(1.0, sample_rate=8000), invalid, silence(1.0, sample_rate=8000)], sample_rate=8000)
    menu_end, invalid_start = lead + menu.duration, lead + menu.duration + gap
    for attempt in (1, 2):
        heard, r, trace, steps = e.navigate("dial-words", f"words-{attempt}", audio.samples)
        digits = r.recording.digits()
        missed = heard == "failed" and len(steps) == 1 and steps[0].get("why", "").startswith("no 'for billing' heard")
        if not missed or attempt == 2:
            break
        # The offline recogniser garbles a whole call now and then (CI heard the menu as 'a your
        # will a and you', each "Invalid entry." as garbage too; livekit-sip had lost no packet).
        # What the flow must do then it did: its failure path, no key sent. Once more.
        assert digits == [], r.describe()
        print(f"\nwords: the recogniser missed the menu ({steps[0].get('why')}); the flow gave up without a key; "
              "calling again")
        e.sip.stop_calls()
    t0 = r.recording.packets[0].arrival
    at = [round(d.first_arrival - t0, 2) for d in digits]
    print(f"\nwords: heard {heard}; steps {steps}; keys {[d.key for d in digits]} at {at} s "
          f"(menu ends {menu_end:.2f} s, 'invalid entry' starts {invalid_start:.2f} s)")
    assert heard == "refused", f"the caller heard {heard!r}; steps {steps}\n{r.describe()}"
    assert [(s["step"], s["ok"]) for s in steps] == [(1, True), (3, False)], steps
    assert steps[0]["said"] == "for billing" and steps[1]["why"] == "heard 'invalid entry'", steps
    assert [d.key for d in digits] == ["9"], r.describe()
    # the key went out only once the menu had been said (heard at its end), before the reply
    assert menu_end - 0.3 <= at[0] < invalid_start, (at, menu_end, invalid_start)
    assert events(trace, "error") == [], trace
