"""Hang-up at every state of every example flow (flows/*.yaml with their hooks in examples/).

One worker serves the example flows as they ship (spoken by the offline voice). For each
state reachable by keys, a caller drives the call there — each step waits in the worker's live
trace file for where the call is, then presses the next keys — and hangs up as soon as the
trace shows the state. Then the worker must have ended that job cleanly: its trace ends with
`call_end` and `job_end`, no `error` record unless the path goes through an error (a transfer,
which a non-SIP test caller cannot take), and no leak line (`stack.process.LEAK`) or ERROR
record in the worker log.

The calls run a few at a time (`BATCH`) in one module-scoped run; each (flow, state) is its own
test so a skip names its state and reason. The key paths are written by hand per flow: each is
short, and reads as what a caller does, which a path derived from the graph would not say.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from stack.process import LEAK
from stack.stack import CALLER_PY, Stack
from stack.testenv import TYPED_PINS, log_text, pins_in, trace_text
from stack.worker import Record, Worker, events, json_object

REPO = Path(__file__).resolve().parents[2]
AGENT = "ivrkit-e2e-hangup"
BATCH = 6
#: The bank's test account and its PIN (examples/acme_bank.py), and a wrong PIN; both are in
#: testenv.TYPED_PINS, which the session-end sweep looks for in every log and trace.
ACCOUNT, PIN, WRONG_PIN = "12345678", "4321", "9876"


def _bookable_date() -> str:
    """MMDD of a weekday a week or more ahead: examples/clinic.py books weekdays within 90 days.
    Never one that reads as a PIN the suite types (11 November would be 1111): the date is not
    sensitive, so it is logged, and the session-end sweep would take it for a leak."""
    day = datetime.date.today() + datetime.timedelta(days=7)
    while day.weekday() >= 5 or f"{day:%m%d}" in TYPED_PINS:
        day += datetime.timedelta(days=1)
    return f"{day:%m%d}"


#: A step: wait until the call's trace shows `until`, then press `keys`. `until` is a state name,
#: `<kind>#<n>` (n records of that kind, e.g. `no_match#2`) or `prompt:<text>` (a prompt saying it).
Step = tuple[str, str]
NO_MATCH_3 = ("no_match#1", "no_match#2")  # retries: 3 -- the third failure leaves
BANK: dict[str, list[Step]] = {
    "main": [],
    "account": [("main", "1")],
    "pin": [("main", "1"), ("account", ACCOUNT)],
    "balance": [("main", "1"), ("account", ACCOUNT), ("pin", PIN)],
    "lost_card": [("main", "2")],
    "agent": [("main", "0")],
    "technical_difficulty": [("main", "0")],  # the transfer fails for a non-SIP caller: the error state
    "locked": [("main", "1"), ("account", ACCOUNT), ("pin", WRONG_PIN), *((n, WRONG_PIN) for n in NO_MATCH_3)],
    "goodbye": [("main", "9"), *((n, "9") for n in NO_MATCH_3)],
}
SUPPORT: dict[str, list[Step]] = {
    "welcome": [],
    "closed": [],  # only outside business hours
    "main": [],
    "tech_queue": [("main", "1")],
    "tech_agent": [("main", "1")],  # 3rd in the toy queue: straight to the transfer
    "sorry": [("main", "1")],  # the transfer fails for a non-SIP caller: the error state
    "billing": [("main", "2")],
    "ticket": [("main", "3")],
    "ticket_status": [("main", "3"), ("ticket", "123456#"), ("prompt:To confirm", "1")],
}
APPOINTMENTS: dict[str, list[Step]] = {
    "welcome": [],
    "date": [],
    "slot": [("date", _bookable_date()), ("prompt:To confirm", "1")],
    "book_morning": [("date", _bookable_date()), ("prompt:To confirm", "1"), ("slot", "1")],
    "booked": [("date", _bookable_date()), ("prompt:To confirm", "1"), ("slot", "1")],
    "book_afternoon": [("date", _bookable_date()), ("prompt:To confirm", "1"), ("slot", "2")],
    "sorry": [("date", "0000"), *((n, "0000") for n in NO_MATCH_3)],
}
#: Press or say, driven by keys only (its speech is tests/e2e/test_speech.py's); the account is
#: not sensitive, so it is not one of the PINs the session sweep looks for.
PRESS_OR_SAY: dict[str, list[Step]] = {
    "main": [],
    "account": [("main", "1")],
    "billing": [("main", "1"), ("account", "2580"), ("prompt:I heard", "1")],
    "goodbye": [("main", "1"), ("account", "2580"), ("prompt:I heard", "1")],
    "lost_card": [("main", "2")],
    "card_blocked": [("main", "2"), ("lost_card", "1")],
    "agent": [("main", "0")],  # the transfer fails for a non-SIP caller: the error path
}
#: The navigation example, up to its dial (a sensitive account number first: a typed PIN).
NAVIGATE: dict[str, list[Step]] = {
    "account": [],
    "out": [("account", "3333")],  # no outbound trunk here: the dial fails, the error path
}
PATHS: dict[str, dict[str, list[Step]]] = {"acme-bank": BANK, "support": SUPPORT, "appointments": APPOINTMENTS,
                                           "press-or-say": PRESS_OR_SAY, "navigate": NAVIGATE}
#: States whose path goes through an error record by design (a transfer refused to a web caller).
ERROR_PATHS = {("acme-bank", "agent"), ("acme-bank", "technical_difficulty"), ("support", "tech_agent"),
               ("support", "sorry"), ("support", "billing"), ("press-or-say", "agent"), ("navigate", "out")}
OPEN_ONLY = set(SUPPORT) - {"welcome", "closed"}
#: States no key path reaches, and why; each is a test that skips with this reason.
UNREACHABLE: dict[tuple[str, str], str] = {
    ("support", "callback_offer"): "reached only when more than 3 callers wait (examples/support_desk.py reads "
                                   "the `queue_length` variable, else 2 ahead); the worker sets no variables from "
                                   "dispatch metadata, so no caller can get there",
    ("support", "callback"): "behind callback_offer, which no caller can reach (see callback_offer)",
    **{("navigate", state): "behind the dial to a legacy IVR, which needs an outbound SIP trunk and a far end: "
                            "tests/e2e/test_sip_listen.py navigates a SIPp far end"
       for state in ("drive", "done", "failed", "refused", "gave_up")},
}
CASES = [(flow, state) for flow, states in PATHS.items() for state in states] + list(UNREACHABLE)
HOURS = "examples/support_desk.py: weekdays 9-17 London; the worker takes no `now` variable"


@dataclass
class Outcome:
    """What one call did: the finished trace and where it was when the caller left."""

    room: str
    reached: bool = False
    skipped: str | None = None
    trace: list[Record] = field(default_factory=list)
    problem: str | None = None
    seconds: float = 0.0


Hangups = tuple[Worker, dict[tuple[str, str], Outcome]]


def _live(trace_dir: Path, room: str) -> list[Record]:
    """The call's trace so far (the worker writes it line by line while the call runs)."""
    files = sorted(trace_dir.glob(f"{room}--*.jsonl"))
    if not files:
        return []
    return [r for line in files[0].read_text().splitlines() if (r := json_object(line)) is not None]


def _shows(trace: list[Record], until: str) -> bool:
    if until.startswith("prompt:"):
        return any(until[7:] in str(r.get("text", "")) for r in events(trace, "prompt"))
    if "#" in until:
        kind, n = until.split("#")
        return len(events(trace, kind)) >= int(n)
    return any(r.get("state") == until for r in events(trace, "state"))


def _closed(trace: list[Record]) -> bool:
    return any(r.get("to") == "closed" for r in events(trace, "transition"))


def _drive(stack: Stack, worker: Worker, flow: str, state: str, room: str) -> Outcome:
    assert worker.trace_dir is not None
    out = Outcome(room)
    started = time.monotonic()
    identity = f"{flow}-{state}"  # its own log file: the calls start at once
    token = stack.token(identity, room, agent_name=worker.agent_name, agent_metadata=json.dumps({"flow": flow}))
    caller = stack._caller([sys.executable, str(CALLER_PY), "--url", stack.url], token, identity, room, 30.0)
    try:
        for until, keys in [*PATHS[flow][state], (state, "")]:
            deadline = time.monotonic() + 40
            while not _shows(trace := _live(worker.trace_dir, room), until):
                if flow == "support" and state in OPEN_ONLY and _closed(trace):
                    out.skipped = f"the support line is closed now ({HOURS})"
                    break
                if (flow, state) == ("support", "closed") and _shows(trace, "main"):
                    out.skipped = f"the support line is open now, so no caller reaches `closed` ({HOURS})"
                    break
                if time.monotonic() > deadline or events(trace, "call_end") or caller.events("disconnected"):
                    out.problem = f"never saw {until!r} on the way to {state!r}: {[r['event'] for r in trace][-12:]}"
                    break
                time.sleep(0.1)
            if out.skipped or out.problem:
                break
            if keys:
                caller.press(keys, interval=0.1)
        else:
            out.reached = True
    finally:
        caller.leave()
    try:
        out.trace = worker.trace(room, timeout=20)
    except AssertionError as e:  # this case fails with it; the other calls' cases still report
        out.problem = f"{out.problem or 'the call was served'}; then the job did not end: {e}"
    out.seconds = time.monotonic() - started
    return out


@pytest.fixture(scope="module")
def hangups(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hangups]:
    trace_dir = tmp_path_factory.mktemp("hangup") / "traces"
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(REPO / "flows"), "--agent-name", AGENT,
            "--http-port", "0", "--max-calls", "30", "--trace-dir", str(trace_dir),
            "--default-flow", "acme-bank", "--log-level", "DEBUG"]
    proc = stack.start(argv, name="worker-hangup", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    worker = Worker(proc, trace_dir, AGENT, trace_timeout=20)
    try:
        proc.wait_for_log(rf"ivrkit worker registered agent_name={AGENT} flows={','.join(sorted(PATHS))}", 60)
        todo = [(flow, state) for flow, states in PATHS.items() for state in states]
        stamp = time.monotonic_ns() % 1_000_000
        with ThreadPoolExecutor(BATCH) as pool:
            futures = {case: pool.submit(_drive, stack, worker, *case, f"hangup-{case[0]}-{case[1]}-{stamp}")
                       for case in todo}
            results = {case: f.result() for case, f in futures.items()}
        assert "FFI Panic" not in proc.log_text(), "livekit's native client panicked (docs/deploy.md, joins)"
        time.sleep(1.0)  # anything a job leaks shows up in the log as it is torn down
        yield worker, results
    finally:
        proc.stop(timeout=15)


@pytest.mark.parametrize(("flow", "state"), CASES, ids=[f"{f}-{s}" for f, s in CASES])
def test_hang_up_in_state_ends_the_job_cleanly(hangups: Hangups, flow: str, state: str) -> None:
    worker, results = hangups
    assert {PIN, WRONG_PIN} <= TYPED_PINS  # the session-end sweep looks for both
    if (flow, state) in UNREACHABLE:
        pytest.skip(UNREACHABLE[(flow, state)])
    outcome = results[(flow, state)]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    trace = outcome.trace
    assert outcome.problem is None, outcome.problem
    assert outcome.reached
    kinds = [r["event"] for r in trace]
    assert kinds[-2:] == ["call_end", "job_end"] or (kinds[-1] == "job_end" and "call_end" in kinds), kinds[-8:]
    assert str(trace[-1]["reason"]).startswith(("caller left", "room disconnected", "the flow hung up")), trace[-1]
    errors = events(trace, "error")
    if (flow, state) not in ERROR_PATHS:
        assert not errors, errors
    assert not pins_in(trace_text(trace), (PIN, WRONG_PIN)), "a PIN reached the trace"
    log = worker.process.log_text()
    job_lines = [ln for ln in log.splitlines() if outcome.room in ln]
    assert any(" ended: " in ln for ln in job_lines), job_lines[-5:]
    bad = [ln for ln in job_lines if '"level": "ERROR"' in ln and (flow, state) not in ERROR_PATHS]
    assert not bad, bad
    assert not [ln for ln in log.splitlines() if LEAK.search(ln)], "a leak line in the worker log"
    assert not pins_in(log_text(log), (PIN, WRONG_PIN)), "a PIN reached the worker log"
    last = [r["state"] for r in events(trace, "state")][-1]
    print(f"{flow}/{state}: hung up in {last!r} after {outcome.seconds:.1f} s; ended: {trace[-1]['reason']}")


def test_every_state_of_every_example_flow_has_a_case() -> None:
    """A state added to an example flow (or a flow added to flows/) must get a key path here, or a
    written reason why no caller can reach it. Needs no stack."""
    from ivrkit.flow.loader import load_flow

    loaded = [load_flow(p, check_hooks=False) for p in sorted((REPO / "flows").glob("*.yaml"))]
    flows = {f.name: set(f.states) for f in loaded}
    assert set(flows) == set(PATHS), sorted(flows)
    for name, states in flows.items():
        assert {s for f, s in CASES if f == name} == states, name
