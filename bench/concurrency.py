"""Row 6: N simulated callers against ONE ivrkit worker on this 2-core machine, by executor.

    sudo .venv/bin/python bench/concurrency.py            # N = 1, 10, 25, 50, 100; thread and process
    sudo .venv/bin/python bench/concurrency.py --smoke    # N = 1, 2; a few presses

Needs root and the harness's livekit-server. Inside the harness's namespace: livekit-server,
one ivrkit worker (`--executor thread` or `process`, `--max-calls 1000` so the worker's load
limit never refuses a call) on the two-tone menu flow (bench/_tones.py), and caller
processes hosting N calls (bench/_latency_caller.py, 25 calls per process, 8 kHz, 20 ms
frames: cheaper to decode, 20 ms resolution), started 0.2 s apart (a burst of 5 calls/s), each pressing 1 `presses`
times with ~0.5 s of silence before each key (a brisk caller), after one untimed press.
Per N: latency key → first prompt audio (p50/p99 over all presses of all calls), failed presses
(no prompt within 5 s, or a call that never got its first prompt within 30 s), the worker's CPU
(all its processes, utime+stime over the run's wall time, in % of one core), its memory per call
(peak PSS of the worker's process tree during the run minus the idle worker's, / N), and the
callers' own CPU (they share the 2 cores — part of the load, not of the worker). Same-run
baselines: before N=1, one untimed call warms the worker up (lazy imports, first prompt syntheses), then
the idle worker's PSS and its CPU over 5 s are measured.
For each executor, N stops growing at the first N where p99 > 250 ms or any press fails: that N
is reported as the limit. The worker is restarted per executor, not per N.
Same-run baseline worker ("handwritten"): the minimal hand-written livekit-agents worker of row 5
(thread executor) under the same callers — what LiveKit's own media path costs per call, so
the ivrkit rows can be read as "engine on top of that". The smoke mode runs thread and process
only.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _report import Report, Summary, ms, parser, percentile, table
from _stack_run import (cpu_seconds, missing, pss_bytes, run_callers, stack_up, start_handwritten_worker,
                        start_ivrkit_worker, tree)
from _tones import flow_yaml, write_tones

LIMIT_P99_MS = 250.0
IDLE_S = 5.0
CALLS_PER_PROCESS = 25


class Sampler:
    """Peak PSS and process count of a process tree, sampled every `every` seconds."""

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


def _settle(pid: int, procs_idle: int, limit: float = 20.0) -> None:
    """Wait until the worker's jobs have ended (process count back to idle, or `limit`)."""
    end = time.monotonic() + limit
    time.sleep(2.0)
    while time.monotonic() < end and len(tree(pid)) > procs_idle:
        time.sleep(0.5)


def run_executor(st: Any, flow: Path, executor: str, ns: list[int], presses: int, report: Report,
                 rows: list[list[Any]], stagger: float) -> None:
    if executor == "handwritten":
        worker = start_handwritten_worker(st)
        agent = "handwritten-bench"
    else:
        worker = start_ivrkit_worker(st, flow, agent_name=f"ivrkit-{executor}", executor=executor,
                                     name=f"worker-{executor}")
        agent = f"ivrkit-{executor}"
    # one untimed call first: lazy imports and first prompt syntheses are not a per-call cost
    run_callers(st, agent, calls=1, presses=1, warmup=0, gap=0.3, tag=f"{executor}warm")
    _settle(worker.pid, 0, limit=5.0)
    time.sleep(2.0)  # idle job processes (process executor) come back up
    idle_pids = tree(worker.pid)
    idle_pss = pss_bytes(idle_pids)
    c0, t0 = cpu_seconds(idle_pids), time.monotonic()
    time.sleep(IDLE_S)  # the idle worker's own CPU: the same-run baseline for the CPU column
    idle_cpu_pct = 100 * (cpu_seconds(tree(worker.pid)) - c0) / (time.monotonic() - t0)
    limit_n = None
    try:
        for n in ns:
            pids_before = tree(worker.pid)
            cpu0 = cpu_seconds(pids_before)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            with Sampler(worker.pid) as sampler:
                run = run_callers(st, agent, calls=n, presses=presses, warmup=1, gap=0.5,
                                  tag=f"{executor}{n}", timeout=120 + 3 * n * presses, stagger=stagger,
                                  per_process=CALLS_PER_PROCESS, rate=8000, frame_ms=20)
            wall = time.monotonic() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            caller_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            worker_cpu = max(0.0, cpu_seconds(tree(worker.pid)) - cpu0)
            lat = run.latencies
            s = Summary.of(lat) if lat else None
            res: dict[str, Any] = {
                "executor": executor, "callers": n, "presses": len(lat), "failed": run.failures,
                "wrong_prompt": run.wrong_prompt,
                "p50_ms": ms(s.median) if s else None, "p99_ms": ms(s.p99) if s else None,
                "p95_ms": ms(percentile(lat, 95)) if lat else None,
                "max_ms": ms(s.maximum) if s else None,
                "worker_cpu_pct_of_one_core": 100 * worker_cpu / wall if wall else None,
                "worker_idle_cpu_pct": idle_cpu_pct,
                "callers_cpu_pct_of_one_core": 100 * caller_cpu / wall if wall else None,
                "worker_peak_pss_mb": sampler.peak / 2**20, "worker_idle_pss_mb": idle_pss / 2**20,
                "worker_peak_processes": sampler.peak_procs,
                "mem_per_call_mb": (sampler.peak - idle_pss) / n / 2**20,
                "wall_s": wall, "errors": run.errors[:5], "caller_crashes_at_exit": run.crashed_at_exit,
            }
            over = (s is None) or ms(s.p99) > LIMIT_P99_MS or run.failures > 0
            res["over_limit"] = over
            report.results.append(res)
            rows.append([executor, n, res["presses"], run.failures, res["p50_ms"], res["p95_ms"], res["p99_ms"], res["max_ms"],
                         res["worker_cpu_pct_of_one_core"], idle_cpu_pct, res["callers_cpu_pct_of_one_core"],
                         res["mem_per_call_mb"], res["worker_peak_processes"],
                         "p99 > 250 ms or failures" if over else ""])
            print(f"  {executor} N={n}: p99 {res['p99_ms'] or 0:.0f} ms, {run.failures} failed, wall {wall:.0f} s",
                  file=sys.stderr, flush=True)
            _settle(worker.pid, len(idle_pids))
            if over:
                limit_n = n
                break
    finally:
        worker.stop(timeout=15.0)
    report.results.append({"executor": executor, "limit_n": limit_n, "largest_n_tried": ns[-1],
                           "rule": f"first N with p99 > {LIMIT_P99_MS:.0f} ms or a failed press"})


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--callers", default="1,10,15,20,25,50,100")
    p.add_argument("--presses", type=int, default=16, help="measured presses per caller")
    p.add_argument("--stagger", type=float, default=0.2, help="seconds between call starts")
    p.add_argument("--executors", default="thread,process,handwritten",
                   help="thread / process: the ivrkit worker's executor; handwritten: the row-5 baseline worker")
    args = p.parse_args()
    ns = [1, 2] if args.smoke else [int(x) for x in args.callers.split(",")]
    executors = ["thread", "process"] if args.smoke else args.executors.split(",")
    presses = 2 if args.smoke else args.presses
    reason = missing()
    if reason:
        print(f"bench/concurrency.py cannot run here: {reason}", file=sys.stderr)
        return 2
    report = Report("concurrency", "Row 6: N simulated callers against one ivrkit worker, thread vs process executor")
    report.settings = {"callers": ns, "presses_per_caller": presses, "executors": executors,
                       "gap_s": 0.5, "stagger_s": args.stagger, "limit": f"p99 > {LIMIT_P99_MS:.0f} ms or failures"}
    report.print_header()
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="ivrkit-bench-flow-") as tmp:
        folder = Path(tmp)
        write_tones(folder)
        flow = folder / "bench-tones.yaml"
        flow.write_text(flow_yaml())
        folder.chmod(0o755)
        with stack_up("concurrency") as st:
            for executor in executors:
                run_executor(st, flow, executor, ns, presses, report, rows, args.stagger)
    report.show(table(["executor", "callers", "presses", "failed", "p50 ms", "p95 ms", "p99 ms", "max ms", "worker CPU % of 1 core",
                 "idle worker CPU %", "callers CPU %", "MB per call (PSS)", "worker processes", "limit"], rows))
    for r in report.results:
        if "limit_n" in r:
            print(f"{r['executor']}: " + (f"limit reached at N={r['limit_n']} ({r['rule']})" if r["limit_n"]
                                          else f"no limit up to N={r['largest_n_tried']}"))
    report.notes.append("the callers run on the same 2 cores as the worker and the server")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
