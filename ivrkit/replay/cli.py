"""`ivrkit replay`: re-run a recorded call against a flow (see `ivrkit.replay`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from ivrkit.cli_common import EXIT_OK, EXIT_USAGE, load_checked, name_value


@dataclass(frozen=True, slots=True)
class ReplayArgs:
    trace: str
    flow: str
    variables: dict[str, str]
    keys_for: dict[str, str]
    horizon: float | None = None


def run_replay(args: ReplayArgs, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Replay a recorded call against a flow: 0 it matches, 1 it diverged (the block says where),
    2 the flow, the trace or an option cannot be used (masked keys without their digits too)."""
    import asyncio

    from ivrkit.errors import ReplayError
    from ivrkit.testing import FlowTester

    out, err = out or sys.stdout, err or sys.stderr
    flow = load_checked(args.flow, err, check_hooks=True)
    if flow is None:
        return EXIT_USAGE
    try:
        result = asyncio.run(FlowTester.replay(args.trace, flow, keys_for=args.keys_for, sets=args.variables,
                                               horizon=args.horizon))
    except ReplayError as exc:
        err.write(f"ivrkit replay: {exc}\n")
        return EXIT_USAGE
    out.write(dataclasses.replace(result, flow=args.flow).report() + "\n")
    return 1 if result.diverged else EXIT_OK


def _keys_for(item: str) -> tuple[str, str]:
    from ivrkit.channel import DTMF_KEYS

    state, sep, keys = item.partition("=")
    if not sep or not state or not keys or any(k not in DTMF_KEYS for k in keys.upper()):
        raise argparse.ArgumentTypeError(f"{item.partition('=')[0]}=...: write STATE=KEYS with keys 0-9 * # A-D, "
                                         "e.g. --keys-for pin=4321#")
    return state, keys.upper()


def add_replay_parser(sub: Any) -> None:
    p = sub.add_parser(
        "replay", help="re-run a recorded call against a flow (this version or a changed one); show where it diverges",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Replay a recorded call (a worker trace from --trace-dir, or ivrkit console --trace) on a virtual "
                    "clock: the caller's keys and hang-up go in when they did, relative to the prompt the caller "
                    "was hearing; prompts play as long as they did. The states, prompts and outcome are compared "
                    "with the recording; the first difference is printed with the records around it. Hooks run "
                    "for real. Sensitive keys are masked in traces and never unmasked: give them with --set or "
                    "--keys-for, or the replay refuses and says which.",
        epilog="examples:\n"
               "  ivrkit console flows/bank.yaml --keys '1,12345678#,wait 2s,4321,hangup' --trace call.jsonl\n"
               "  ivrkit replay call.jsonl flows/bank.yaml --set pin=4321\n"
               "  ivrkit replay traces/room-1--AJ_x.jsonl flows/bank.yaml --keys-for pin=1111#4321\n\n"
               "exit codes: 0 the replay matches the recording, 1 it diverged (printed), 2 the flow is missing\n"
               "or broken (printed as by ivrkit check), the trace is unreadable, or masked keys lack their digits")
    p.add_argument("trace", metavar="TRACE", help="a call's JSON-lines trace (worker --trace-dir file, or console --trace)")
    p.add_argument("flow", metavar="FLOW", help="the flow to replay it against")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="variables", type=name_value,
                   help="the value of a sensitive entry into NAME (e.g. pin=4321: each masked entry into pin), or "
                        "else a call variable to start with, as ivrkit console --set (repeatable)")
    p.add_argument("--keys-for", action="append", default=[], metavar="STATE=KEYS", dest="keys_for", type=_keys_for,
                   help="every masked key recorded in STATE, in order, e.g. pin=1111#4321 (repeatable)")
    p.add_argument("--horizon", type=float, metavar="S",
                   help="virtual seconds the call may run after the last recorded input before the replay hangs up "
                        "(default 300)")
    p.set_defaults(args_type=ReplayArgs, handler=run_replay, convert={"variables": dict, "keys_for": dict})
