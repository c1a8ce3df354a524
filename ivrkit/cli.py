"""The `ivrkit` command line: thin argparse subcommands, each parsed into a dataclass and
handed to one function (the shape of LiveKit's `CliArgs` → `_run_worker`).

Adding a command: write `XArgs` (a dataclass), `run_x(args) -> int`, and a `_add_x(subparsers)`
that registers the parser and its `args_type`/`handler`; then list `_add_x` in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TextIO

from ivrkit.console.cli import add_console_parser
from ivrkit.errors import Issue, format_issues, issues_to_json
from ivrkit.flow.loader import check_flow
from ivrkit.flow.schema import schema_json


@dataclass(frozen=True, slots=True)
class CheckArgs:
    files: tuple[str, ...]
    json: bool = False
    check_hooks: bool = True


@dataclass(frozen=True, slots=True)
class SchemaArgs:
    indent: int = 2


def run_check(args: CheckArgs, out: TextIO | None = None) -> int:
    """Check each file; print every issue (mypy-style or JSON). 1 if any error, else 0."""
    out = out or sys.stdout
    issues: list[Issue] = []
    summaries: list[str] = []
    for path in args.files:
        result = check_flow(path, check_hooks=args.check_hooks)
        issues.extend(result.issues)
        if result.flow is not None and not result.issues:
            summaries.append(f"{path}: ok ({len(result.flow.states)} states)")
        elif result.flow is not None:
            summaries.append(f"{path}: ok, with warnings ({len(result.flow.states)} states)")
    if args.json:
        out.write(issues_to_json(issues) + "\n")
    else:
        text = format_issues(issues)
        if text:
            out.write(text + "\n")
        for line in summaries:
            out.write(line + "\n")
    return 1 if any(i.severity == "error" for i in issues) else 0


def run_schema(args: SchemaArgs, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    out.write(schema_json(args.indent) + "\n")
    return 0


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="check flow files and print every problem",
                       description="Load and check flow files; exit 1 if any has an error.")
    p.add_argument("files", nargs="+", metavar="FILE", help="flow YAML file(s)")
    p.add_argument("--json", action="store_true", help="print the issues as JSON (for editors and CI)")
    p.add_argument("--no-hooks", dest="check_hooks", action="store_false",
                   help="do not import hooks (when their dependencies are not installed here)")
    p.set_defaults(args_type=CheckArgs, handler=run_check, convert={"files": tuple})


def _add_schema(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of flow files (for editors)")
    p.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")
    p.set_defaults(args_type=SchemaArgs, handler=run_schema, convert={})


COMMANDS: list[Callable[[Any], None]] = [add_console_parser, _add_check, _add_schema]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivrkit", description="Phone menus (IVR) as YAML state machines on LiveKit.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    args_type = ns.args_type
    names = {f.name for f in fields(args_type)}
    values = {k: ns.convert.get(k, lambda v: v)(v) for k, v in vars(ns).items() if k in names}
    return int(ns.handler(args_type(**values)))


if __name__ == "__main__":
    sys.exit(main())
