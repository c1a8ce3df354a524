"""`ivrkit graph`: draw a flow (see `ivrkit.graph`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ivrkit.cli_common import EXIT_FLOW, EXIT_OK, EXIT_TOOL, EXIT_USAGE, load_checked
from ivrkit.errors import CoverageDataError, GraphvizError


@dataclass(frozen=True, slots=True)
class GraphArgs:
    flow: str
    output: str | None = None
    format: str | None = None
    coverage: str | None = None


def run_graph(args: GraphArgs, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Draw the flow: Mermaid to stdout, or the format `-o FILE`'s extension names."""
    from ivrkit.graph.model import build_graph
    from ivrkit.graph.render import FORMATS, draw

    out, err = out or sys.stdout, err or sys.stderr
    fmt = args.format
    if fmt is None and args.output is not None:
        fmt = FORMATS.get(Path(args.output).suffix.lower())
        if fmt is None:
            err.write(f"ivrkit graph: cannot tell the format of {args.output}: use .mmd, .dot, .svg or .png, or --format\n")
            return EXIT_USAGE
    if fmt == "png" and args.output in (None, "-"):
        err.write("ivrkit graph: PNG is binary: write it to a file with -o FILE.png\n")
        return EXIT_USAGE
    flow = load_checked(args.flow, err)
    if flow is None:
        return EXIT_FLOW
    graph = build_graph(flow)
    untested = None
    if args.coverage is not None:
        from ivrkit.coverage.data import CoverageData

        try:
            untested = CoverageData.read(args.coverage).untested(flow, graph, args.coverage)
        except CoverageDataError as exc:
            err.write(f"ivrkit graph: {exc}\n")
            return EXIT_USAGE
    try:
        data = draw(graph, fmt or "mermaid", untested)
    except GraphvizError as exc:  # GraphvizMissing too: its message says how to install it
        err.write(f"ivrkit graph: {exc}\n")
        return EXIT_TOOL
    if args.output is None or args.output == "-":
        out.write(data.decode())
        return EXIT_OK
    Path(args.output).write_bytes(data)
    err.write(f"ivrkit graph: wrote {args.output} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)\n")
    return EXIT_OK


def add_graph_parser(sub: Any) -> None:
    p = sub.add_parser(
        "graph", help="draw a flow: Mermaid, DOT, SVG or PNG (states, every labelled edge, untested edges)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw a flow: states shaped by kind, every edge labelled with what takes it.",
        epilog="examples:\n"
               "  ivrkit graph flows/bank.yaml                 # Mermaid text on stdout\n"
               "  ivrkit graph flows/bank.yaml -o bank.svg     # through Graphviz's dot\n"
               "  pytest --ivr-cov && ivrkit graph flows/bank.yaml --coverage .ivrkit-coverage.json -o bank.png\n\n"
               "exit codes: 0 drawn, 1 the flow has errors (printed as by ivrkit check), 2 bad options or\n"
               "coverage file, 3 Graphviz is missing (SVG/PNG only; the message says how to get it) or failed")
    p.add_argument("flow", metavar="FLOW", help="flow YAML file")
    p.add_argument("-o", "--output", metavar="FILE", help="write here; .mmd, .dot, .svg or .png picks the format (default: Mermaid on stdout)")
    p.add_argument("--format", choices=("mermaid", "dot", "svg", "png"), help="the format, whatever FILE is called")
    p.add_argument("--coverage", metavar="FILE",
                   help="coverage data written by `pytest --ivr-cov` (.ivrkit-coverage.json): untested edges in red, marked ✗")
    p.set_defaults(args_type=GraphArgs, handler=run_graph, convert={})
