"""The bundled worker end to end: a real livekit-server, the worker as a subprocess, real callers.

Every prompt of the test flow (tests/e2e/flows/worker.yaml) is a pre-recorded sine tone of its
own frequency, generated here with ivrkit.voice.audio; the Python test caller (tests/stack/caller.py)
reports which tones it hears and when, so each test asserts what a caller would hear — which
prompt, in which order, cut short or not — and then checks the call trace the worker wrote
(IVRKIT_TRACE_DIR) and the worker's log.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from stack.callers import CallerError, CallerProcess, Tone
from stack.process import LEAK
from stack.stack import CALLER_PY, Stack
from stack.testenv import log_text, pins_in, tone_flows, trace_text, unavailable
from stack.worker import Record, Worker, events

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).resolve().parent / "flows"
AGENT = "ivrkit-e2e"
RATE = 48000

#: prompt -> (frequency Hz, seconds); the flow's audio files are tones/<prompt>.wav
TONES: dict[str, tuple[float, float]] = {
    "main": (440, 2.5),
    "no_input": (550, 0.6),
    "no_match": (620, 0.6),
    "pin": (700, 1.5),
    "bad_pin": (780, 0.6),
    "ok": (860, 0.8),
    "sent": (1000, 0.8),
    "goodbye": (1150, 0.8),
}


def hz(name: str) -> float:
    return TONES[name][0]


def name_of(t: Tone) -> str:
    for name, (freq, _) in TONES.items():
        if t.matches(freq, 20.0):
            return name
    return f"?{t.freq}"


def _start_worker(stack: Stack, base: Path, executor: str, agent: str, mode: str = "start",
                  extra: Sequence[str] = ()) -> Worker:
    flows = tone_flows(FLOWS.glob("*.yaml"), base / "flows", TONES, RATE)
    trace_dir = base / "traces"
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", mode, str(flows), "--agent-name", agent,
            "--executor", executor, "--http-port", "0", "--max-calls", "25", "--trace-dir", str(trace_dir),
            "--log-level", "DEBUG", "--default-flow", "e2e-worker", "--route", "room:alt-*=e2e-alt", *extra]
    proc = stack.start(argv, name=f"worker-{mode}-{executor}", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    proc.wait_for_log(rf"ivrkit worker registered agent_name={agent} flows=e2e-alt,e2e-plugin,e2e-worker executor={executor}", 60)
    return Worker(proc, trace_dir, agent)


@pytest.fixture(scope="module")
def worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    base = tmp_path_factory.mktemp("worker")
    (base / "flows").mkdir()
    w = _start_worker(stack, base, "thread", AGENT)
    yield w
    w.process.stop(timeout=10)


def dial(stack: Stack, worker: Worker, room: str, identity: str = "caller") -> CallerProcess:
    """A caller joins `room`; its token dispatches the worker's agent to the new room."""
    return stack.caller(room, identity, agent_name=worker.agent_name)


def heard(caller: CallerProcess, since: int = 0) -> list[str]:
    """Names of the prompts heard so far, in order (finished segments only)."""
    return [name_of(t) for t in caller.tones(since) if t.freq is not None]


# --- the tests ---------------------------------------------------------------------------------


def test_menu_choice_and_pin_with_pound(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    main = caller.wait_for_tone(hz("main"), 20, ended=True)
    assert main.end is not None and main.end - main.start > TONES["main"][1] - 0.3, "menu prompt was cut short"
    caller.dtmf("1")
    caller.wait_for_tone(hz("pin"), 10, ended=True)
    caller.press("4321#", interval=0.15)
    caller.wait_for_tone(hz("ok"), 10, ended=True)
    caller.wait_for("disconnected", 10)  # pin_ok hangs up: the room is deleted
    assert heard(caller) == ["main", "pin", "ok"]

    trace = worker.trace(room_name)
    text = trace_text(trace)
    assert not pins_in(text, ["4321"]), f"the sensitive PIN reached the trace: {text}"
    assert [r["digit"] for r in events(trace, "key")] == ["1", "*", "*", "*", "*", "*"]
    collects = events(trace, "collect")
    assert collects and collects[-1]["reason"] == "terminator"
    assert not pins_in(log_text(worker.process.log_text()), ["4321"]), "the sensitive PIN reached the worker log"
    assert "ended" in worker.job_end(room_name)


def test_a_worker_trace_replays_against_its_flow(stack: Stack, worker: Worker, room_name: str) -> None:
    """`ivrkit replay`'s promise on a real call: the worker's trace file, replayed against the
    same flow on the virtual clock, matches — barge-in, a no-match, the PIN (given, since the
    trace masks it) — with prompts as long as the real audio was; a changed flow diverges."""
    import asyncio

    from ivrkit.testing import FlowTester

    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("main"), 20)
    time.sleep(1.0)
    caller.dtmf("9")  # barges in: no such choice
    caller.wait_for_tone(hz("no_match"), 10, ended=True)
    caller.wait_for_tone(hz("main"), 10, ended=True)
    caller.dtmf("1")
    caller.wait_for_tone(hz("pin"), 10, ended=True)
    caller.press("4321#", interval=0.15)
    caller.wait_for_tone(hz("ok"), 10, ended=True)
    caller.wait_for("disconnected", 10)
    trace = worker.trace(room_name)
    flow = worker.trace_dir.parent / "flows" / "worker.yaml" if worker.trace_dir else None
    assert flow is not None and flow.exists()

    result = asyncio.run(FlowTester.replay(trace, flow, pin="4321"))
    assert not result.diverged, result.report()
    assert "matches" in result.report() and "4321" not in result.report()
    changed = flow.with_name("worker-changed.yaml")  # beside it: its audio files are relative
    changed.write_text(flow.read_text().replace('options: {"1": pin,', 'options: {"1": desk,'))
    try:
        result = asyncio.run(FlowTester.replay(trace, changed, pin="4321"))
    finally:
        changed.unlink()
    assert result.divergence is not None and result.divergence.now is not None, result.report()
    assert result.divergence.now.text == "entered state 'desk'", result.report()


def test_a_slow_caller_hears_the_greeting_from_its_start(stack: Stack, worker: Worker, room_name: str) -> None:
    """A caller whose media takes 1.5 s to come up (it subscribes to the agent's audio late):
    the first prompt waits for its subscription instead of playing into nobody's ears."""
    caller = stack.caller(room_name, agent_name=worker.agent_name, subscribe_after=1.5)
    subscribing = caller.wait_for("subscribing", 10)
    main = caller.wait_for_tone(hz("main"), 20, ended=True)
    assert main.end is not None
    assert main.end - main.start > TONES["main"][1] - 0.15, \
        f"the greeting was heard for {main.end - main.start:.2f} s of {TONES['main'][1]} s: its start was lost"
    assert main.start >= subscribing.t, "the greeting was heard before the caller subscribed"
    caller.dtmf("1")
    caller.wait_for_tone(hz("pin"), 10)  # the call goes on as usual
    caller.leave()
    subscribed = events(worker.trace(room_name), "caller_subscribed")
    assert subscribed and subscribed[0]["after_ms"] >= 1000, subscribed


def test_barge_in_cuts_the_prompt_within_a_frame(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    start = caller.wait_for_tone(hz("main"), 20)
    time.sleep(0.8)
    sent = caller.dtmf("1")
    cut = caller.wait_for_tone(hz("main"), 10, ended=True)
    assert cut.end is not None
    heard_after_key = cut.end - sent.t
    assert cut.end - start.start < TONES["main"][1] - 1.0, "the menu prompt played on after the key"
    assert heard_after_key < 0.25, f"caller heard the prompt {heard_after_key * 1000:.0f} ms after pressing"
    caller.wait_for_tone(hz("pin"), 10)

    caller.leave()
    trace = worker.trace(room_name)
    barge = events(trace, "barge_in")
    assert barge and barge[0]["cut_ms"] is not None
    # In the worker: from the key event to the cleared playout queue, well under one 20 ms frame.
    assert barge[0]["cut_ms"] < 20.0, barge
    print(f"\nbarge-in: queue cleared {barge[0]['cut_ms']:.3f} ms after the key in the worker; "
          f"caller heard the prompt stop {heard_after_key * 1000:.0f} ms after sending the key")


def test_type_ahead_skips_to_the_collected_pin(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("main"), 20)
    caller.press("14321#", interval=0.05)  # menu choice and the whole PIN while the menu plays
    caller.wait_for_tone(hz("ok"), 10, ended=True)
    names = heard(caller)
    assert names[0] == "main" and names[-1] == "ok", names
    assert "no_match" not in names and "bad_pin" not in names and "no_input" not in names, names
    trace = worker.trace(room_name)
    assert [r["digit"] for r in events(trace, "key")] == ["1", "*", "*", "*", "*", "*"]


def test_inter_digit_timeout_ends_a_short_pin(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("main"), 20, ended=True)
    caller.dtmf("1")
    caller.wait_for_tone(hz("pin"), 10, ended=True)
    mark = caller.mark()
    caller.press("12", interval=0.1)  # too short; then silence past the 1 s inter-digit timeout
    caller.wait_for_tone(hz("bad_pin"), 10, since=mark, ended=True)
    caller.wait_for_tone(hz("pin"), 10, since=mark, ended=True)  # asked again
    caller.press("5678#", interval=0.1)
    caller.wait_for_tone(hz("ok"), 10, ended=True)
    trace = worker.trace(room_name)
    reasons = [r["reason"] for r in events(trace, "collect")]
    assert reasons[:1] == ["inter_digit_timeout"] and reasons[-1] == "terminator", reasons


def test_no_input_retries_then_the_exhaustion_path(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("goodbye"), 40, ended=True)
    caller.wait_for("disconnected", 10)
    prompts = heard(caller)
    names = [n for i, n in enumerate(prompts) if i == 0 or n != prompts[i - 1]]  # a tone split by jitter is one
    # retries: 2 — the menu, its no-input prompt and the menu again, then the exhaustion path
    assert names == ["main", "no_input", "main", "goodbye"], names
    trace = worker.trace(room_name)
    assert [r["count"] for r in events(trace, "no_input")] == [1, 2], [r["event"] for r in trace]
    assert [r["why"] for r in events(trace, "transition") if r["to"] == "goodbye"] == ["max retries (no_input)"]


def test_hangup_mid_collect_ends_the_job_cleanly(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("main"), 20)
    caller.dtmf("1")
    caller.wait_for_tone(hz("pin"), 10)
    caller.press("12", interval=0.1)
    caller.leave()
    line = worker.job_end(room_name)
    trace = worker.trace(room_name)
    assert events(trace, "call_end"), [r["event"] for r in trace]
    assert trace[-1]["reason"] in ("caller left", "room disconnected"), trace[-1]
    time.sleep(1.0)  # anything the job leaks shows up in the log as it is torn down
    job_log = [ln for ln in worker.process.log_text().splitlines() if room_name in ln or LEAK.search(ln)]
    assert not [ln for ln in job_log if '"level": "ERROR"' in ln or LEAK.search(ln)], job_log
    assert "failed" not in line, line


def _menu_ignored_the_keys(caller: CallerProcess, what: str) -> None:
    """The main menu played whole, went on waiting (no-input prompt), and still takes a key."""
    main = caller.wait_for_tone(hz("main"), 10, ended=True)
    assert main.end is not None and main.end - main.start > TONES["main"][1] - 0.3, f"{what} cut the prompt"
    caller.wait_for_tone(hz("no_input"), 10)
    caller.dtmf("1")
    caller.wait_for_tone(hz("pin"), 10)


def test_dtmf_from_another_participant_is_ignored(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("main"), 20)
    intruder = stack.caller(room_name, "intruder")
    # "2" would choose "send" if it counted. A key published in the first moments after joining
    # can be lost before the data channel is up, so press until the caller sees it delivered.
    mark = caller.mark()
    for _ in range(10):
        intruder.dtmf("2")
        try:
            caller.wait_for("dtmf", 1.0, since=mark, participant="intruder")
            break
        except CallerError:
            continue
    else:
        raise AssertionError("the intruder's key never reached the room")
    _menu_ignored_the_keys(caller, "the intruder's key")
    caller.leave()
    intruder.leave()
    trace = worker.trace(room_name)
    ignored = events(trace, "dtmf_ignored")
    assert ignored and {r["from"] for r in ignored} == {"intruder"}, ignored
    assert not any(r.get("to") == "send" for r in events(trace, "transition")), "intruder's key moved the call"
    assert "DTMF from participant 'intruder', not the caller 'caller': ignored" in worker.process.log_text()


def test_dtmf_whose_code_and_digit_disagree_is_dropped_never_guessed(stack: Stack, worker: Worker, room_name: str) -> None:
    """LiveKit forwards any (code, digit) pair a client publishes; the worker checks it against
    the RFC 4733 table. "2" sent with code 1 would move the menu to `send` (by digit) or `pin`
    (by code) if either half were trusted."""
    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("main"), 20)
    caller.dtmf("2", code=1)
    caller.dtmf("x", code=99)
    _menu_ignored_the_keys(caller, "a rejected key")
    caller.leave()
    trace = worker.trace(room_name)
    ignored = events(trace, "dtmf_ignored")
    assert [r["from"] for r in ignored] == ["caller", "caller"], ignored
    assert [r["digit"] for r in events(trace, "key")] == ["1"]
    assert worker.process.log_text().count("DTMF from the caller dropped") >= 2


#: What the flow's `send` state ("12#ABCD") must put on the wire, in order: (digit, RFC 4733 code).
SENT = [("1", 1), ("2", 2), ("#", 11), ("a", 12), ("b", 13), ("c", 14), ("d", 15)]


def test_send_dtmf_goes_out_in_order_with_lowercase_a_to_d(stack: Stack, worker: Worker, room_name: str) -> None:
    caller = dial(stack, worker, room_name)
    caller.wait_for_tone(hz("main"), 20, ended=True)
    mark = caller.mark()
    caller.dtmf("2")
    got = caller.wait_for_dtmf(len(SENT), 15, since=mark)
    assert [(d.digit, d.code) for d in got] == SENT
    assert all(d.participant and d.participant != "caller" for d in got), got
    gaps = [b.t - a.t for a, b in zip(got, got[1:])]
    assert all(g > 0.15 for g in gaps), f"keys not paced: {gaps}"
    caller.wait_for_tone(hz("sent"), 10, ended=True)
    trace = worker.trace(room_name)
    assert [(r["digit"], r["code"]) for r in events(trace, "dtmf_published")] == SENT


def test_process_executor_answers_a_call(stack: Stack, tmp_path: Path, room_name: str) -> None:
    (tmp_path / "flows").mkdir()
    pw = _start_worker(stack, tmp_path, "process", AGENT + "-proc")
    try:
        caller = stack.caller(room_name, "caller", agent_name=pw.agent_name)
        caller.wait_for_tone(hz("main"), 30)
        caller.dtmf("1")
        caller.wait_for_tone(hz("pin"), 10)
        caller.press("4321#", interval=0.1)
        caller.wait_for_tone(hz("ok"), 10, ended=True)
        assert "ended" in pw.job_end(room_name)
    finally:
        pw.process.stop(timeout=10)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_killed_worker_hangs_up_its_callers_and_a_new_one_serves(
        stack: Stack, tmp_path: Path, room_name: str, executor: str) -> None:
    """SIGKILL of the worker mid-call: its guard hangs the caller up at once (it sat 41 s in
    silence before) and starts a new worker that serves the next call."""
    (tmp_path / "flows").mkdir()
    agent = f"{AGENT}-guard-{executor}"
    gw = _start_worker(stack, tmp_path, executor, agent)
    try:
        caller = stack.caller(room_name, "caller", agent_name=agent)
        caller.wait_for_tone(hz("main"), 30)
        first = int(gw.process.wait_for_log(r"ivrkit guard: worker pid=(\d+) started").group(1))
        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        gone = caller.wait_for("disconnected", 15)
        hung_up_after = gone.t - killed
        gw.process.wait_for_log(rf"worker pid={first} killed by signal 9; hung up 1 call\(s\) it was serving: "
                                + re.escape(room_name), 10)
        print(f"caller hung up {hung_up_after:.2f} s after the worker was killed ({executor} executor)")
        assert hung_up_after < 3.0, f"the caller was hung up {hung_up_after:.1f} s after the worker died"
        gw.process.wait_for_log(rf"(?s)guard: worker pid=(?!{first}\b)\d+ started.*ivrkit worker registered agent_name={agent}", 60)
        again = stack.caller(room_name + "-again", "caller", agent_name=agent)
        again.wait_for_tone(hz("main"), 30)  # the new worker serves the next call
        again.leave()
    finally:
        gw.process.stop(timeout=15)


def test_a_killed_worker_s_room_is_closed_even_before_its_caller_arrived(
        stack: Stack, tmp_path: Path, room_name: str) -> None:
    """A job is in the guard's folder from its start, not from its flow's: a worker that dies
    while calls are still joining or waiting for their caller (an overload, a slow SIP leg) has
    its rooms deleted too, so a caller arriving late is hung up instead of meeting silence.
    Here the agent is dispatched to an empty room, as LiveKit's dispatch API does, and killed
    while it waits for a caller."""
    from livekit import api

    (tmp_path / "flows").mkdir()
    agent = f"{AGENT}-guard-early"
    guard = tmp_path / "guard"
    gw = _start_worker(stack, tmp_path, "thread", agent, extra=["--guard-dir", str(guard)])

    async def dispatch(lk: api.LiveKitAPI) -> None:
        await lk.room.create_room(api.CreateRoomRequest(name=room_name, empty_timeout=300))
        await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name=agent, room=room_name))

    async def rooms(lk: api.LiveKitAPI) -> list[str]:
        return [r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms]

    try:
        stack.api(dispatch)
        first = int(gw.process.wait_for_log(r"ivrkit guard: worker pid=(\d+) started").group(1))
        deadline = time.monotonic() + 30
        while not list(guard.rglob("*.call")) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the dispatched job has registered its room
        assert list(guard.rglob("*.call")), "the job never registered its room"
        os.kill(first, signal.SIGKILL)
        gw.process.wait_for_log(rf"worker pid={first} killed by signal 9; hung up 1 call\(s\) it was serving: "
                                + re.escape(room_name), 10)
        assert room_name not in stack.api(rooms), "the room of a call still waiting for its caller was left open"
    finally:
        gw.process.stop(timeout=15)


def test_past_max_calls_callers_hear_busy_then_are_refused(stack: Stack, tmp_path: Path, room_name: str) -> None:
    """--max-calls 2 --busy-calls 1 and five callers at once: exactly two are served, one hears
    the busy flow and is hung up, two are refused (no agent joins them)."""
    (tmp_path / "flows").mkdir()
    agent = f"{AGENT}-full"
    fw = _start_worker(stack, tmp_path, "thread", agent, extra=["--max-calls", "2", "--busy-calls", "1"])
    try:
        callers = [stack.caller(f"{room_name}-{i}", f"caller{i}", agent_name=agent) for i in range(5)]
        deadline = time.monotonic() + 20
        while not any(c.events("disconnected") for c in callers) and time.monotonic() < deadline:
            time.sleep(0.1)  # the busy caller hears about 3 s of speech, then is hung up
        hung_up = [c for c in callers if c.events("disconnected")]
        assert len(hung_up) == 1, [c.identity for c in hung_up]
        joined = [c for c in callers if c.events("participant_joined")]
        for c in joined:
            if c is not hung_up[0]:
                main = c.wait_for_tone(hz("main"), 10, ended=True)  # served: the 2.5 s menu prompt
                assert main.end is not None and main.end - main.start > 2.0
        served = [c for c in joined if c is not hung_up[0]]
        assert len(served) == 2, [c.identity for c in served]
        time.sleep(2.0)  # no agent comes late to the refused ones
        untouched = [c for c in callers if not c.events("participant_joined")]
        assert len(untouched) == 2, [c.identity for c in untouched]
        busy_room = f"{room_name}-{callers.index(hung_up[0])}"
        call = next(r for r in fw.trace(busy_room) if r["event"] == "call")
        assert call["flow"] == "busy", call
        for c in callers:
            c.leave()
    finally:
        fw.process.stop(timeout=15)


def test_sigterm_drains_the_call_in_progress_then_the_worker_exits(stack: Stack, tmp_path: Path, room_name: str) -> None:
    """SIGTERM to `ivrkit start` (its guard) mid-call: the call goes on to its own end, no new
    call is taken meanwhile, then the worker and its guard exit 0."""
    (tmp_path / "flows").mkdir()
    agent = f"{AGENT}-drain"
    dw = _start_worker(stack, tmp_path, "thread", agent)
    caller = stack.caller(room_name, "caller", agent_name=agent)
    caller.wait_for_tone(hz("main"), 30)
    os.kill(dw.process.pid, signal.SIGTERM)
    dw.process.wait_for_log(r"draining worker", 10)
    late = stack.caller(room_name + "-late", "late", agent_name=agent)
    caller.dtmf("1")
    caller.wait_for_tone(hz("pin"), 10)
    caller.press("4321#", interval=0.1)
    caller.wait_for_tone(hz("ok"), 10, ended=True)
    caller.wait_for("disconnected", 10)  # the call ended the way its flow says
    deadline = time.monotonic() + 20
    while dw.process.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not dw.process.alive(), "the worker did not exit after its last call"
    assert dw.process.returncode == 0, dw.process.log_tail()
    assert not late.events("participant_joined"), "a draining worker took a new call"
    assert "ended" in dw.job_end(room_name)
    late.leave()


#: A flow that takes any key for ever: 20-key entries, each followed by the next.
FLOOD_FLOW = """\
flow: e2e-flood
start: keys
defaults: {timeout: 20s, inter_digit_timeout: 10s, retries: 3, terminator: null}
states:
  keys:
    collect:
      prompt: {audio: tones/pin.wav}
      into: keys
      max_digits: 20
      pattern: "[0-9*#]+"
    next: keys
"""


def _flood_worker(stack: Stack, tmp_path: Path, agent: str, *extra: str, mode: str = "start") -> Worker:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "flood.yaml").write_text(FLOOD_FLOW)
    flows = tone_flows([tmp_path / "src" / "flood.yaml"], tmp_path / "flows", TONES, RATE)
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", mode, str(flows), "--agent-name", agent,
            "--http-port", "0", "--trace-dir", str(tmp_path / "traces"), "--default-flow", "e2e-flood", *extra]
    proc = stack.start(argv, name=f"worker-{agent}", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    proc.wait_for_log(rf"ivrkit worker registered agent_name={agent} flows=e2e-flood", 60)
    return Worker(proc, tmp_path / "traces", agent)


def _keys_recorded(worker: Worker, room: str) -> str:
    return "".join(r["digit"] for r in events(worker.trace(room), "key"))


#: How soon a call must end once its worker's shutdown reaches the job: the call stops its
#: prompt and timers, leaves the room and deletes it — two server round trips, each bounded
#: by the call's END_ACTION_LIMIT (5 s). livekit-agents alone held such a call 15 s, then
#: cancelled it without hanging up.
STOP_BOUND = 5.0


def _disconnect_reason(event: Any) -> str:
    """The caller's `disconnected` reason by name (the Python SDK gives its enum number)."""
    from livekit import rtc

    raw = str(event.get("reason"))
    return rtc.DisconnectReason.Name(int(raw)) if raw.isdigit() else raw


def _stopped_cleanly(worker: Worker, room: str, levels: str) -> list[Record]:
    """The call in `room` ended as stopped by the worker, its trace saying so, nothing logged
    at ERROR and nothing leaked; returns its trace."""
    trace = worker.trace(room)
    assert [r["ended_by"] for r in events(trace, "call_end")] == ["stopped"], trace[-3:]
    assert events(trace, "call_end")[0]["reason"] == "the worker stopped"
    assert trace[-1]["event"] == "job_end" and trace[-1]["reason"] == "the worker stopped", trace[-1]
    assert "ended: flow 'e2e-flood' ended: stopped, the worker stopped" in worker.job_end(room)
    bad = [ln for ln in worker.process.log_text().splitlines() if re.search(levels, ln) or LEAK.search(ln)]
    assert not bad, bad
    return trace


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm-no-reload"])
def test_stopping_ivrkit_dev_stops_the_live_call_at_once(stack: Stack, tmp_path: Path, room_name: str, how: str) -> None:
    """`ivrkit dev` (no drain) stopped mid-call — by Ctrl-C in its terminal (SIGINT to the whole
    process group: the reloading parent and its worker), or by SIGTERM to a `--no-reload` worker
    as a test harness stops it: the call ends at once — hung up (its room deleted), its trace
    ending `stopped` / "the worker stopped" — and the worker exits 0, instead of the call running
    on in silence until livekit-agents cancels it 15 s later, or the worker dying on the spot
    (the terminal's signal plus the parent's own made two: livekit-agents' "exit now")."""
    extra = ("--no-reload",) if how == "sigterm-no-reload" else ()
    fw = _flood_worker(stack, tmp_path, f"{AGENT}-devstop-{how}", *extra, mode="dev")
    caller = stack.caller(room_name, "caller", agent_name=fw.agent_name)
    caller.wait_for_tone(hz("pin"), 30)
    caller.press("12", interval=0.1)  # a key entry in progress
    stop = time.monotonic()
    if how == "ctrl-c":
        os.killpg(fw.process.pid, signal.SIGINT)  # the harness started it as a process group leader
    else:
        os.kill(fw.process.pid, signal.SIGTERM)
    gone = caller.wait_for("disconnected", STOP_BOUND)
    hung_up = time.monotonic() - stop
    assert _disconnect_reason(gone) == "ROOM_DELETED", gone
    fw.process.popen.wait(STOP_BOUND)
    exited = time.monotonic() - stop
    assert fw.process.returncode == 0, fw.process.log_tail()
    trace = _stopped_cleanly(fw, room_name, r"(?:\x1b\[[\d;]*m|\s)(?:ERROR|CRITICAL)(?:\x1b|\s)")  # colored dev log
    assert "".join(r["digit"] for r in events(trace, "key")) == "12"
    print(f"\ndev, {how} mid-call: caller hung up {hung_up:.2f} s after the signal, worker exited after {exited:.2f} s")


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_past_the_drain_timeout_start_stops_its_calls_then_exits(stack: Stack, tmp_path: Path, room_name: str,
                                                                executor: str) -> None:
    """SIGTERM to `ivrkit start --drain-timeout 3` mid-call: the call goes on through the drain
    (its keys still count), and once the 3 s are over it is stopped — hung up, its trace ending
    "the worker stopped" — and the worker and its guard exit 0. Either executor: a job process
    learns of the shutdown the same way as a job thread."""
    drain = 3
    fw = _flood_worker(stack, tmp_path, f"{AGENT}-drainstop-{executor}", "--drain-timeout", str(drain),
                       "--executor", executor)
    caller = stack.caller(room_name, "caller", agent_name=fw.agent_name)
    caller.wait_for_tone(hz("pin"), 30)
    term = time.monotonic()
    os.kill(fw.process.pid, signal.SIGTERM)
    fw.process.wait_for_log(r"draining worker", 10)
    caller.press("34", interval=0.1)  # the call is still served while the worker drains
    gone = caller.wait_for("disconnected", drain + STOP_BOUND)
    hung_up = time.monotonic() - term
    assert hung_up >= drain, f"the call was stopped {hung_up:.2f} s after SIGTERM, before the drain timeout"
    assert _disconnect_reason(gone) == "ROOM_DELETED", gone
    fw.process.popen.wait(STOP_BOUND)
    exited = time.monotonic() - term
    assert fw.process.returncode == 0, fw.process.log_tail()
    fw.process.wait_for_log(r"drain timed out, forcing shutdown", 1)
    trace = _stopped_cleanly(fw, room_name, r'"level": "ERROR"')
    assert "".join(r["digit"] for r in events(trace, "key")) == "34"
    print(f"\nstart --drain-timeout {drain} ({executor}): caller hung up {hung_up:.2f} s after SIGTERM, "
          f"worker exited after {exited:.2f} s")


def test_a_flood_of_keys_is_accounted_for_key_by_key(stack: Stack, tmp_path: Path, room_name: str) -> None:
    """One caller pressing about 100 keys a second for ten seconds: every key reaches the call,
    exactly once, in the order pressed (the worker's trace file), none lost, none invented."""
    fw = _flood_worker(stack, tmp_path, f"{AGENT}-flood")
    try:
        caller = stack.caller(room_name, "caller", agent_name=fw.agent_name)
        caller.wait_for_tone(hz("pin"), 20)
        keys = ("1234567890*#" * 100)[:1000]
        started = time.monotonic()
        caller.press(keys, interval=0.008)
        rate = len(keys) / (time.monotonic() - started)
        print(f"flood: {len(keys)} keys at {rate:.0f} keys/s")
        time.sleep(1.0)
        caller.leave()
        recorded = _keys_recorded(fw, room_name)
        assert recorded == keys, (f"{len(keys)} keys sent, {len(recorded)} recorded; "
                                  f"first difference at {next((i for i, (a, b) in enumerate(zip(keys, recorded)) if a != b), min(len(keys), len(recorded)))}")
        assert rate > 60, f"the caller sent only {rate:.0f} keys/s"
        collects = events(fw.trace(room_name), "collect")
        assert "".join(c["digits"] for c in collects if c["reason"] == "max_digits") == keys[: 20 * (len(keys) // 20)]
    finally:
        fw.process.stop(timeout=15)


def test_callers_at_capacity_pressing_at_once_lose_no_key(stack: Stack, tmp_path: Path, room_name: str) -> None:
    """As many callers as the worker takes (--max-calls 10), all pressing keys at once (10 keys/s
    each, 100 keys): every caller's keys reach its own call, exactly once, in order."""
    import threading

    fw = _flood_worker(stack, tmp_path, f"{AGENT}-crowd", "--max-calls", "10", "--busy-calls", "0")
    try:
        callers = [stack.caller(f"{room_name}-{i}", f"caller{i}", agent_name=fw.agent_name) for i in range(10)]
        for c in callers:
            c.wait_for_tone(hz("pin"), 30)
        keys = [("0123456789*#"[i:] + "0123456789*#"[:i]) * 9 for i in range(10)]  # 108 keys, each caller its own order
        errors: list[BaseException] = []

        def press(c: CallerProcess, k: str) -> None:
            try:
                c.press(k, interval=0.1)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=press, args=(c, k)) for c, k in zip(callers, keys)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        time.sleep(1.0)
        for c in callers:
            c.leave()
        lost = {i: (len(keys[i]), len(got)) for i in range(10) if (got := _keys_recorded(fw, f"{room_name}-{i}")) != keys[i]}
        assert not lost, f"caller: (sent, recorded) where they differ: {lost}"
    finally:
        fw.process.stop(timeout=15)


def _heard_speech_then(caller: CallerProcess, freq: float) -> None:
    """Speech (the offline voice), then the tone `freq`. Speech is told from a test tone by its
    shape: several segments, some not pure or at different pitches. (A sustained eSpeak vowel
    can look like a pure tone on its own, so no single segment decides.)"""
    caller.wait_for_tone(freq, 20, ended=True)
    heard = [(e["kind"], e.get("freq"), e.get("duration")) for e in caller.events("tone_end")]
    target = next(i for i, (kind, f, _) in enumerate(heard) if kind == "tone" and f is not None and abs(f - freq) < 20)
    before = heard[:target]
    pitches = {round(f / 50) for kind, f, _ in before if kind == "tone" and f is not None}
    speech = len(before) >= 2 and (any(kind == "sound" for kind, _, _ in before) or len(pitches) >= 2)
    assert speech, f"expected speech before the {freq:g} Hz tone, heard {heard}"


def test_dispatch_metadata_routes_to_another_flow_spoken_offline(stack: Stack, worker: Worker, room_name: str) -> None:
    token = stack.token("caller", room_name, agent_name=worker.agent_name, agent_metadata='{"flow": "e2e-alt"}')
    caller = stack._caller([sys.executable, str(CALLER_PY), "--url", stack.url], token, "caller", room_name, 20.0)
    _heard_speech_then(caller, hz("sent"))
    caller.wait_for("disconnected", 10)
    assert f"call in room '{room_name}': caller 'caller' (non-SIP) -> flow 'e2e-alt' (dispatch metadata)" in worker.process.log_text()


def test_a_flow_that_names_a_tts_plugin_speaks_through_it(stack: Stack, worker: Worker, room_name: str) -> None:
    token = stack.token("caller", room_name, agent_name=worker.agent_name, agent_metadata='{"flow": "e2e-plugin"}')
    caller = stack._caller([sys.executable, str(CALLER_PY), "--url", stack.url], token, "caller", room_name, 20.0)
    _heard_speech_then(caller, hz("sent"))
    assert "ended: flow 'e2e-plugin' ended: hangup" in worker.job_end(room_name)
    log = worker.process.log_text()
    assert "could not be created" not in log and "failed on prompt" not in log  # the plugin spoke, no stand-in


def test_room_name_routes_to_another_flow(stack: Stack, worker: Worker, room_name: str) -> None:
    room = "alt-" + room_name
    caller = dial(stack, worker, room)
    _heard_speech_then(caller, hz("sent"))
    assert "-> flow 'e2e-alt' (route room:alt-*=e2e-alt)" in worker.process.log_text()


def test_dev_mode_restarts_on_a_flow_change_and_keeps_serving_on_a_broken_one(
    stack: Stack, tmp_path: Path, room_name: str
) -> None:
    (tmp_path / "flows").mkdir()
    dev = _start_worker(stack, tmp_path, "thread", AGENT + "-dev", mode="dev")
    try:
        dev.process.wait_for_log(r"ivrkit dev: watching", 30)  # edits from here on are seen
        flow = tmp_path / "flows" / "worker.yaml"
        flow.write_text(flow.read_text().replace("tones/main.wav", "tones/no_match.wav", 1))
        dev.process.wait_for_log(r"(?s)restarting the worker.*ivrkit worker registered", 60)
        flow.write_text(flow.read_text().replace("start: main", "start: mian"))
        dev.process.wait_for_log(r"not restarting: the flows above have errors", 60)
        assert "start state 'mian' is not defined" in dev.process.log_text()
        caller = stack.caller(room_name, "caller", agent_name=dev.agent_name)
        caller.wait_for_tone(hz("no_match"), 30)  # the edited, valid flow answers
        # A hook folder outside the flows folder, named by an edit, is watched after the restart.
        hooks = tmp_path / "more_hooks"
        hooks.mkdir()
        (hooks / "dev_hooks_e2e.py").write_text("def noop(ctx):\n    return None\n")
        flow.write_text(flow.read_text().replace("start: mian", "start: main").replace(
            "flow: e2e-worker", "flow: e2e-worker\npython_path: [../more_hooks]\nhooks: {call_end: dev_hooks_e2e:noop}"))
        dev.process.wait_for_log(rf"(?s)restarting the worker.*watching [^\n]*{hooks}", 60)
        (hooks / "dev_hooks_e2e.py").write_text("def noop(ctx):\n    return {}\n")
        dev.process.wait_for_log(r"changed dev_hooks_e2e\.py; checking flows", 30)
    finally:
        dev.process.stop(timeout=15)


def test_a_tts_plugin_that_cannot_be_created_leaves_the_call_on_the_offline_voice(
    stack: Stack, tmp_path: Path, room_name: str
) -> None:
    """The factory raises on every call (as a plugin missing its API key does; being callable,
    it passed the startup check): the caller still hears the flow, spoken offline."""
    (tmp_path / "flows").mkdir()
    broken = _start_worker(stack, tmp_path, "thread", AGENT + "-broken-tts", extra=["--tts", "json:loads"])
    try:
        token = stack.token("caller", room_name, agent_name=broken.agent_name, agent_metadata='{"flow": "e2e-alt"}')
        caller = stack._caller([sys.executable, str(CALLER_PY), "--url", stack.url], token, "caller", room_name, 20.0)
        _heard_speech_then(caller, hz("sent"))
        assert "ended: flow 'e2e-alt' ended: hangup" in broken.job_end(room_name)
        log = broken.process.log_text()
        assert "TTS json:loads could not be created (TypeError: " in log
        assert "this call's prompts use the offline voice" in log
    finally:
        broken.process.stop(timeout=10)


def test_concurrent_calls_share_one_machine_without_crosstalk(stack: Stack, worker: Worker, room_name: str) -> None:
    """Four calls at once on the thread executor: one FlowMachine, four job threads/loops."""
    rooms = [f"{room_name}-{i}" for i in range(4)]
    callers = [dial(stack, worker, room, f"caller{i}") for i, room in enumerate(rooms)]
    for c in callers:
        c.wait_for_tone(hz("main"), 20)
    for i, c in enumerate(callers):  # odd callers choose the PIN, even ones send DTMF
        c.dtmf("1" if i % 2 else "2")
    for i, c in enumerate(callers):
        if i % 2:
            c.wait_for_tone(hz("pin"), 15)
            c.press(f"{i}{i}{i}{i}#", interval=0.1)
            c.wait_for_tone(hz("ok"), 15, ended=True)
        else:
            c.wait_for_tone(hz("sent"), 15, ended=True)
    for i, room in enumerate(rooms):
        trace = worker.trace(room)
        keys = [r["digit"] for r in events(trace, "key")]
        assert keys == (["1", "*", "*", "*", "*", "*"] if i % 2 else ["2"]), (room, keys)
        assert [r["event"] for r in trace][-1] == "job_end"


# --- a real phone: SIPp -> LiveKit SIP -> the worker ---------------------------------------------

SIP_NUMBER = "+15550001"


@pytest.fixture(scope="module")
def sip_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Worker]]:
    """The SIP stack (its own namespace: Redis, server, LiveKit SIP), a worker on it, and an
    inbound trunk + dispatch rule that sends calls to +15550001 to the worker's agent."""
    from stack.sip import create_dispatch_rule, create_inbound_trunk, sip_stack_missing
    from stack.sip_stack import SipStack

    reason = sip_stack_missing()
    if reason:
        unavailable(reason)
    base = tmp_path_factory.mktemp("sip-worker")
    sip = SipStack.up(base / "logs")
    try:
        (base / "flows").mkdir()
        w = _start_worker(sip.stack, base, "thread", AGENT + "-sip")
        trunk = sip.api(lambda lk: create_inbound_trunk(lk, [SIP_NUMBER], allowed_addresses=[f"{sip.ns.address}/32"]))
        sip.api(lambda lk: create_dispatch_rule(lk, [trunk], agent_name=w.agent_name, room_prefix="call-"))
        yield sip, w
    finally:
        sip.down()


def _heard_on_phone(result: Any) -> list[str]:
    from stack.rtp_analysis import detect_tones, tone_sequence

    samples, times = result.recording.audio()
    freqs = [f for f, _ in TONES.values()]
    by_freq = {f: name for name, (f, _) in TONES.items()}
    return [by_freq[f] for f in tone_sequence(detect_tones(samples, times, freqs))]


def test_sip_call_menu_and_pin_with_rfc4733_keys(sip_worker: tuple[Any, Worker], tmp_path: Path) -> None:
    sip, worker = sip_worker
    phone = sip.phone(SIP_NUMBER, tmp_path, caller="+15550111", keys=[(3.5, "1"), (6.0, "4321#")],
                      hold=20.0, hangup="far")
    result = phone.wait()
    assert result.answered and result.bye_from == "far", sip.explain(result)  # the flow hung up
    assert _heard_on_phone(result) == ["main", "pin", "ok"], sip.explain(result)
    trace = worker.call_trace("+15550111", pattern="call-*.jsonl")
    call = trace[0]
    assert call["sip"] is True and call["caller_info"]["called_number"] == SIP_NUMBER
    assert call["caller_info"]["call_id"], call
    assert [r["digit"] for r in events(trace, "key")] == ["1", "*", "*", "*", "*", "*"]


def test_a_second_sigterm_during_the_drain_ends_the_worker_and_the_guard_hangs_up(
    stack: Stack, tmp_path: Path, room_name: str
) -> None:
    """SIGTERM twice to `ivrkit start` mid-call: the first drains, the second is livekit-agents'
    "exit now" (the worker leaves at once, no clean stop of its call) — so the guard hangs up the
    call the worker left registered, instead of leaving the caller in silence."""
    fw = _flood_worker(stack, tmp_path, f"{AGENT}-forced")
    caller = stack.caller(room_name, "caller", agent_name=fw.agent_name)
    caller.wait_for_tone(hz("pin"), 30)
    os.kill(fw.process.pid, signal.SIGTERM)
    fw.process.wait_for_log(r"draining worker", 10)
    forced = time.monotonic()
    os.kill(fw.process.pid, signal.SIGTERM)
    gone = caller.wait_for("disconnected", STOP_BOUND)
    hung_up = time.monotonic() - forced
    assert _disconnect_reason(gone) == "ROOM_DELETED", gone
    fw.process.popen.wait(STOP_BOUND)
    fw.process.wait_for_log(rf"stopped with 1 call\(s\) in progress; hung them up: {re.escape(room_name)}", 1)
    assert fw.process.returncode == 1, fw.process.log_tail()  # livekit-agents' forced exit
    print(f"\nstart, second SIGTERM mid-drain: the guard hung the caller up {hung_up:.2f} s after it")
