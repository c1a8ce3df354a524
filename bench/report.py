"""Row 7: `ivrkit report` over 10,000 worker call-trace files vs a plain JSON-lines parse of them.

    .venv/bin/python bench/report.py            # full run (writes bench/results/report.json)
    .venv/bin/python bench/report.py --smoke    # 200 calls, one repetition

The files: real calls of flows/bank.yaml (transfers, hang-ups in the menu and at the PIN, a
wrong key, no input until goodbye, a wrong masked PIN) run on a FlowTester and written the way the
worker writes them (`call` record, the call's records by `TraceCopier`, `job_end`), then copied
round-robin under fresh room names to N files in one folder — the shape of a busy worker's
`--trace-dir`.

ivrkit: `run_report(ReportArgs([folder]))` in-process — walk the folder, read each file into a
`Recording`, fold it into its flow's counters (edges too: the flow is given, as `--flows`
gives it), print the text report. Baseline, same files, same run, interleaved: for each file, for
each line, `json.loads(line)` — the floor for any reader of these files that parses them at all.
One untimed warm-up pass of both first (the page cache holds the files for both).
"""

from __future__ import annotations

import asyncio
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from _report import REPO, Report, Summary, parser, ratio, table

TARGET_10K_S = 10.0


async def _templates(directory: Path) -> list[str]:
    """The text of each template call's trace file."""
    from ivrkit.channel import CallerInfo
    from ivrkit.livekit.trace import TraceCopier, TraceWriter
    from ivrkit.testing import FlowTester

    async def call(n: int, keys: list[tuple[float, str]], end: float, hangup: bool) -> str:
        async with FlowTester(REPO / "flows" / "bank.yaml", caller=CallerInfo(number="+15550100")) as t:
            for wait, digits in keys:
                await t.advance(wait)
                await t.press(digits, gap=0.3)
            await t.advance(end)
            if hangup:
                await t.hangup()
        writer = TraceWriter(directory, f"t{n}", "AJ", start=0.0)
        writer.write("call", at=0.0, clock=0.0, room=f"t{n}", caller="sip_+15550100", sip=True, flow="acme-bank",
                     route="default flow", caller_info={"number": "+15550100"})
        TraceCopier(writer, t.call.trace).copy()
        writer.write("job_end", at=t.call.trace.events[-1].t + 0.1, reason="caller left")
        writer.close()
        return writer.path.read_text()

    return [
        await call(0, [(1.5, "0")], 10, False),                                   # straight to an agent
        await call(1, [(1.5, "9"), (5, "0")], 10, False),                         # a wrong key, then the agent
        await call(2, [], 33, True),                                              # silent, hangs up in main
        await call(3, [(1.5, "1"), (0, "12345678#")], 2, True),                   # hangs up at the PIN
        await call(4, [(1.5, "1"), (0, "12345678#"), (0, "9999")], 1, True),      # a wrong PIN, then gone
        await call(5, [], 120, False),                                            # no input until goodbye
        await call(6, [(1.5, "2")], 20, True),                                    # lost card, back in main
    ]


def _plain(folder: Path) -> int:
    lines = 0
    for path in sorted(folder.iterdir()):
        with path.open(encoding="utf-8") as f:
            for line in f:
                json.loads(line)
                lines += 1
    return lines


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--calls", type=int, default=10_000, help="trace files to generate")
    p.add_argument("--reps", type=int, default=3, help="timed passes of each")
    args = p.parse_args()
    calls, reps = (200, 1) if args.smoke else (args.calls, args.reps)

    from ivrkit.flow.loader import load_flow
    from ivrkit.report.aggregate import aggregate
    from ivrkit.report.text import report_text

    report = Report("report", "Row 7: ivrkit report over worker trace files vs a plain json.loads loop")
    report.settings = {"calls": calls, "reps": reps, "flow": "flows/bank.yaml, 7 template calls copied round-robin"}
    report.print_header()
    flow = load_flow(REPO / "flows" / "bank.yaml")
    with tempfile.TemporaryDirectory(prefix="ivrkit-bench-report-") as tmp:
        folder = Path(tmp) / "traces"
        folder.mkdir()
        templates = asyncio.run(_templates(Path(tmp) / "templates"))
        for n in range(calls):
            (folder / f"room-{n:06d}--AJ_{n}.jsonl").write_text(templates[n % len(templates)])
        size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        lines = _plain(folder)
        aggregate([folder], {flow.name: flow})
        t_report: list[float] = []
        t_plain: list[float] = []
        for _ in range(reps):
            t0 = time.perf_counter()
            result = aggregate([folder], {flow.name: flow})
            text = report_text(result)
            t_report.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _plain(folder)
            t_plain.append(time.perf_counter() - t0)
        figures = result.flows["acme-bank"]
        assert figures.calls == calls and text.startswith(f"flow acme-bank: {calls} calls")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median, floor = Summary.of(t_report).median, Summary.of(t_plain).median
    row = {"calls": calls, "lines": lines, "mb": round(size_mb, 1), "reps": reps,
           "report_s_median": round(median, 3), "report_s_max": round(max(t_report), 3),
           "json_loads_s_median": round(floor, 3), "ratio_vs_json_loads": ratio(median, floor),
           "calls_per_s": round(calls / median), "peak_rss_mb": round(rss_mb, 1)}
    if calls == 10_000:
        row["target"] = f"< {TARGET_10K_S:.0f} s"
        row["target_met"] = median < TARGET_10K_S
    report.results.append(row)
    report.show(table(["calls", "lines", "MB", "reps", "ivrkit report s (median)", "max s", "json.loads loop s",
                       "x json.loads", "calls/s", "peak RSS MB"],
                      [[calls, lines, row["mb"], reps, median, max(t_report), floor, row["ratio_vs_json_loads"],
                        row["calls_per_s"], row["peak_rss_mb"]]]))
    report.notes.append("peak RSS is the whole process's (FlowTester, flow, both readers); it does not grow with "
                        "calls because each file is folded in and dropped")
    if "target_met" in row:
        print(f"target: 10,000 calls in seconds (< {TARGET_10K_S:.0f} s): {'MET' if row['target_met'] else 'NOT MET'} "
              f"({median:.1f} s median)")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
