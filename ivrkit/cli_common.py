"""What every `ivrkit` command shares: exit codes, reading a flow the way `ivrkit check` reports
it, and NAME=VALUE options.

Each command lives beside its concept (`ivrkit.graph.cli`, `ivrkit.replay.cli`,
`ivrkit.review.cli`, `ivrkit.console.cli`) and `ivrkit.cli` only assembles them; this module is
what they have in common, so none of them imports `ivrkit.cli`.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ivrkit.errors import format_issues
from ivrkit.flow.loader import check_flow
from ivrkit.flow.model import Flow

#: Exit codes shared by the commands (each command's --help and the README's table list its own).
EXIT_OK, EXIT_FLOW, EXIT_USAGE, EXIT_TOOL = 0, 1, 2, 3


def load_checked(path: str, err: TextIO | None = None, *, check_hooks: bool = False) -> Flow | None:
    """The flow at `path`, or None after printing its problems exactly as `ivrkit check` does
    (file:line:col, caret, note). Commands that read a flow use this, so a missing or broken
    file looks the same everywhere; their exit code is then `EXIT_FLOW`."""
    err = err or sys.stderr
    result = check_flow(path, check_hooks=check_hooks)
    if result.flow is None or result.errors:
        err.write(format_issues(result.issues) + "\n")
        return None
    return result.flow


def name_value(item: str) -> tuple[str, str]:
    """An argparse type for `--set NAME=VALUE`."""
    name, sep, value = item.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{item!r}: write NAME=VALUE, e.g. --set tier=gold")
    return name, value
