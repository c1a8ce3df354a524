"""Row 1: engine time per keypress through the call runtime, vs a hand-written dict handler.

    .venv/bin/python bench/keypress.py                 # full run (bench/results/keypress.json)
    .venv/bin/python bench/keypress.py --callgrind     # + instruction counts under valgrind
    .venv/bin/python bench/keypress.py --smoke         # a few keys, seconds
    .venv/bin/python bench/keypress.py --metrics [--callgrind]   # the Prometheus series' cost per key:
                                                       # ivrkit with and without them, side by side
                                                       # (bench/results/keypress_metrics.json)

What is timed: a `Call(FlowMachine(flow), FakeChannel(VirtualClock()))` is started and left
waiting in its first menu; then keys are fed one at a time with `FakeChannel.press` (which
emits a `Key`), and the time from that call until the call is idle again (queue empty, nothing
runnable — what `FlowTester` waits for) is one sample. The key cycle (bench/_calls.py) walks
menu → menu → menu → a 4-digit sensitive PIN → back: every menu key barges in on the playing
prompt, moves the shared transitions machine and starts the next prompt; PIN digits feed the
DigitCollector and re-arm the inter-digit timer; the 4th completes the collect.

Baseline (same channel, clock, keys, idle rule, same run, interleaved rep by rep):
`_baselines.DictMenuCall`, a minimal hand-written handler (dict of states, queue, one task,
barge-in, timers) — the floor. A fresh call per repetition keeps the trace below its cap.

--callgrind: runs the same keys under `valgrind --tool=callgrind` twice per side (K and 2K keys)
and reports (Ir(2K) - Ir(K)) / K = instructions per key, start-up cancelled out. Instruction
counts are repeatable where times on this shared 2-core box are not.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _baselines import DictMenuCall
from _calls import BENCH_TABLE, CYCLE, load_bench_machine, until_idle
from _report import Report, Summary, parser, ratio, table, us

TARGET_MEDIAN_US = 50.0
TARGET_P99_US = 1000.0


async def _feed(channel: Any, queue_size: Any, keys: int, samples: dict[str, list[float]]) -> None:
    clock = time.perf_counter_ns
    for i in range(keys):
        digit, kind = CYCLE[i % len(CYCLE)]
        t0 = clock()
        channel.press(digit)
        await until_idle(queue_size)
        samples[kind].append((clock() - t0) / 1e9)


async def run_ivrkit(machine: Any, keys: int, samples: dict[str, list[float]], metrics: Any = None) -> None:
    """`metrics`: an `ivrkit.metrics.IvrMetrics` the call counts into (one per run, shared by its
    calls, as the worker shares one per process)."""
    from ivrkit.call import Call
    from ivrkit.testing import FakeChannel, VirtualClock

    channel = FakeChannel(VirtualClock())
    call = Call(machine, channel, metrics=metrics.call(machine.flow) if metrics is not None else None)
    task = asyncio.get_running_loop().create_task(call.run())
    # The idle check reads the queue's length in one call, as the baseline's `queue.qsize` does:
    # it runs inside every timed sample, so it must cost the same on both sides. (`idle_info`,
    # what FlowTester reads, also builds a tuple and asks the background task: ~0.7 µs a key of
    # harness, not engine; this flow runs no hooks, so there is no thread to wait for.)
    queued = call._queue.__len__
    await until_idle(queued)
    if call.state != "main":
        raise RuntimeError(f"the call should wait in 'main', it is in {call.state!r}")
    await _feed(channel, queued, keys, samples)
    if call.state != "main" and keys % len(CYCLE) == 0:
        raise RuntimeError(f"after whole key cycles the call should be in 'main', it is in {call.state!r}")
    channel.caller_hangup()
    result = await task
    if result.ended_by != "caller_hangup":
        raise RuntimeError(f"call ended by {result.ended_by}, expected caller_hangup")


async def run_baseline(keys: int, samples: dict[str, list[float]]) -> None:
    from ivrkit.testing import FakeChannel, VirtualClock

    channel = FakeChannel(VirtualClock())
    call = DictMenuCall(BENCH_TABLE, channel, "main")
    task = asyncio.get_running_loop().create_task(call.run())
    await until_idle(call.queue.qsize)
    await _feed(channel, call.queue.qsize, keys, samples)
    channel.caller_hangup()
    await task


def one_side(side: str, keys: int) -> None:
    """Run only one side, untimed: what callgrind counts (`--only ivrkit|ivrkit-metrics|baseline`)."""
    machine = load_bench_machine() if side != "baseline" else None
    metrics = _metrics() if side == "ivrkit-metrics" else None
    samples: dict[str, list[float]] = {"menu": [], "digit": [], "complete": []}

    async def go() -> None:
        if side != "baseline":
            await run_ivrkit(machine, keys, samples, metrics)
        else:
            await run_baseline(keys, samples)
    asyncio.run(go())


def _metrics() -> Any:
    from prometheus_client import CollectorRegistry

    from ivrkit.metrics import IvrMetrics

    return IvrMetrics(CollectorRegistry())


def callgrind(keys: int, sides: tuple[str, str] = ("baseline", "ivrkit")) -> dict[str, Any]:
    """Instructions per key, from two valgrind runs per side (K and 2K keys)."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ivrkit-callgrind-") as tmp:
        for side in sides:
            irs = []
            for k in (keys, 2 * keys):
                dest = Path(tmp) / f"cg.{side}.{k}"
                cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dest}",
                       sys.executable, __file__, "--only", side, "--keys", str(k)]
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                                      env={**os.environ, "PYTHONHASHSEED": "0"})
                m = re.search(r"Collected : (\d+)", proc.stderr)
                if proc.returncode != 0 or m is None:
                    raise RuntimeError(f"valgrind failed ({proc.returncode}): {proc.stderr[-2000:]}")
                irs.append(int(m.group(1)))
            out[side] = (irs[1] - irs[0]) / keys
    out["ratio"] = ratio(out[sides[1]], out[sides[0]])
    return out


def compare_metrics(args: Any) -> int:
    """`--metrics`: the same keys through ivrkit without and with the Prometheus series (one
    `IvrMetrics` per side run, its children cached as in the worker), interleaved rep by rep."""
    reps, keys = (2, 16) if args.smoke else (args.reps, args.keys)
    report = Report("keypress_metrics", "The Prometheus series' cost per keypress (ivrkit.metrics)")
    report.settings = {"reps": reps, "keys_per_rep": keys, "cycle": " ".join(d for d, _ in CYCLE)}
    report.print_header()
    machine = load_bench_machine()
    kinds = ("menu", "digit", "complete")
    plain: dict[str, list[float]] = {k: [] for k in kinds}
    counted: dict[str, list[float]] = {k: [] for k in kinds}
    metrics = _metrics()

    async def go() -> None:
        await run_ivrkit(machine, len(CYCLE) * 2, {k: [] for k in kinds})
        await run_ivrkit(machine, len(CYCLE) * 2, {k: [] for k in kinds}, metrics)
        for _ in range(reps):
            gc.collect()
            await run_ivrkit(machine, keys, plain)
            gc.collect()
            await run_ivrkit(machine, keys, counted, metrics)
    asyncio.run(go())

    rows = []
    for label, pick in (("all keys", kinds), ("menu key", ("menu",)), ("PIN digit", ("digit",)),
                        ("PIN 4th digit (completes)", ("complete",))):
        a = Summary.of([x for k in pick for x in plain[k]])
        b = Summary.of([x for k in pick for x in counted[k]])
        report.results.append({"keys": label, "n": a.n, "without_median_us": us(a.median), "without_p99_us": us(a.p99),
                               "with_median_us": us(b.median), "with_p99_us": us(b.p99),
                               "delta_median_us": us(b.median - a.median)})
        rows.append([label, a.n, us(a.median), us(b.median), us(b.median - a.median), us(a.p99), us(b.p99)])
    report.show(table(["keys", "n", "without µs (median)", "with µs (median)", "Δ µs", "without p99 µs",
                       "with p99 µs"], rows))
    if args.callgrind and not args.smoke:
        cg = callgrind(args.callgrind_keys, ("ivrkit", "ivrkit-metrics"))
        report.results.append({"keys": "instructions per key (callgrind)", "without_ir_per_key": cg["ivrkit"],
                               "with_ir_per_key": cg["ivrkit-metrics"], "ratio": cg["ratio"],
                               "keys_counted": args.callgrind_keys})
        report.show(table(["callgrind (all keys)", "without Ir/key", "with Ir/key", "x"],
                    [["instructions per key", cg["ivrkit"], cg["ivrkit-metrics"], cg["ratio"]]]))
    report.finish(args)
    return 0


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--reps", type=int, default=12, help="repetitions per side (fresh call each)")
    p.add_argument("--keys", type=int, default=400, help="keys per repetition (a multiple of 8)")
    p.add_argument("--callgrind", action="store_true", help="also count instructions per key under valgrind")
    p.add_argument("--callgrind-keys", type=int, default=400)
    p.add_argument("--metrics", action="store_true",
                   help="compare ivrkit without and with its Prometheus series instead of with the baseline")
    p.add_argument("--only", choices=["ivrkit", "ivrkit-metrics", "baseline"], help=argparse_hidden())
    args = p.parse_args()
    if args.only:
        one_side(args.only, args.keys)
        return 0
    if args.metrics:
        return compare_metrics(args)
    reps, keys = (2, 16) if args.smoke else (args.reps, args.keys)

    report = Report("keypress", "Row 1: per-keypress engine time through the call runtime")
    report.settings = {"reps": reps, "keys_per_rep": keys, "cycle": " ".join(d for d, _ in CYCLE),
                       "gc": "enabled (as in production)"}
    report.print_header()
    machine = load_bench_machine()
    kinds = ("menu", "digit", "complete")
    ivr: dict[str, list[float]] = {k: [] for k in kinds}
    base: dict[str, list[float]] = {k: [] for k in kinds}
    rep_medians: list[tuple[float, float]] = []

    async def go() -> None:
        # one warm-up round each, untimed
        await run_ivrkit(machine, len(CYCLE) * 2, {k: [] for k in kinds})
        await run_baseline(len(CYCLE) * 2, {k: [] for k in kinds})
        for _ in range(reps):
            a: dict[str, list[float]] = {k: [] for k in kinds}
            b: dict[str, list[float]] = {k: [] for k in kinds}
            gc.collect()
            await run_baseline(keys, b)
            gc.collect()
            await run_ivrkit(machine, keys, a)
            for k in kinds:
                ivr[k].extend(a[k])
                base[k].extend(b[k])
            all_a = [x for k in kinds for x in a[k]]
            all_b = [x for k in kinds for x in b[k]]
            rep_medians.append((Summary.of(all_a).median, Summary.of(all_b).median))
    asyncio.run(go())

    rows = []
    for label, pick in (("all keys", kinds), ("menu key", ("menu",)), ("PIN digit", ("digit",)),
                        ("PIN 4th digit (completes)", ("complete",))):
        a = Summary.of([x for k in pick for x in ivr[k]])
        b = Summary.of([x for k in pick for x in base[k]])
        res = {"keys": label, "n": a.n, "ivrkit_median_us": us(a.median), "ivrkit_p99_us": us(a.p99),
               "ivrkit_max_us": us(a.maximum), "baseline_median_us": us(b.median), "baseline_p99_us": us(b.p99),
               "ratio_median": ratio(a.median, b.median), "ratio_p99": ratio(a.p99, b.p99)}
        if label == "all keys":
            res["target"] = f"median < {TARGET_MEDIAN_US:.0f} µs, p99 < {TARGET_P99_US:.0f} µs"
            res["target_met"] = us(a.median) < TARGET_MEDIAN_US and us(a.p99) < TARGET_P99_US
            per_rep = [x / y for x, y in rep_medians]
            res["ratio_median_per_rep_min"] = min(per_rep)
            res["ratio_median_per_rep_max"] = max(per_rep)
            res["ivrkit_rep_median_us_range"] = [us(min(x for x, _ in rep_medians)), us(max(x for x, _ in rep_medians))]
        report.results.append(res)
        rows.append([label, a.n, us(a.median), us(a.p99), us(a.maximum), us(b.median), us(b.p99),
                     res["ratio_median"], res["ratio_p99"]])
    report.show(table(["keys", "n", "ivrkit median µs", "ivrkit p99 µs", "ivrkit max µs", "baseline median µs",
                 "baseline p99 µs", "x median", "x p99"], rows))
    top = report.results[0]
    print(f"repetitions: ivrkit/baseline median ratio per rep {top['ratio_median_per_rep_min']:.1f}"
          f"-{top['ratio_median_per_rep_max']:.1f}x; ivrkit rep medians "
          f"{top['ivrkit_rep_median_us_range'][0]:.1f}-{top['ivrkit_rep_median_us_range'][1]:.1f} µs")
    print(f"target: median < 50 µs and p99 < 1 ms: {'MET' if top['target_met'] else 'NOT MET'} "
          f"(median {top['ivrkit_median_us']:.1f} µs, p99 {top['ivrkit_p99_us']:.1f} µs)")
    if args.callgrind and not args.smoke:
        cg = callgrind(args.callgrind_keys)
        report.results.append({"keys": "instructions per key (callgrind)", "ivrkit_ir_per_key": cg["ivrkit"],
                               "baseline_ir_per_key": cg["baseline"], "ratio": cg["ratio"],
                               "keys_counted": args.callgrind_keys})
        report.show(table(["callgrind (all keys)", "ivrkit Ir/key", "baseline Ir/key", "x"],
                    [["instructions per key", cg["ivrkit"], cg["baseline"], cg["ratio"]]]))
    report.finish(args)
    return 0


def argparse_hidden() -> str:
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
