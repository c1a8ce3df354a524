"""Row 6: how many calls of a menu mix this 2-core box holds, and what each party's CPU costs.

    sudo .venv/bin/python bench/concurrency.py            # N = 10, 15, 20, 25, 30, 40, 50, 75, 100 ...: ~15 min
    sudo .venv/bin/python bench/concurrency.py --smoke    # 2 calls, one ivrkit worker, seconds

In the harness's namespace (tests/stack): livekit-server, three workers running for the whole run
(each its own agent name, so each call is dispatched to the side under test):
- `ivrkit`: `python -m ivrkit.livekit.worker start` (the guard, one worker process, thread executor);
- `ivrkit-2w`: the same with `--workers 2` (two worker processes under one guard, ivrkit/guard.py);
- `handwritten`: the hand-written livekit-agents worker of row 5 (bench/_handwritten_agent.py),
  the baseline.
Every worker plays the same tone prompts (bench/_tones.py, `--prompt-s` long) on a two-menu flow
where key 1 goes to the other menu.

Callers are Go processes (tests/e2e/goclient with `-listen`, one per call): they subscribe to the
agent's track and tell a prompt's start ("onset") and end by the size of each Opus packet, never
decoding audio (~0.6 % of a core each here), so 100+ of them fit beside the worker. Each call: join (calls arrive `--arrival`
a second), hear the greeting to its end, then over and over: wait a human 1-3 s (seeded per
call), press 1, hear the next prompt to its end. Once every call of the batch heard its greeting,
a window of `--window` seconds is measured; then the calls hang up.

Per N and side: key → prompt onset (from just before the caller's send to the first sound packet
at the caller) p50/p99 over the keys sent in the window; keys without a prompt within 3 s; lost
keys (ivrkit: keys sent vs the `key` records of each call's trace — any lost key means not held);
CPU over the window from /proc in % of one core, per party: the worker's processes only (minus
the same worker idle just before the batch, then per call), livekit-server, the Go callers, this
driver, and the box as a whole. Held = p99 ≤ 250 ms, no lost or unanswered key, every call up.
Sides run interleaved per N (the first side rotates); a batch that does not hold is tried once
more (the box is shared), and a side stops growing after an N that held in neither try. The
worker's CPU is fitted against N over its held batches (the slope, 10 → 100 or the limit).

The onset detector is checked in the same run: each onset against the worker trace's `prompt`
record (the time the call started the prompt), and each key's arrival in the trace against its send.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import Report, ms, parser, percentile, table
from _stack_run import cpu_seconds, missing, stack_up, start_handwritten_worker, start_ivrkit_worker, tree
from _tones import flow_yaml, write_tones

LIMIT_P99_MS = 250.0
NO_PROMPT_S = 3.0  # a key with no prompt onset this long after it is "unanswered"
THINK_S = (1.0, 3.0)
SIDES = ("ivrkit", "ivrkit-2w", "handwritten")
AGENTS = {"ivrkit": "bench6-ivrkit", "ivrkit-2w": "bench6-ivrkit-2w", "handwritten": "handwritten-bench"}
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Press:
    sent: float  # CLOCK_MONOTONIC just before the caller sent the key
    onset: float | None = None  # the next prompt's first sound packet at the caller


@dataclass
class Call:
    room: str
    caller: Any = None
    joined: float | None = None  # the caller's room connection is up
    greeting: float | None = None
    presses: list[Press] = field(default_factory=list)
    sounds: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None
    payload_sizes: dict[int, int] = field(default_factory=dict)
    events: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)


def _call(st: Any, call: Call, agent: str, rng: random.Random, prompt_s: float, stop: threading.Event) -> None:
    """One caller: hear the greeting, then think, press 1, hear the prompt, until `stop`."""
    try:
        caller = call.caller = st.go_caller(call.room, call.room, agent_name=agent, timeout=60, listen=True)
        call.joined = caller.events("connected")[0].t
        call.greeting = caller.wait_for("onset", 60).t
        caller.wait_for("sound_end", prompt_s + 30)
        while not stop.wait(rng.uniform(*THINK_S)):
            mark = caller.mark()
            press = Press(sent=float(caller.dtmf("1")["t0"]))
            call.presses.append(press)
            try:
                press.onset = caller.wait_for("onset", NO_PROMPT_S, since=mark).t
                caller.wait_for("sound_end", prompt_s + 10, since=mark)
            except AssertionError:
                continue  # unanswered: counted from the press's missing onset
    except Exception as exc:  # noqa: BLE001 - a failed call is a figure of the batch, not a crash
        call.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        if call.caller is not None:
            call.caller.leave(timeout=5)
            call.sounds = [(float(e["start"]), float(e["end"])) for e in call.caller.events("sound_end")]
            call.events = [(e.name, e.t, e.data) for e in call.caller.events()]
            for e in call.caller.events("listen_summary"):
                for size, count in e["payload_sizes"].items():
                    call.payload_sizes[int(size)] = call.payload_sizes.get(int(size), 0) + count
            st.callers.remove(call.caller)


def _proc_cpu(pids: list[int]) -> float:
    """CPU seconds (utime + stime) of live processes; their children are not counted."""
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                total += sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13]) / TICK
        except OSError:
            continue
    return total


def _box_busy() -> float:
    """CPU seconds the whole box spent busy (all but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # guest time is already in user


def _parties(worker_pid: int, server_pid: int, calls: list[Call]) -> dict[str, float]:
    return {"worker": cpu_seconds(tree(worker_pid)), "server": _proc_cpu([server_pid]),
            "callers": _proc_cpu([c.caller.process.pid for c in calls if c.caller is not None]),
            "driver": time.process_time(), "box": _box_busy()}


def _traces(trace_dir: Path, rooms: list[str], timeout: float = 20.0) -> dict[str, list[dict[str, Any]]]:
    """Each room's finished trace records, times made absolute (CLOCK_MONOTONIC, as the callers')."""
    out: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + timeout
    for room in rooms:
        while True:
            files = sorted(trace_dir.glob(f"{room}--*.jsonl"))
            text = files[0].read_text() if files else ""
            if '"job_end"' in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        clock = next((r.get("clock") for r in records if r.get("event") == "call"), None)
        out[room] = [{**r, "at": clock + r["t"]} for r in records
                     if clock is not None and isinstance(r.get("t"), (int, float))]
    return out


def _quiet(pid: int, below_pct: float = 15.0, limit: float = 90.0) -> float:
    """Wait until the worker is idle again (an overloaded batch leaves it seconds of backlog);
    returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        c0 = cpu_seconds(tree(pid))
        time.sleep(1.0)
        if 100 * (cpu_seconds(tree(pid)) - c0) < below_pct:
            break
    return time.monotonic() - began


def _batch(st: Any, side: str, worker: Any, trace_dir: Path | None, n: int, args: Any, seed: int) -> dict[str, Any]:
    stamp = time.monotonic_ns() % 10**9
    calls = [Call(room=f"c6-{side}-{n}-{stamp}-{i}") for i in range(n)]
    settled_s = _quiet(worker.pid)
    c0, t0 = cpu_seconds(tree(worker.pid)), time.monotonic()
    time.sleep(args.idle)
    idle_pct = 100 * (cpu_seconds(tree(worker.pid)) - c0) / max(time.monotonic() - t0, 1e-3)
    stop = threading.Event()
    threads = [threading.Thread(target=_call, args=(st, c, AGENTS[side], random.Random(seed * 1000 + i), args.prompt_s, stop),
                                daemon=True) for i, c in enumerate(calls)]
    began = time.monotonic()
    for th in threads:
        th.start()
        time.sleep(1.0 / args.arrival)
    deadline = began + n / args.arrival + 60
    while time.monotonic() < deadline and not all(c.greeting or c.error for c in calls):
        time.sleep(0.2)
    ramp_s = time.monotonic() - began
    time.sleep(1.0)
    p0, w0 = _parties(worker.pid, st.server.process.pid, calls), time.monotonic()
    time.sleep(args.window)
    p1, w1 = _parties(worker.pid, st.server.process.pid, calls), time.monotonic()
    stop.set()
    for th in threads:
        th.join(args.prompt_s + NO_PROMPT_S + 30)
    wall = w1 - w0
    pct = {k: 100 * (p1[k] - p0[k]) / wall for k in p0}
    pct["other"] = pct["box"] - pct["worker"] - pct["server"] - pct["callers"] - pct["driver"]

    in_window = [p for c in calls for p in c.presses if w0 <= p.sent <= w1]
    lat = sorted(p.onset - p.sent for p in in_window if p.onset is not None)
    unanswered = sum(1 for c in calls for p in c.presses if p.onset is None)
    sent = sum(len(c.presses) for c in calls)
    failed = [c for c in calls if c.error or c.greeting is None]
    setup = sorted(c.greeting - c.joined for c in calls if c.greeting is not None and c.joined is not None)
    playing = sum(max(0.0, min(e, w1) - max(s, w0)) for c in calls for s, e in c.sounds)
    res: dict[str, Any] = {
        "side": side, "calls": n, "keys_sent": sent, "keys_in_window": len(in_window), "timed": len(lat),
        "p50_ms": ms(percentile(lat, 50)) if lat else None, "p99_ms": ms(percentile(lat, 99)) if lat else None,
        "max_ms": ms(lat[-1]) if lat else None, "unanswered": unanswered, "failed_calls": len(failed),
        "errors": sorted({c.error for c in failed if c.error})[:3],
        "worker_pct": pct["worker"], "worker_idle_pct": idle_pct,
        "worker_pct_per_call": (pct["worker"] - idle_pct) / n,
        "server_pct": pct["server"], "callers_pct": pct["callers"], "driver_pct": pct["driver"],
        "box_pct": pct["box"], "other_pct": pct["other"], "window_s": wall, "ramp_s": ramp_s,
        "prompt_share": playing / (n * wall), "settled_s": settled_s,
        "setup_p50_ms": ms(percentile(setup, 50)) if setup else None,
        "setup_p99_ms": ms(percentile(setup, 99)) if setup else None, "load_avg_1m": os.getloadavg()[0],
    }
    sizes: dict[int, int] = {}
    for c in calls:
        for size, count in c.payload_sizes.items():
            sizes[size] = sizes.get(size, 0) + count
    res["payload_sizes"] = {str(k): sizes[k] for k in sorted(sizes)}
    if trace_dir is not None:
        traces = _traces(trace_dir, [c.room for c in calls])
        lost = 0
        to_worker, to_ear = [], []
        for c in calls:
            recs = traces.get(c.room, [])
            keys = [r["at"] for r in recs if r.get("event") == "key"]
            prompts = [r["at"] for r in recs if r.get("event") == "prompt"]
            lost += max(0, len(c.presses) - len(keys))
            to_worker += [k - p.sent for p, k in zip(c.presses, keys)]
            # each onset heard against the latest prompt start the trace has before it
            for onset in [c.greeting] + [p.onset for p in c.presses]:
                before = [t for t in prompts if onset is not None and t <= onset]
                if before and onset is not None and onset - before[-1] < NO_PROMPT_S:
                    to_ear.append(onset - before[-1])
            if len(prompts) != 1 + sum(1 for p in c.presses if p.onset is not None) or len(keys) != len(c.presses):
                res.setdefault("prompt_count_mismatch", 0)
                res["prompt_count_mismatch"] += 1
                _keep(st.log_dir, c, recs)
        res["lost_keys"] = lost
        for name, xs in (("key_to_worker", to_worker), ("prompt_to_onset", to_ear)):
            xs.sort()
            res[f"{name}_n"] = len(xs)
            if xs:
                res[f"{name}_p50_ms"], res[f"{name}_p99_ms"] = ms(percentile(xs, 50)), ms(percentile(xs, 99))
                res[f"{name}_min_ms"], res[f"{name}_max_ms"] = ms(xs[0]), ms(xs[-1])
    res["held"] = (bool(lat) and ms(percentile(lat, 99)) <= LIMIT_P99_MS and unanswered == 0
                   and not failed and not res.get("lost_keys"))
    return res


def summarise(results: list[dict[str, Any]], sides: list[str]) -> list[dict[str, Any]]:
    """Per side: the largest N held (in either try), the first N that held in neither, and the
    slope of the worker's CPU (minus idle) against N over the held batches from 10 to 100 calls."""
    out = []
    for side in sides:
        runs = [r for r in results if r.get("side") == side and not r.get("summary")]
        held = [r for r in runs if r["held"]]
        fit = [(r["calls"], r["worker_pct"] - r["worker_idle_pct"]) for r in held if 10 <= r["calls"] <= 100]
        xs = [x for x, _ in fit]
        out.append({"side": side, "held_up_to": max((r["calls"] for r in held), default=None),
                    "first_not_held": min((r["calls"] for r in runs if not any(h["calls"] == r["calls"] for h in held)),
                                          default=None),
                    "slope_pct_per_call": _slope(fit), "slope_range": [min(xs, default=None), max(xs, default=None)]})
    return out


def detector_table(results: list[dict[str, Any]]) -> str | None:
    """The onset detector against the worker's traces, and the keys' way to the worker, per batch."""
    det = [[r["side"], r["calls"], r["attempt"], r.get("prompt_to_onset_p50_ms"), r.get("prompt_to_onset_p99_ms"),
            r.get("key_to_worker_p50_ms"), r.get("key_to_worker_p99_ms")] for r in results if r.get("prompt_to_onset_n")]
    return table(["side", "calls", "try", "trace prompt → onset p50 ms", "p99 ms", "key sent → trace key p50 ms",
                  "p99 ms"], det) if det else None


def _keep(log_dir: Path, call: Call, trace: list[dict[str, Any]]) -> None:
    """A call whose keys or prompts do not add up: its trace and what its caller heard, beside the logs."""
    (log_dir / f"{call.room}.trace.json").write_text(json.dumps(trace, indent=1))
    (log_dir / f"{call.room}.heard.json").write_text(json.dumps(call.events, indent=1))


def _slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of worker CPU (% of a core) against calls."""
    if len(points) < 2:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--calls", default="10,15,20,25,30,40,50,75,100,125,150", help="N, a comma list, grown until a side does not hold")
    p.add_argument("--sides", default=",".join(SIDES), help=f"a comma list of {', '.join(SIDES)}")
    p.add_argument("--window", type=float, default=30.0, help="seconds measured once every call heard its greeting")
    p.add_argument("--prompt-s", type=float, default=3.0, help="length of each prompt (s)")
    p.add_argument("--arrival", type=float, default=2.0, help="new calls a second while a batch starts")
    p.add_argument("--idle", type=float, default=3.0, help="seconds the idle worker is measured before a batch")
    p.add_argument("--seed", type=int, default=6)
    args = p.parse_args()
    if args.smoke:
        ns, sides = [2], ["ivrkit"]
        args.window, args.prompt_s, args.idle = 3.0, 1.0, 1.0
    else:
        ns, sides = [int(x) for x in args.calls.split(",")], args.sides.split(",")
    reason = missing()
    if reason:
        print(f"bench/concurrency.py cannot run here: {reason}", file=sys.stderr)
        return 2
    report = Report("concurrency", "Row 6: calls of a menu mix on one 2-core box, CPU per party")
    report.settings = {"calls": ns, "sides": sides, "window_s": args.window, "prompt_s": args.prompt_s,
                       "think_s": list(THINK_S), "arrival_per_s": args.arrival, "seed": args.seed,
                       "held": f"p99 key→prompt ≤ {LIMIT_P99_MS:.0f} ms, no lost or unanswered key, every call up",
                       "callers": "Go (tests/e2e/goclient -listen: Opus payload sizes, no decoding)"}
    report.print_header()
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="ivrkit-bench6-") as tmp, stack_up("concurrency") as st:
        folder = Path(tmp)
        write_tones(folder, args.prompt_s)
        flow = folder / "bench-tones.yaml"
        flow.write_text(flow_yaml())
        folder.chmod(0o755)
        workers: dict[str, Any] = {}
        trace_dirs: dict[str, Path | None] = {}
        for side in sides:
            if side == "handwritten":
                workers[side], trace_dirs[side] = start_handwritten_worker(st, tone_seconds=args.prompt_s), None
                continue
            trace_dirs[side] = folder / f"traces-{side}"
            count = "2" if side == "ivrkit-2w" else "1"
            workers[side] = start_ivrkit_worker(st, flow, agent_name=AGENTS[side], executor="thread", name=f"worker-{side}",
                                                extra=("--workers", count, "--trace-dir", str(trace_dirs[side])))
        deadline = time.monotonic() + 60
        while "ivrkit-2w" in workers and workers["ivrkit-2w"].log_text().count("ivrkit worker registered") < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the second worker process of --workers 2 never registered")
            time.sleep(0.5)
        for side in ([] if args.smoke else sides):  # one untimed call each: lazy imports, first prompt loads
            _batch(st, side, workers[side], trace_dirs[side], 1, _warm(args), 0)
        growing = list(sides)
        for i, n in enumerate(ns):
            order = growing[i % len(growing):] + growing[:i % len(growing)] if growing else []
            for side in order:
                for attempt in (1, 2):  # a batch that does not hold is tried once more: this box is shared
                    r = _batch(st, side, workers[side], trace_dirs[side], n, args, seed=args.seed + n)
                    r["attempt"] = attempt
                    report.results.append(r)
                    print(f"  {side} N={n} (try {attempt}): p99 {r['p99_ms'] or 0:.0f} ms, lost {r.get('lost_keys', '-')}, "
                          f"unanswered {r['unanswered']}, failed calls {r['failed_calls']}, worker {r['worker_pct']:.0f} % "
                          f"(idle {r['worker_idle_pct']:.1f} %), server {r['server_pct']:.0f} %, callers "
                          f"{r['callers_pct']:.0f} %, box {r['box_pct']:.0f} %, load {r['load_avg_1m']:.1f}",
                          file=sys.stderr, flush=True)
                    time.sleep(2.0)  # the rooms of the batch close
                    if r["held"] or args.smoke:
                        break
                else:
                    growing.remove(side)
            if not growing:
                break
    for r in report.results:
        rows.append([r["side"], r["calls"], r["attempt"], r["timed"], r["p50_ms"], r["p99_ms"], r.get("lost_keys", "-"),
                     r["unanswered"], r["failed_calls"], r["setup_p50_ms"], r["worker_pct"], r["worker_pct_per_call"],
                     r["server_pct"], r["callers_pct"], r["box_pct"], f"{r['load_avg_1m']:.1f}",
                     f"{100 * r['prompt_share']:.0f} %", "yes" if r["held"] else "**no**"])
    report.show(table(["side", "calls", "try", "keys timed", "p50 ms", "p99 ms", "lost keys", "unanswered", "failed calls",
                       "set-up p50 ms", "worker % of a core", "worker % per call", "server %", "callers %", "box %",
                       "load avg", "prompt playing", "held"], rows))
    summaries = summarise(report.results, sides)
    for s in summaries:
        slope, (lo, hi) = s["slope_pct_per_call"], s["slope_range"]
        print(f"{s['side']}: held up to N={s['held_up_to']}, first not held N={s['first_not_held']}, worker CPU slope "
              + (f"{slope:.2f} % of a core per call (N {lo}-{hi})" if slope is not None else "-"))
    report.results.extend({"summary": True, **s} for s in summaries)
    det = detector_table(report.results)
    if det:
        report.show(det)
    report.notes.append("worker % of a core: its own processes (guard and workers), read from /proc over the window; "
                        "per call: minus the same worker idle just before the batch, / N")
    report.notes.append("callers: the Go callers' processes (one per call); box: the whole machine's busy time "
                        "(/proc/stat), which also holds the other sides' idle workers and other users of the machine; "
                        "load avg: the 1-minute load average at the batch's end")
    report.notes.append("set-up: the caller's room joined → the greeting's first sound at the caller; try 2: the "
                        "same N again after a batch that did not hold (the box is shared); a side stops growing "
                        "when both tries fail; the slope is fitted over the held batches from 10 to 100 calls")
    report.finish(args)
    return 0


def _warm(args: Any) -> Any:
    """The settings of the untimed warm-up call: a short window."""
    import argparse

    return argparse.Namespace(**{**vars(args), "window": 1.0, "idle": 0.0})


if __name__ == "__main__":
    sys.exit(main())
