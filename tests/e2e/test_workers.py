"""`ivrkit start --workers 2`: two worker processes under one guard, on the real livekit-server.

Why several: one interpreter tops out near 1.2 cores (bench rows 6 and 13), so a host uses
every core only with several worker processes. Each registers with LiveKit and reports its
own load, so LiveKit's dispatcher spreads the calls; each has its own calls folder, so the
guard hangs up only a dead worker's calls and restarts only it; SIGTERM drains them all.
Callers: the Go caller (tests/e2e/goclient), which joins, publishes a microphone and presses keys.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack.callers import CallerProcess
from stack.process import NsProcess
from stack.stack import Stack
from stack.testenv import tone_flows
from stack.worker import events, json_object, log_records

REPO = Path(__file__).resolve().parents[2]
AGENT = "ivrkit-e2e-workers"
FLOW = """\
flow: e2e-workers
start: main
defaults: {timeout: 60s, retries: 1}
states:
  main:
    menu:
      prompt: {audio: tones/main.wav}
      options: {"1": done}
      on_max_retries: done
  done:
    say: {audio: tones/done.wav}
    hangup: true
"""
STARTED = re.compile(r"ivrkit guard: worker( \d+)? pid=(\d+) started")


class Pair:
    def __init__(self, proc: NsProcess, trace_dir: Path) -> None:
        self.proc = proc
        self.trace_dir = trace_dir

    def started(self) -> list[tuple[int, int]]:
        """(worker number, pid) of every worker the guard started, in order."""
        return [(int(m.group(1) or 0), int(m.group(2))) for m in STARTED.finditer(self.proc.log_text())]

    def registered(self) -> int:
        return self.proc.log_text().count(f"ivrkit worker registered agent_name={AGENT} ")

    def wait_registered(self, times: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.registered() < times:
            assert time.monotonic() < deadline and self.proc.alive(), self.proc.log_tail()
            time.sleep(0.1)

    def served_by(self, room: str) -> int | None:
        """The pid of the worker whose job started the call in `room` (an offer a full worker
        refused shows in its log too: the job's own first line is the one that counts)."""
        for r in log_records(self.proc.log_text()):
            if str(r.get("message", "")).startswith(f"call in room '{room}': ") and "pid" in r:
                return int(r["pid"])
        return None

    def in_state(self, room: str, state: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for path in self.trace_dir.glob(f"{room}--*.jsonl"):
                trace = [r for line in path.read_text().splitlines() if (r := json_object(line)) is not None]
                if any(r.get("state") == state for r in events(trace, "state")):
                    return
            assert time.monotonic() < deadline, f"{room} never reached {state!r}:\n{self.proc.log_tail()}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def pair(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("workers")
    (base / "src").mkdir()
    (base / "src" / "workers.yaml").write_text(FLOW)
    flows = tone_flows([base / "src" / "workers.yaml"], base / "flows", {"main": (440.0, 4.0), "done": (660.0, 0.4)})
    trace_dir = base / "traces"
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(flows), "--agent-name", AGENT,
            "--workers", "2", "--max-calls", "2", "--busy-calls", "0", "--http-port", "0", "--trace-dir", str(trace_dir),
            "--default-flow", "e2e-workers", "--log-level", "INFO", "--guard-dir", str(base / "calls")]
    proc = stack.start(argv, name="workers-guard", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    p = Pair(proc, trace_dir)
    try:
        p.wait_registered(2)
        yield p
    finally:
        proc.stop(timeout=15)


def test_calls_spread_over_both_workers_and_only_a_dead_one_s_calls_are_hung_up(stack: Stack, pair: Pair) -> None:
    (n0, pid0), (n1, pid1) = pair.started()[:2]
    assert (n0, n1) == (0, 1) and pid0 != pid1, pair.started()
    stamp = time.monotonic_ns() % 1_000_000
    rooms = [f"workers-{stamp}-{i}" for i in range(4)]
    callers: dict[str, CallerProcess] = {}
    for room in rooms:
        callers[room] = stack.go_caller(room, room, agent_name=AGENT, timeout=30)
    for room in rooms:
        pair.in_state(room, "main")
    served: dict[str, int] = {}
    for room in rooms:
        pid = pair.served_by(room)
        assert pid is not None, f"no job for {room} in the log"
        served[room] = pid
    print(f"\n--workers 2 --max-calls 2: 4 calls served by pids {sorted(served.values())} (workers {pid0}, {pid1})")
    assert sorted(served.values()) == sorted([pid0, pid0, pid1, pid1]), served  # both serve, none above 2
    # SIGKILL worker 1: the guard hangs up its two callers, worker 0's go on, worker 1 comes back
    registrations = pair.registered()
    killed_at = time.monotonic()
    os.kill(pid1, signal.SIGKILL)
    for room in [r for r in rooms if served[r] == pid1]:
        callers[room].wait_for("disconnected", 10)
    hung = time.monotonic() - killed_at
    pair.proc.wait_for_log(rf"ivrkit guard: worker 1 pid={pid1} killed by signal 9; hung up 2 call\(s\)", 10)
    pair.wait_registered(registrations + 1)  # the new worker 1
    new = pair.started()[-1]
    assert new[0] == 1 and new[1] not in (pid0, pid1), pair.started()
    for room in [r for r in rooms if served[r] == pid0]:  # untouched by the kill: the flow ends them
        assert not callers[room].events("disconnected"), f"{room} of worker 0 was cut by worker 1's death"
        callers[room].dtmf("1")
        callers[room].wait_for("disconnected", 20)
        trace = next(pair.trace_dir.glob(f"{room}--*.jsonl")).read_text()
        assert '"state": "done"' in trace, trace[-2000:]
    print(f"worker 1 killed: its callers hung up within {hung:.2f} s; worker 0's calls ran to their end; "
          f"worker 1 back as pid {new[1]}")


def test_sigterm_drains_every_worker_and_the_guard_exits_0(pair: Pair) -> None:
    pids = {pid for _, pid in pair.started()}
    pair.proc.popen.send_signal(signal.SIGTERM)
    code = pair.proc.popen.wait(timeout=30)
    assert code == 0, pair.proc.log_tail()
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    assert alive == [], f"workers left running: {alive}"
