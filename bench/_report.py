"""Shared helpers for every bench script: the machine header, statistics, tables, JSON.

Why one module: every figure in bench/README.md must say where it was measured and compare
with a baseline from the same run; keeping the header, the percentile rule and the table format
in one place makes the scripts' outputs comparable with each other.

Percentiles use the nearest-rank rule on the sorted samples (p99 of 100 samples is the 99th
smallest), so a reported p99 is always a value that was actually measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


# --- the machine -------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "ivrkit"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return head + ("+dirty(ivrkit/)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def _mem_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    python: str
    ivrkit_commit: str
    os: str
    mem_total_mb: int | None
    load_avg_1m: float
    when_utc: str

    @classmethod
    def here(cls) -> Machine:
        return cls(
            cpu=_cpu_model(),
            cores=os.cpu_count() or 0,
            python=f"{platform.python_implementation()} {platform.python_version()}",
            ivrkit_commit=_git_commit(),
            os=f"{platform.system()} {platform.release()}",
            mem_total_mb=_mem_total_mb(),
            load_avg_1m=round(os.getloadavg()[0], 2),
            when_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        )

    def header(self) -> str:
        return (f"machine: {self.cpu}, {self.cores} cores, {self.mem_total_mb} MB RAM, {self.os}\n"
                f"python: {self.python}   ivrkit commit: {self.ivrkit_commit}\n"
                f"run at: {self.when_utc} UTC, load average (1 min) at start: {self.load_avg_1m}")


# --- statistics --------------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of `samples`; a value that was really measured."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p99: float
    mean: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        return cls(n=len(samples), median=statistics.median(samples), p99=percentile(samples, 99),
                   mean=statistics.fmean(samples), minimum=min(samples), maximum=max(samples))


def ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def spread(values: Iterable[float]) -> tuple[float, float]:
    vals = list(values)
    return (min(vals), max(vals))


# --- output ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (also valid Markdown), right-aligned numbers."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    def line(vals: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths))) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(list(headers)), sep, *(line(r) for r in cells)])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class Report:
    """What a bench script produces: the machine, its settings, named result rows and notes."""

    bench: str
    title: str
    machine: Machine = field(default_factory=Machine.here)
    settings: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    command: str = ""
    tables: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.command:
            self.command = " ".join([_rel(sys.executable), *[_rel(a) for a in sys.argv]])

    def print_header(self) -> None:
        print(f"== {self.title}")
        print(self.machine.header())
        print(f"command: {self.command}")
        if self.settings:
            print("settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
        sys.stdout.flush()

    def show(self, text: str) -> None:
        """Print a table and keep it for bench/README.md (bench/table.py embeds it)."""
        print(text)
        self.tables.append(text)

    def to_json(self) -> dict[str, Any]:
        return {"bench": self.bench, "title": self.title, "machine": asdict(self.machine),
                "command": self.command, "settings": self.settings, "results": self.results,
                "notes": self.notes, "tables": self.tables}

    def finish(self, args: argparse.Namespace) -> None:
        """Print notes and the JSON line; write the JSON file unless smoke or --no-save."""
        for note in self.notes:
            print(f"note: {note}")
        data = self.to_json()
        print("JSON " + json.dumps(data, sort_keys=True))
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        elif not args.smoke and not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{self.bench}.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            print(f"saved: {_rel(str(RESULTS / (self.bench + '.json')))}")


def _rel(arg: str) -> str:
    try:
        return str(Path(os.path.abspath(arg)).relative_to(REPO))
    except (ValueError, OSError):
        return arg


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every bench script takes."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes, a few seconds: proves the script runs (the test suite uses this); "
                        "its figures mean nothing")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/<name>.json")
    return p


def us(seconds: float) -> float:
    return seconds * 1e6


def ms(seconds: float) -> float:
    return seconds * 1e3
