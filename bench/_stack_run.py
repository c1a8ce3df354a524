"""The real stack for the real-server rows (5, 6, 10, 13 and the soak), through the project's harness (tests/stack).

Everything runs inside the harness's private network namespace: livekit-server on its test
address, the worker(s) under test and the simulated callers; nothing else is a target. Workers
and callers are started by PID through the harness and stopped by it; the namespace is deleted
at the end even when the bench fails.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "tests"))

CALLER = BENCH / "_latency_caller.py"
HANDWRITTEN = BENCH / "_handwritten_agent.py"
WORKER_ENV = {"LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0", "PYTHONUNBUFFERED": "1"}


def missing() -> str | None:
    """Why the real stack cannot run here, or None."""
    try:
        from stack.stack import missing_prerequisites
    except ImportError as exc:  # the harness is not in this checkout
        return f"the real-server harness (tests/stack) cannot be imported: {exc}"
    return missing_prerequisites()


@contextmanager
def stack_up(name: str) -> Iterator[Any]:
    from stack.stack import Stack

    base = Path(os.environ.get("IVRKIT_BENCH_LOGS", "/tmp/ivrkit-bench-logs"))
    base.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in old[:-9]:  # keep the logs of the last 10 runs
        shutil.rmtree(stale, ignore_errors=True)
    log_dir = base / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    log_dir.mkdir(parents=True, exist_ok=True)
    st = Stack.up(log_dir)
    print(f"stack: livekit-server {st.url} in netns {st.ns.name}, logs in {log_dir}", file=sys.stderr, flush=True)
    try:
        yield st
    finally:
        leftover = st.down()
        if leftover:
            print(f"stack: killed processes left in {st.ns.name}: {leftover}", file=sys.stderr)


def start_ivrkit_worker(st: Any, flow: Path, *, agent_name: str, executor: str, max_calls: int = 1000,
                        name: str = "ivrkit-worker", timeout: float = 90.0, extra: tuple[str, ...] = ()) -> Any:
    proc = st.start([sys.executable, "-m", "ivrkit.livekit.worker", "start", str(flow), "--agent-name", agent_name,
                     "--executor", executor, "--max-calls", str(max_calls), "--log-level", "WARN", "--http-port", "0",
                     *extra],
                    name=name, env={**st.env(), **WORKER_ENV}, cwd=REPO)
    proc.wait_for_log(r"ivrkit worker registered", timeout=timeout)
    return proc


def start_handwritten_worker(st: Any, timeout: float = 90.0, tone_seconds: float | None = None) -> Any:
    extra = [] if tone_seconds is None else ["--tone-seconds", str(tone_seconds)]
    proc = st.start([sys.executable, str(HANDWRITTEN), *extra], name="handwritten-worker",
                    env={**st.env(), **WORKER_ENV}, cwd=REPO)
    proc.wait_for_log(r"handwritten worker registered", timeout=timeout)
    return proc


@dataclass
class CallerRun:
    calls: list[dict[str, Any]]
    seconds: float
    stderr_tail: str
    crashed_at_exit: int = 0

    @property
    def latencies(self) -> list[float]:
        return [x for c in self.calls for x in c["latencies"]]

    @property
    def failures(self) -> int:
        return sum(c["failures"] for c in self.calls)

    @property
    def wrong_prompt(self) -> int:
        return sum(c["wrong_prompt"] for c in self.calls)

    @property
    def errors(self) -> list[str]:
        return [e for c in self.calls for e in c["errors"]]


def run_callers(st: Any, agent_name: str | list[str], *, calls: int, presses: int, warmup: int, tag: str,
                gap: float = 0.15, timeout: float = 600.0) -> CallerRun:
    """`calls` simulated callers in one caller process, each in its own room dispatching
    `agent_name` (or `agent_name[i]` for call i)."""
    stamp = f"{tag}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    agents = agent_name if isinstance(agent_name, list) else [agent_name] * calls
    tokens = [st.token(f"caller-{i}", f"bench-{stamp}-{i}", agent_name=agents[i]) for i in range(calls)]
    argv = [sys.executable, str(CALLER), "--url", st.url, "--presses", str(presses), "--warmup", str(warmup),
            "--gap", str(gap)]
    t0 = time.monotonic()
    done = st.run(argv, timeout=timeout, env={"LIVEKIT_TOKENS": json.dumps(tokens)})
    seconds = time.monotonic() - t0
    results = []
    finished = False
    for line in done.stdout.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "call":
            results.append(ev)
        elif ev.get("event") == "done":
            finished = True
    crashed_at_exit = 0
    if done.returncode != 0 and finished and len(results) == calls:
        # every result was printed; the process died in livekit's native teardown afterwards
        # (seen: a tokio panic "panic in a function that cannot unwind" at exit)
        crashed_at_exit = 1
    elif done.returncode != 0 or len(results) != calls:
        raise RuntimeError(f"the caller process exited {done.returncode} with {len(results)}/{calls} call "
                           f"results; stderr tail:\n{done.stderr[-3000:]}")
    return CallerRun(results, seconds, done.stderr[-1000:], crashed_at_exit)


# --- process-tree accounting (rows 6 and 13) ---------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of the processes, including that of their reaped children (cutime/cstime):
    a job process that ended during the run still counts, through the parent that reaped it."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        except OSError:
            continue
    return total


def pss_bytes(pids: list[int]) -> int:
    """Proportional set size of the processes (shared pages split between sharers)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class Sampler:
    """Peak PSS and process count of a process tree, sampled every `every` seconds (soak.py)."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid = pid
        self.every = every
        self.peak = 0
        self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = tree(self.pid)
            self.peak = max(self.peak, pss_bytes(pids))
            self.peak_procs = max(self.peak_procs, len(pids))
            self._stop.wait(self.every)
