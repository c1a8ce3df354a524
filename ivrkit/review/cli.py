"""`ivrkit diff`: what a change to a flow does to callers (see `ivrkit.review.diff`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from ivrkit.cli_common import EXIT_OK, EXIT_USAGE, load_checked


@dataclass(frozen=True, slots=True)
class DiffArgs:
    old: str
    new: str


def run_diff(args: DiffArgs, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """What a change to a flow does to callers. 0 nothing, 1 changes listed, 2 trouble (as diff(1))."""
    from ivrkit.graph.model import build_graph
    from ivrkit.review.diff import diff

    out, err = out or sys.stdout, err or sys.stderr
    old, new = load_checked(args.old, err), load_checked(args.new, err)
    if old is None or new is None:
        return EXIT_USAGE
    lines = diff(old, build_graph(old), new, build_graph(new))
    if not lines:
        out.write(f"{args.old} -> {args.new}: no change a caller would notice\n")
        return EXIT_OK
    out.write(f"{args.old} -> {args.new}: {len(lines)} change{'s' if len(lines) != 1 else ''} for callers\n")
    out.writelines(line + "\n" for line in lines)
    return 1


def add_diff_parser(sub: Any) -> None:
    p = sub.add_parser(
        "diff", help="what a change to a flow does to callers (keys, routes, prompts, states, longer paths)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare two versions of a flow: keys and edges added, removed or re-routed, states added "
                    "or removed, prompts changed, states callers now need more steps to reach.",
        epilog="example:\n  git show main:flows/bank.yaml > /tmp/old.yaml && ivrkit diff /tmp/old.yaml flows/bank.yaml\n\n"
               "exit codes (as diff(1)): 0 no change for callers, 1 changes listed, 2 a flow is missing or\n"
               "broken (printed as by ivrkit check)")
    p.add_argument("old", metavar="OLD", help="the flow as it was")
    p.add_argument("new", metavar="NEW", help="the flow as it is now")
    p.set_defaults(args_type=DiffArgs, handler=run_diff, convert={})
