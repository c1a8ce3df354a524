"""Row 3: memory per live concurrent call at 100 / 1,000 / 10,000 calls in one process.

    .venv/bin/python bench/memory.py          # full run (bench/results/memory.json)
    .venv/bin/python bench/memory.py --smoke  # 20 and 50 calls

Each figure comes from a fresh child process (so one measurement's garbage and allocator state
cannot leak into the next), which builds the shared machine, warms up with 10 calls that run to
the end, then starts N calls on ONE `FlowMachine` and one `VirtualClock`, and moves time until
every call has heard its menu prompt and waits for a key (no-input timer armed). It checks that
the N calls are live (attached to the machine, in state `main`, task not done) and reports
  tracemalloc: (traced bytes after - before) / N, in a run with tracemalloc on;
  RSS: (resident set after - before) / N, in a separate run with tracemalloc off.
Variants, same N, same run:
  ivrkit        Call + FakeChannel (the testing adapter) + its asyncio task
  channel only  FakeChannel alone: the adapter's share, to subtract ("engine share" = difference)
  dict+task     a dict per call + an asyncio queue + a consumer task (the least a live async call
                holds)
  bare dict     one dict per call with state/digits/variables/counters: the floor
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from _baselines import TaskCall, bare_call_state
from _report import Report, parser, table

TARGET_KB = 50.0
VARIANTS = ("ivrkit", "channel only", "dict+task", "bare dict")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _start_ivrkit(machine: Any, n: int, hold: list[Any]) -> None:
    from ivrkit.call import Call
    from ivrkit.testing import FakeChannel, VirtualClock
    from _calls import until_idle

    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    calls = []
    for _ in range(n):
        call = Call(machine, FakeChannel(clock))
        calls.append((call, loop.create_task(call.run())))
    await until_idle(lambda: 0)
    # every prompt is the same length: move past its end, one timer at a time
    while True:
        due = clock.next_due()
        if due is None or due > 4.9:
            break
        clock.fire_next(4.9)
        await until_idle(lambda: 0)
    bad = [c.state for c, t in calls if c.state != "main" or t.done()]
    if bad or machine.model_count < n:
        raise RuntimeError(f"calls not live in 'main': {len(bad)} bad ({bad[:3]}), {machine.model_count} attached")
    hold.append((clock, calls))


async def _start_channels(n: int, hold: list[Any]) -> None:
    from ivrkit.testing import FakeChannel, VirtualClock

    clock = VirtualClock()
    chans = []
    for _ in range(n):
        ch = FakeChannel(clock)
        ch.connect(lambda e: None)
        chans.append(ch)
    hold.append((clock, chans))


async def _start_tasks(n: int, hold: list[Any]) -> None:
    calls = [TaskCall(i) for i in range(n)]
    await asyncio.sleep(0)
    hold.append(calls)


async def child(variant: str, n: int, use_tracemalloc: bool) -> dict[str, Any]:
    machine = None
    if variant == "ivrkit":
        from _calls import load_bench_machine
        machine = load_bench_machine()
        warm: list[Any] = []
        await _start_ivrkit(machine, 10, warm)
        for clock, calls in warm:
            for c, t in calls:
                c.channel.caller_hangup()
            await asyncio.gather(*(t for _, t in calls))
        warm.clear()
    elif variant == "channel only":
        await _start_channels(10, [])
    elif variant == "dict+task":
        await _start_tasks(10, [])
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
    before_rss = _rss_bytes()
    before_tm = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    hold: list[Any] = []
    if variant == "ivrkit":
        await _start_ivrkit(machine, n, hold)
    elif variant == "channel only":
        await _start_channels(n, hold)
    elif variant == "dict+task":
        await _start_tasks(n, hold)
    else:
        hold.append([bare_call_state(i) for i in range(n)])
    gc.collect()
    out = {"rss_per_call": (_rss_bytes() - before_rss) / n}
    if use_tracemalloc:
        out["tracemalloc_per_call"] = (tracemalloc.get_traced_memory()[0] - before_tm) / n
        tracemalloc.stop()
    return out


def run_child(variant: str, n: int, use_tracemalloc: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", variant, "--calls", str(n)]
    if use_tracemalloc:
        cmd.append("--tracemalloc")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=Path(__file__).parent)
    if proc.returncode != 0:
        raise RuntimeError(f"child {variant} n={n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--child", choices=VARIANTS, help=__import__("argparse").SUPPRESS)
    p.add_argument("--calls", type=int, help=__import__("argparse").SUPPRESS)
    p.add_argument("--tracemalloc", action="store_true", help=__import__("argparse").SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.calls, args.tracemalloc))))
        return 0
    sizes = [20, 50] if args.smoke else [int(s) for s in args.sizes.split(",")]
    report = Report("memory", "Row 3: memory per live call (calls attached to one shared machine, waiting in a menu)")
    report.settings = {"sizes": sizes, "variants": list(VARIANTS), "flow": "bench/_calls.py BENCH_FLOW"}
    report.print_header()
    rows = []
    for n in sizes:
        m: dict[str, dict[str, Any]] = {}
        for v in VARIANTS:
            m[v] = {**run_child(v, n, True), **{"rss_only_run": run_child(v, n, False)["rss_per_call"]}}
            print(f"  {n} calls, {v}: done", file=sys.stderr, flush=True)
        kb = lambda b: b / 1024  # noqa: E731
        ivr_tm = m["ivrkit"]["tracemalloc_per_call"]
        ch_tm = m["channel only"]["tracemalloc_per_call"]
        res = {
            "calls": n,
            "ivrkit_tracemalloc_kb": kb(ivr_tm), "ivrkit_rss_kb": kb(m["ivrkit"]["rss_only_run"]),
            "channel_tracemalloc_kb": kb(ch_tm), "engine_share_tracemalloc_kb": kb(ivr_tm - ch_tm),
            "dict_task_tracemalloc_kb": kb(m["dict+task"]["tracemalloc_per_call"]),
            "dict_task_rss_kb": kb(m["dict+task"]["rss_only_run"]),
            "bare_dict_tracemalloc_kb": kb(m["bare dict"]["tracemalloc_per_call"]),
            "bare_dict_rss_kb": kb(m["bare dict"]["rss_only_run"]),
            "target": f"< {TARGET_KB:.0f} KB per call",
        }
        res["ratio_vs_dict_task"] = ivr_tm / m["dict+task"]["tracemalloc_per_call"]
        res["ratio_vs_bare_dict"] = ivr_tm / m["bare dict"]["tracemalloc_per_call"]
        res["target_met"] = res["ivrkit_tracemalloc_kb"] < TARGET_KB and res["ivrkit_rss_kb"] < TARGET_KB
        report.results.append(res)
        rows.append([n, res["ivrkit_tracemalloc_kb"], res["ivrkit_rss_kb"], res["engine_share_tracemalloc_kb"],
                     res["dict_task_tracemalloc_kb"], res["dict_task_rss_kb"], res["bare_dict_tracemalloc_kb"],
                     res["bare_dict_rss_kb"], res["ratio_vs_dict_task"], res["ratio_vs_bare_dict"]])
    report.show(table(["calls", "ivrkit KB (tracemalloc)", "ivrkit KB (RSS)", "engine share KB (minus channel)",
                 "dict+task KB", "dict+task KB (RSS)", "bare dict KB", "bare dict KB (RSS)", "x dict+task",
                 "x bare dict"], rows))
    for r in report.results:
        print(f"target: < 50 KB per call at {r['calls']:,} calls: {'MET' if r['target_met'] else 'NOT MET'} "
              f"({r['ivrkit_tracemalloc_kb']:.1f} KB tracemalloc, {r['ivrkit_rss_kb']:.1f} KB RSS)")
    report.notes.append("RSS deltas come from separate runs without tracemalloc; at small N they are dominated "
                        "by allocator page granularity")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
