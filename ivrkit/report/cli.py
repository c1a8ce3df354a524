"""`ivrkit report`: where callers give up, from the worker's trace files (see `ivrkit.report`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ivrkit.cli_common import EXIT_OK, EXIT_USAGE, load_checked
from ivrkit.flow.model import Flow

#: No trace file was found under the paths given (or none of the files was a call trace).
EXIT_NO_TRACE = 1


@dataclass(frozen=True, slots=True)
class ReportArgs:
    paths: list[str]
    flows: str | None = None
    html: str | None = None


def run_report(args: ReportArgs, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Read every trace under the paths once, print the figures per flow, and write the page."""
    from ivrkit.report.aggregate import aggregate
    from ivrkit.report.text import report_text

    out, err = out or sys.stdout, err or sys.stderr
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        err.write(f"ivrkit report: no such file or folder: {', '.join(missing)}\n")
        return EXIT_USAGE
    flows: dict[str, Flow] = {}
    if args.flows is not None:
        loaded = _flows(Path(args.flows), err)
        if loaded is None:
            return EXIT_USAGE
        flows = loaded
    report = aggregate(args.paths, flows)
    if not report.flows:
        if report.skipped_count:
            err.write(report_text(report))
        err.write(f"ivrkit report: no call trace (*.jsonl from the worker's --trace-dir) under {' '.join(args.paths)}\n")
        return EXIT_NO_TRACE
    out.write(report_text(report))
    if args.html is not None:
        from ivrkit.report.html import report_html

        Path(args.html).write_text(report_html(report, flows), encoding="utf-8")
        err.write(f"ivrkit report: wrote {args.html}\n")
    return EXIT_OK


def _flows(path: Path, err: TextIO) -> dict[str, Flow] | None:
    """The flows by name behind `--flows` (a file, or a folder's top-level YAML files, as the
    worker takes them), or None after printing why not: a missing path, or a flow's problems as
    `ivrkit check` prints them. A broken flow stops the report rather than drawing half of it."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
    if not path.exists() or not files:
        err.write(f"ivrkit report: --flows {path}: no flow file or folder of flows there\n")
        return None
    flows: dict[str, Flow] = {}
    for file in files:
        flow = load_checked(str(file), err)
        if flow is None:
            err.write(f"ivrkit report: --flows {path}: {file} has errors (above)\n")
            return None
        flows[flow.name] = flow
    return flows


def add_report_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="where callers give up: per-flow drop-off, no-match/no-input, transfers, from worker traces",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read the worker's per-call trace files (--trace-dir) once and print, per flow: calls,\n"
                    "containment, transfer rate, hang-ups per state, no-input/no-match per state, invalid keys,\n"
                    "median time to each end. Masked digits stay masked.",
        epilog="examples:\n"
               "  ivrkit report traces/\n"
               "  ivrkit report traces/ --flows flows/ --html report.html   # the flow's picture, arrows by traffic\n\n"
               "exit codes: 0 reported, 1 no call trace found, 2 bad options (a path or --flows missing or broken)")
    p.add_argument("paths", metavar="PATH", nargs="+", help="trace files, or folders searched for *.jsonl")
    p.add_argument("--flows", metavar="DIR", help="the worker's flow file or folder: names menus and draws the picture")
    p.add_argument("--html", metavar="FILE", help="also write one self-contained HTML page")
    p.set_defaults(args_type=ReportArgs, handler=run_report, convert={})
