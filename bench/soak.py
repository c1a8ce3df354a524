"""Soak: many calls with random key sequences through the real server into one ivrkit worker.

    sudo .venv/bin/python bench/soak.py            # 1,000 calls, 25 at a time
    sudo .venv/bin/python bench/soak.py --smoke    # 20 calls, 10 at a time

Needs root and the harness's livekit-server (like rows 5 and 6). Inside the harness's namespace:
one ivrkit worker (thread executor, `--max-calls 1000`, `--trace-dir`) on a flow that takes any
key for ever (collects of up to 20 keys, each followed by the next: the flood flow of
tests/e2e/test_worker.py), and soak callers (bench/_soak_caller.py) in batches of `--batch`
calls, one caller process per batch; each call presses 1-15 random keys of 0-9 * # 0.1 s apart
(seeded: `--seed`; `--keys` and `--gap` change both), then leaves. Issue 10's overload,
20 callers pressing 20 keys a second: `--calls 40 --batch 20 --keys 100 --gap 0.05`.

Reported, and the exit code is 1 unless lost keys and leak lines are zero:
- lost keys: for every call, the keys it sent against the `key` records of its trace file; a key
  missing, added or out of order counts (an edit distance), so does a call with no trace;
- leaks: lines of the worker's log matching the e2e suite's leak pattern (tests/stack/process.py:
  "Task was destroyed but it is pending", "was never awaited", "Unclosed", ...); beside them,
  threads the worker's process tree holds after the soak beyond its idle count (the thread
  executor runs each job on a thread of its own: a job that never ended would keep one).
Also the worker's memory over the soak, sampled after each batch once its jobs ended: PSS and
RSS of its process tree beside the idle worker's (the same-run baseline, measured after one
warm-up call), and the growth per call from the first checkpoint to the last.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from _report import Report, parser, table
from _stack_run import Sampler, missing, pss_bytes, stack_up, start_ivrkit_worker, tree
from _tones import tone_pcm

BENCH = Path(__file__).resolve().parent
SOAK_CALLER = BENCH / "_soak_caller.py"
AGENT = "ivrkit-soak"
KEYS = "0123456789*#"
FLOW = """\
flow: soak
start: keys
defaults: {timeout: 20s, inter_digit_timeout: 10s, retries: 3, terminator: null}
states:
  keys:
    collect:
      prompt: {audio: tone.wav}
      into: keys
      max_digits: 20
      pattern: "[0-9*#]+"
    next: keys
"""


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total


def threads(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        except (OSError, StopIteration):
            continue
    return total


def edit_distance(a: str, b: str) -> int:
    """Keys lost, added or moved between what was sent (`a`) and what the trace holds (`b`)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def recorded_keys(trace_dir: Path, room: str, timeout: float) -> str | None:
    """The keys in the call's finished trace (its last record is job_end); None if there is none."""
    deadline = time.monotonic() + timeout
    while True:
        for path in trace_dir.glob(f"{room}--*.jsonl"):
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if records and records[-1]["event"] == "job_end":
                return "".join(r["digit"] for r in records if r["event"] == "key")
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def keep_traces(trace_dir: Path, room: str, log_dir: Path) -> list[str]:
    """Copies of a mismatched call's traces beside the run's logs (the trace folder is temporary):
    what the worker recorded is the first thing to read about a lost key."""
    kept = []
    for path in trace_dir.glob(f"{room}--*.jsonl"):
        shutil.copy(path, log_dir / path.name)
        kept.append(str(log_dir / path.name))
    return kept


def run_go_batch(st: Any, rooms: list[str], keys: list[str], gap: float) -> list[dict[str, Any]]:
    """The same calls from Go callers (tests/e2e/goclient, server-sdk-go), one process each, not
    the Python SDK's many rooms in one process: tells a loss in ivrkit from one in the callers."""
    import threading

    callers = [st.go_caller(room, f"go-{i}", agent_name=AGENT) for i, room in enumerate(rooms)]
    errors: list[str | None] = [None] * len(rooms)
    for i, c in enumerate(callers):  # keys sent before the agent is in the room reach nobody
        try:
            c.wait_for("participant_joined", 30.0)
        except Exception as e:  # counted per call, as the Python callers' errors are
            errors[i] = f"{type(e).__name__}: {e}"

    def press(i: int) -> None:
        try:
            callers[i].press(keys[i], gap)
        except Exception as e:
            errors[i] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=press, args=(i,)) for i in range(len(rooms)) if errors[i] is None]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60 + len(max(keys, key=len)) * gap)
    time.sleep(1.0)  # as the Python callers linger
    for c in callers:
        c.leave()
    return [{"call": i, "room": room, "sent": keys[i] if errors[i] is None else "", "error": errors[i]}
            for i, room in enumerate(rooms)]


def run_batch(st: Any, rooms: list[str], keys: list[str], timeout: float, gap: float = 0.1) -> list[dict[str, Any]]:
    tokens = [st.token(f"caller-{i}", room, agent_name=AGENT) for i, room in enumerate(rooms)]
    done = st.run([sys.executable, str(SOAK_CALLER), "--url", st.url, "--gap", str(gap)], timeout=timeout,
                  env={"LIVEKIT_TOKENS": json.dumps(tokens), "SOAK_KEYS": json.dumps(keys)})
    calls = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    calls = sorted((c for c in calls if c.get("event") == "call"), key=lambda c: c["call"])  # in finishing order
    if len(calls) != len(rooms):
        raise RuntimeError(f"soak caller exited {done.returncode} with {len(calls)}/{len(rooms)} results; "
                           f"stderr tail:\n{done.stderr[-3000:]}")
    return calls


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--batch", type=int, default=25, help="calls at once (one caller process)")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--keys", default="1-15", help="keys per call: N or MIN-MAX (random, seeded)")
    p.add_argument("--gap", type=float, default=0.1, help="seconds between a caller's keys")
    p.add_argument("--go", action="store_true", help="Go callers (server-sdk-go, a process each) instead of the "
                                                     "Python SDK's callers in one process")
    args = p.parse_args()
    calls, batch = (20, 10) if args.smoke else (args.calls, args.batch)
    reason = missing()
    if reason:
        print(f"bench/soak.py cannot run here: {reason}", file=sys.stderr)
        return 2
    from stack.process import LEAK  # tests/stack: _stack_run put tests/ on sys.path

    rng = random.Random(args.seed)
    report = Report("soak", f"Soak: {calls} calls with random keys through the real server, {batch} at a time")
    low, _, high = args.keys.partition("-")
    fewest, most = int(low), int(high or low)
    report.settings = {"calls": calls, "batch": batch, "seed": args.seed, "keys_per_call": args.keys,
                       "gap_s": args.gap, "executor": "thread",
                       "callers": "go (server-sdk-go)" if args.go else "python (livekit rtc)"}
    report.print_header()
    stamp = f"{time.strftime('%H%M%S')}"
    with tempfile.TemporaryDirectory(prefix="ivrkit-soak-") as tmp, stack_up("soak") as st:
        folder = Path(tmp)
        with wave.open(str(folder / "tone.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(tone_pcm(600, 0.5, 16000))
        (folder / "soak.yaml").write_text(FLOW)
        trace_dir = folder / "traces"
        folder.chmod(0o755)
        worker = start_ivrkit_worker(st, folder / "soak.yaml", agent_name=AGENT, executor="thread",
                                     extra=("--trace-dir", str(trace_dir)))
        try:
            run_batch(st, [f"soak-warm-{stamp}"], ["1"], 60)  # lazy imports, the first prompt
            time.sleep(3.0)
            idle = tree(worker.pid)
            idle_pss, idle_rss, idle_threads = pss_bytes(idle), rss_bytes(idle), threads(idle)
            checkpoints: list[dict[str, Any]] = []
            sent_total = lost = failed_calls = missing_traces = 0
            peak = 0
            mismatches: list[dict[str, Any]] = []
            t0 = time.monotonic()
            for start in range(0, calls, batch):
                n = min(batch, calls - start)
                rooms = [f"soak-{stamp}-{start + i}" for i in range(n)]
                keys = ["".join(rng.choice(KEYS) for _ in range(rng.randint(fewest, most))) for _ in range(n)]
                with Sampler(worker.pid) as sampler:
                    results = (run_go_batch(st, rooms, keys, args.gap) if args.go
                               else run_batch(st, rooms, keys, 120 + most * args.gap, args.gap))
                peak = max(peak, sampler.peak)
                for room, want, res in zip(rooms, keys, results):
                    if res["error"]:
                        failed_calls += 1
                    got = recorded_keys(trace_dir, room, 20)
                    sent_total += len(res["sent"])
                    if got is None:
                        missing_traces += 1
                        lost += len(res["sent"])
                    else:
                        lost += edit_distance(res["sent"], got)
                    if got != res["sent"]:
                        kept = keep_traces(trace_dir, room, st.log_dir)
                        if len(mismatches) < 5:
                            mismatches.append({"room": room, "sent": res["sent"], "recorded": got,
                                               "error": res["error"], "traces": kept})
                pids = tree(worker.pid)
                checkpoints.append({"calls": start + n, "pss_mb": pss_bytes(pids) / 2**20,
                                    "rss_mb": rss_bytes(pids) / 2**20, "threads": threads(pids),
                                    "seconds": time.monotonic() - t0})
                print(f"{start + n} calls: lost keys {lost}, failed calls {failed_calls}, "
                      f"PSS {checkpoints[-1]['pss_mb']:.1f} MB, threads {checkpoints[-1]['threads']}", flush=True)
            time.sleep(2.0)
            final = tree(worker.pid)
            extra_threads = max(0, threads(final) - idle_threads)
            leak_lines = [ln for ln in worker.log_text().splitlines() if LEAK.search(ln)]
        finally:
            worker.stop(timeout=15.0)
    first, last = checkpoints[0], checkpoints[-1]
    growth_kb = (last["pss_mb"] - first["pss_mb"]) * 1024 / max(1, last["calls"] - first["calls"])
    summary = {
        "calls": calls, "batch": batch, "calls_failed_to_run": failed_calls, "keys_sent": sent_total,
        "lost_keys": lost, "calls_without_trace": missing_traces, "leak_log_lines": len(leak_lines),
        "threads_left_over": extra_threads, "worker_idle_pss_mb": idle_pss / 2**20,
        "worker_idle_rss_mb": idle_rss / 2**20, "worker_idle_threads": idle_threads,
        "worker_final_pss_mb": last["pss_mb"], "worker_final_rss_mb": last["rss_mb"],
        "worker_peak_pss_mb": peak / 2**20, "peak_pss_per_concurrent_call_mb": (peak - idle_pss) / batch / 2**20,
        "pss_growth_per_call_kb": growth_kb, "wall_s": last["seconds"], "leak_lines": leak_lines[:5],
        "first_mismatches": mismatches,
        "checkpoints": checkpoints,
    }
    report.results.append(summary)
    step = max(1, len(checkpoints) // 10)
    rows = [["idle", f"{idle_pss / 2**20:.1f}", f"{idle_rss / 2**20:.1f}", idle_threads]]
    rows += [[c["calls"], f"{c['pss_mb']:.1f}", f"{c['rss_mb']:.1f}", c["threads"]]
             for c in checkpoints[::step] + ([last] if (len(checkpoints) - 1) % step else [])]
    report.show(table(["calls done", "worker PSS MB", "worker RSS MB", "worker threads"], rows))
    report.show(table(["calls", "keys sent", "lost keys", "calls failed", "leak lines", "threads left",
                       "PSS growth KB/call", "peak PSS per concurrent call MB"],
                      [[calls, sent_total, lost, failed_calls, len(leak_lines), extra_threads, f"{growth_kb:.1f}",
                        f"{summary['peak_pss_per_concurrent_call_mb']:.1f}"]]))
    report.notes.append("memory after each batch is sampled once its jobs ended; the callers share the 2 cores")
    report.finish(args)
    return 0 if lost == 0 and not leak_lines and missing_traces == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
