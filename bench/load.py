"""Row 2: time to load + check a generated flow of 10 / 100 / 1,000 / 5,000 states.

    .venv/bin/python bench/load.py            # full run (writes bench/results/load.json)
    .venv/bin/python bench/load.py --smoke    # 10 and 100 states, one repetition

ivrkit: `ivrkit.flow.loader.load_flow(path)` — read, compose YAML with positions (libyaml's
CSafeLoader composer when available), build the model, run every load-time check
(unknown/unreachable states, spin loops, templates, ...). Also shown: building the shared
`FlowMachine` from the loaded flow (the other once-per-flow cost a worker pays at start), and
load+check with the garbage collector off (how much of the growth is CPython's GC walking a
large young heap, which the baselines suffer from too).

Baselines, same file, same run, interleaved with the ivrkit runs:
- `yaml.load(text, Loader=yaml.CSafeLoader)` — plain safe_load with libyaml: the floor (no
  loader can be faster than parsing the text into Python objects once);
- `yaml.compose(text, Loader=yaml.CSafeLoader)` — nodes with positions, the loader's parse step;
- `yaml.safe_load` (pure-Python PyYAML), for scale.
Each size gets one untimed warm-up pass of every variant first. Growth: time(n) / time(prev n);
linear growth is 10x per 10x states.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _flows import flow_yaml
from _report import Report, Summary, ms, parser, ratio, table

TARGET_1000_S = 1.0


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--sizes", default="10,100,1000,5000", help="comma-separated state counts")
    p.add_argument("--reps", type=int, default=5, help="repetitions per size (3 for sizes > 1,000)")
    args = p.parse_args()
    sizes = [10, 100] if args.smoke else [int(s) for s in args.sizes.split(",")]
    reps_for = (lambda n: 1) if args.smoke else (lambda n: args.reps if n <= 1000 else max(3, args.reps // 2))

    from ivrkit.flow.loader import load_flow
    try:
        from ivrkit.machine import FlowMachine
    except ImportError:
        FlowMachine = None  # type: ignore[assignment,misc]

    report = Report("load", "Row 2: flow load + check time vs plain yaml safe_load (libyaml)")
    report.settings = {"sizes": sizes, "reps": {n: reps_for(n) for n in sizes},
                       "flow_shape": "bench/_flows.py blocks of 5: menu, collect, goto, say, goodbye"}
    report.print_header()

    rows = []
    prev: tuple[int, float, float] | None = None
    with tempfile.TemporaryDirectory(prefix="ivrkit-bench-load-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"generated-{n}.yaml"
            path.write_text(flow_yaml(n))
            t_yaml: list[float] = []
            t_cyaml: list[float] = []
            t_load: list[float] = []
            t_machine: list[float] = []
            t_compose: list[float] = []
            t_nogc: list[float] = []
            yaml.safe_load(path.read_text()); yaml.compose(path.read_text(), Loader=yaml.CSafeLoader)
            load_flow(path)
            for _ in range(reps_for(n)):
                gc.collect()
                t0 = time.perf_counter()
                data = yaml.safe_load(path.read_text())
                t_yaml.append(time.perf_counter() - t0)
                assert len(data["states"]) == n
                gc.collect()
                t0 = time.perf_counter()
                yaml.compose(path.read_text(), Loader=yaml.CSafeLoader)
                t_compose.append(time.perf_counter() - t0)
                gc.collect()
                t0 = time.perf_counter()
                yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
                t_cyaml.append(time.perf_counter() - t0)
                gc.collect()
                t0 = time.perf_counter()
                flow = load_flow(path)
                t_load.append(time.perf_counter() - t0)
                assert len(flow.states) == n
                gc.collect()
                gc.disable()
                try:
                    t0 = time.perf_counter()
                    load_flow(path)
                    t_nogc.append(time.perf_counter() - t0)
                finally:
                    gc.enable()
                if FlowMachine is not None:
                    gc.collect()
                    t0 = time.perf_counter()
                    FlowMachine(flow)
                    t_machine.append(time.perf_counter() - t0)
            load = Summary.of(t_load).median
            floor = Summary.of(t_cyaml).median
            growth = None
            if prev is not None:
                growth = f"{load / prev[1]:.1f}x (safe_load {floor / prev[2]:.1f}x) per {n / prev[0]:.0f}x"
            prev = (n, load, floor)
            result = {
                "states": n, "file_kb": round(path.stat().st_size / 1024, 1), "reps": len(t_load),
                "load_check_ms_median": ms(load), "load_check_ms_max": ms(max(t_load)),
                "load_check_gc_off_ms_median": ms(Summary.of(t_nogc).median),
                "csafe_load_ms_median": ms(floor), "ratio_vs_csafe_load": ratio(load, floor),
                "ccompose_ms_median": ms(Summary.of(t_compose).median),
                "pure_python_safe_load_ms_median": ms(Summary.of(t_yaml).median),
                "machine_build_ms_median": ms(Summary.of(t_machine).median) if t_machine else None,
                "us_per_state": load / n * 1e6, "growth": growth,
            }
            if n == 1000:
                result["target"] = f"< {TARGET_1000_S:.0f} s"
                result["target_met"] = load < TARGET_1000_S
            report.results.append(result)
            rows.append([n, result["file_kb"], result["reps"], result["load_check_ms_median"],
                         result["load_check_ms_max"], result["load_check_gc_off_ms_median"],
                         result["csafe_load_ms_median"], result["ratio_vs_csafe_load"], result["ccompose_ms_median"],
                         result["pure_python_safe_load_ms_median"], result["machine_build_ms_median"],
                         result["us_per_state"], growth or "-"])
            print(f"  {n} states done", file=sys.stderr, flush=True)
    report.show(table(["states", "file KB", "reps", "load+check ms (median)", "max ms", "gc off ms",
                 "safe_load (libyaml) ms", "x safe_load", "compose (libyaml) ms", "safe_load (pure) ms",
                 "FlowMachine ms", "µs/state", "growth"], rows))
    if FlowMachine is None:
        report.notes.append("ivrkit.machine not importable: FlowMachine build time not measured")
    for r in report.results:
        if "target_met" in r:
            print(f"target: 1,000 states load+check < 1 s: {'MET' if r['target_met'] else 'NOT MET'} "
                  f"({r['load_check_ms_median']:.0f} ms median)")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
