"""livekit-server restarted under a call in progress: what the caller and the worker live through.

The dev server keeps rooms in memory, so a restart loses the room: the call cannot survive it.
What must hold is that nothing hangs or leaks — the job ends (its trace gets `call_end` and
`job_end`), the worker reconnects and registers again by itself, and it serves the next call.
The test prints the measured times; docs/deploy.md ("When livekit-server restarts") quotes them.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from stack.process import LEAK
from stack.stack import Stack
from stack.testenv import tone_flows
from stack.worker import Worker, events

REPO = Path(__file__).resolve().parents[2]
AGENT = "ivrkit-e2e-restart"
MENU_HZ = 700.0
#: A menu that takes any key and asks again: the call stays in progress for as long as the test wants.
FLOW = """\
flow: e2e-restart
start: menu
defaults: {timeout: 30s, retries: 3}
states:
  menu:
    collect:
      prompt: {audio: tones/menu.wav}
      into: choice
      max_digits: 1
    next: menu
"""
REGISTERED = rf"ivrkit worker registered agent_name={AGENT} flows=e2e-restart"


def _start_worker(stack: Stack, base: Path) -> Worker:
    (base / "src").mkdir(parents=True)
    (base / "src" / "restart.yaml").write_text(FLOW)
    flows = tone_flows([base / "src" / "restart.yaml"], base / "flows", {"menu": (MENU_HZ, 1.0)})
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(flows), "--agent-name", AGENT,
            "--http-port", "0", "--trace-dir", str(base / "traces"), "--default-flow", "e2e-restart",
            "--log-level", "DEBUG"]
    proc = stack.start(argv, name="worker-restart", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    proc.wait_for_log(REGISTERED, 60)
    return Worker(proc, base / "traces", AGENT, trace_timeout=30)


def _registrations(worker: Worker) -> int:
    """How many times the worker registered: each registration has its own worker id."""
    return len(set(re.findall(REGISTERED + r" executor=\S+ id=(\S+)", worker.process.log_text())))


def test_a_server_restart_mid_call_ends_the_job_and_the_worker_serves_again(
        stack: Stack, tmp_path: Path, room_name: str) -> None:
    worker = _start_worker(stack, tmp_path)
    try:
        caller = stack.caller(room_name, "caller", agent_name=AGENT)
        caller.wait_for_tone(MENU_HZ, 20)
        caller.dtmf("1")  # the call is under way: a key went through (it cuts the menu, which plays again)
        caller.wait_for_tone(MENU_HZ, 10, ended=True)
        mark = caller.mark()
        began = time.monotonic()
        stopped_s, ready_s = stack.restart_server()
        back = time.monotonic() - began

        trace = worker.trace(room_name, timeout=60)  # waits for the job's last record, job_end
        job_ended = time.monotonic() - began
        line = worker.job_end(room_name)
        deadline = time.monotonic() + 60
        while _registrations(worker) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        registered = time.monotonic() - began
        assert _registrations(worker) >= 2, f"the worker did not register again:\n{worker.tail()}"
        seen = sorted({e.name for e in caller.events(since=mark)} - {"frame", "tone_start", "tone_end"})
        gone = caller.events("disconnected", since=mark)
        left = f"disconnected {gone[0].t - began:.1f} s after the stop began ({gone[0]['reason']})" if gone else \
            "still connected"
        print(f"\nserver restart: stopped in {stopped_s:.2f} s, answering again {ready_s:.2f} s later "
              f"({back:.2f} s down); job ended {job_ended:.1f} s after the stop began ({line}); "
              f"trace end {trace[-1]['reason']!r}; worker registered again after {registered:.1f} s; "
              f"caller: {left}, events {seen}")
        kinds = [r["event"] for r in trace]
        assert "call_end" in kinds and kinds[-1] == "job_end", kinds[-6:]
        assert [r["digit"] for r in events(trace, "key")] == ["1"]
        assert " ended: " in line and "failed" not in line, line

        # Only now: a room created while no worker is registered gets no agent, ever (the server
        # gives up on its dispatch after 5 s and does not retry; docs/deploy.md).
        again = stack.caller(room_name + "-after", "caller2", agent_name=AGENT)
        again.wait_for_tone(MENU_HZ, 30)  # the re-registered worker serves the next call
        again.dtmf("2")
        again.wait_for_tone(MENU_HZ, 10, ended=True)
        again.leave()
        caller.leave()
        after = worker.trace(room_name + "-after")
        assert [r["digit"] for r in events(after, "key")] == ["2"]
        time.sleep(1.0)  # anything a job leaks shows up in the log as it is torn down
        leaks = [ln for ln in worker.process.log_text().splitlines() if LEAK.search(ln)]
        assert not leaks, leaks
        assert worker.process.alive(), worker.tail()
    finally:
        worker.process.stop(timeout=15)
        if not stack.server.process.alive():  # leave the shared stack as later tests expect it
            stack.restart_server()
