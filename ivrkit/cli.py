"""The `ivrkit` command line: thin argparse subcommands, each parsed into a dataclass and
handed to one function (the shape of LiveKit's `CliArgs` → `_run_worker`).

Adding a command: write `XArgs` (a dataclass), `run_x(args) -> int`, and an
`add_x_parser(subparsers)` that registers the parser and its `args_type`/`handler` — beside the
concept it serves (`ivrkit/graph/cli.py`, `ivrkit/replay/cli.py`, `ivrkit/review/cli.py`,
`ivrkit/console/cli.py`), with what commands share from `ivrkit.cli_common` — then list it in
`COMMANDS` here. Nothing imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from ivrkit.cli_common import EXIT_FLOW, EXIT_OK, EXIT_USAGE
from ivrkit.console.cli import add_console_parser
from ivrkit.errors import CoverageDataError, Issue, format_issues, issues_to_json
from ivrkit.flow.loader import check_flow
from ivrkit.flow.schema import schema_json
from ivrkit.graph.cli import add_graph_parser
from ivrkit.replay.cli import add_replay_parser
from ivrkit.report.cli import add_report_parser
from ivrkit.review.cli import add_diff_parser


@dataclass(frozen=True, slots=True)
class CheckArgs:
    files: tuple[str, ...]
    json: bool = False
    check_hooks: bool = True
    report: bool = False
    coverage: str | None = None


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
    failed = any(i.severity == "error" for i in issues)
    if args.report or args.coverage:
        reported = _review(args, out)
        if reported != EXIT_OK:
            return reported
    return 1 if failed else 0


def _review(args: CheckArgs, out: TextIO) -> int:
    """`check --report`: the reviewer's report of each flow that loaded (after the issues)."""
    from ivrkit.coverage.data import CoverageData
    from ivrkit.graph.model import build_graph
    from ivrkit.review.report import report

    try:
        data = CoverageData.read(args.coverage) if args.coverage else None
    except CoverageDataError as exc:
        sys.stderr.write(f"ivrkit check: {exc}\n")
        return EXIT_USAGE
    for path in args.files:
        flow = check_flow(path, check_hooks=False).flow
        if flow is None:
            continue
        graph = build_graph(flow)
        untested = unvisited = None
        if data is not None:
            try:
                untested, unvisited = data.untested(flow, graph, str(args.coverage)), data.unvisited(flow, str(args.coverage))
            except CoverageDataError as exc:
                sys.stderr.write(f"ivrkit check: {exc}\n")
                return EXIT_USAGE
        out.write("\n" + report(flow, graph, untested=untested, unvisited=unvisited) + "\n")
    return EXIT_OK


def run_schema(args: SchemaArgs, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    out.write(schema_json(args.indent) + "\n")
    return 0


@dataclass(frozen=True, slots=True)
class NewArgs:
    name: str
    directory: str = "."


def run_new(args: NewArgs, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Scaffold a flow, its hooks and its tests; print the three commands to try them."""
    from ivrkit import scaffold

    out, err = out or sys.stdout, err or sys.stderr
    base = Path(args.directory)
    try:
        files = scaffold.write(args.name, base)
    except ValueError as exc:
        err.write(f"ivrkit new: {exc}\n")
        return EXIT_USAGE
    except FileExistsError as exc:
        err.write(f"ivrkit new: {exc}; choose another name or --dir\n")
        return EXIT_FLOW
    shown = [str(base / p) if args.directory != "." else str(p) for p in (*files.paths, files.ini) if p is not None]
    flow, _, test = shown[:3]
    commands = [(f"ivrkit console {flow}", "call it from the terminal"),
                (f"pytest {test} --ivr-cov", "its tests, and which edges of the flow they take (all)"),
                (f"ivrkit graph {flow} -o {args.name}.svg", "a picture of it")]
    width = max(len(c) for c, _ in commands)
    out.write(f"created {', '.join(shown)}\n\n")
    out.writelines(f"  {c:<{width}}  # {why}\n" for c, why in commands)
    return EXIT_OK


def _add_new(sub: Any) -> None:
    p = sub.add_parser(
        "new", help="scaffold a flow, its hooks and tests that take every edge",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write flows/NAME.yaml, hooks/NAME_hooks.py and tests/test_NAME.py: a menu, a validated "
                    "entry, a transfer, an error state, and FlowTester tests with 100% flow edge coverage.",
        epilog="example:\n  ivrkit new pizza-orders && pytest tests/test_pizza_orders.py --ivr-cov\n\n"
               "exit codes: 0 written, 1 a file exists (nothing written), 2 a bad name")
    p.add_argument("name", metavar="NAME", help="the flow's name: lower-case letters, digits, - and _")
    p.add_argument("--dir", dest="directory", default=".", help="the project folder to write into (default: here)")
    p.set_defaults(args_type=NewArgs, handler=run_new, convert={})


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="check flow files and print every problem (--report: a reviewer's report)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Load and check flow files; exit 1 if any has an error.",
                       epilog="examples:\n  ivrkit check flows/*.yaml\n"
                              "  ivrkit check --report flows/bank.yaml --coverage .ivrkit-coverage.json\n\n"
                              "exit codes: 0 no errors (warnings allowed), 1 errors, 2 an unreadable coverage file")
    p.add_argument("files", nargs="+", metavar="FILE", help="flow YAML file(s)")
    p.add_argument("--json", action="store_true", help="print the issues as JSON (for editors and CI)")
    p.add_argument("--no-hooks", dest="check_hooks", action="store_false",
                   help="do not import hooks (when their dependencies are not installed here)")
    p.add_argument("--report", action="store_true",
                   help="also print a reviewer's report: size, deepest paths to a person and to a hang-up, crowded "
                        "menus, missing retry prompts, where sensitive input flows")
    p.add_argument("--coverage", metavar="FILE",
                   help="with --report (implied): the states and edges no test reaches, from `pytest --ivr-cov` data")
    p.set_defaults(args_type=CheckArgs, handler=run_check, convert={"files": tuple})


def _add_schema(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of flow files (for editors)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  ivrkit schema > flow.schema.json   # then point your editor's YAML "
                              "schema setting at it\n\nexit codes: 0")
    p.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")
    p.set_defaults(args_type=SchemaArgs, handler=run_schema, convert={})


@dataclass(frozen=True, slots=True)
class BakeArgs:
    files: tuple[str, ...]
    directory: str
    voice: str | None = None
    tts: str | None = None


def run_prompts_bake(args: BakeArgs, out: TextIO | None = None) -> int:
    """Bake every fixed prompt text of the flows into the worker's prompt cache folder.

    Each text is synthesized with its flow's TTS plugin (`tts:` in the flow, else `--tts`, as the
    worker chooses), or offline with its state's voice (else `--voice`, else the default), so
    the worker (`--prompt-cache DIR` / IVRKIT_PROMPT_CACHE) finds it under the same key.
    """
    from ivrkit.flow.loader import load_flow
    from ivrkit.voice.cache import PromptCache, bake_texts, is_fixed_text
    from ivrkit.voice.speech import DEFAULT_VOICE, EspeakVoice

    out = out or sys.stdout
    by_voice: dict[str, list[str]] = {}
    by_plugin: dict[str, tuple[Any, list[str]]] = {}  # spec -> (a flow naming it, texts)
    skipped = 0
    for path in args.files:
        flow = load_flow(path)
        spec = str(flow.tts) if flow.tts is not None else args.tts
        for state in flow.states.values():
            voice = state.settings.voice or args.voice or DEFAULT_VOICE
            for prompt in state.prompts():
                for part in prompt.parts:
                    if part.kind != "text" or not part.value.strip():
                        continue
                    if not is_fixed_text(part.value):
                        skipped += 1
                    elif spec:
                        by_plugin.setdefault(spec, (flow, []))[1].append(part.value)
                    else:
                        by_voice.setdefault(voice, []).append(part.value)
    total = 0
    for voice, texts in by_voice.items():
        total += len(bake_texts(texts, EspeakVoice(voice), args.directory))
    for spec, (flow, texts) in by_plugin.items():
        total += _bake_with_plugin(flow, spec, texts, PromptCache(args.directory))
    out.write(f"{total} prompt text(s) baked into {args.directory}; {skipped} templated text(s) left to call time\n")
    return 0


def _bake_with_plugin(flow: Any, spec: str, texts: list[str], cache: Any) -> int:
    """Speak `texts` once with the plugin `spec` (outside a worker: livekit's http context)."""
    import asyncio

    from livekit.agents.utils import http_context

    from ivrkit.livekit.job import make_tts
    from ivrkit.livekit.prompt_audio import bake_with_plugin

    async def run() -> int:
        async with http_context.open():
            plugin = make_tts(flow, spec)
            try:
                return len(await bake_with_plugin(texts, plugin, spec, cache))
            finally:
                await plugin.aclose()

    return asyncio.run(run())


def _add_prompts(sub: Any) -> None:
    p = sub.add_parser("prompts", help="bake prompts into audio files ahead of calls (no TTS latency or cost per call)")
    psub = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    r = psub.add_parser("bake", help="synthesize every fixed prompt text of the flows into the prompt cache",
                        description="Synthesize every fixed prompt text into a cache folder keyed by text and voice; "
                                    "start the worker with --prompt-cache DIR to play them.",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="example:\n  ivrkit prompts bake flows/*.yaml --dir /srv/prompt-cache && "
                               "ivrkit start flows/ --prompt-cache /srv/prompt-cache\n\nexit codes: 0 baked")
    r.add_argument("files", nargs="+", metavar="FILE", help="flow YAML file(s)")
    r.add_argument("--dir", dest="directory", default="prompt-cache", help="cache folder (default ./prompt-cache)")
    r.add_argument("--voice", help="voice for states that set none (default en-us)")
    r.add_argument("--tts", help="module:factory of a livekit-agents TTS, for flows without tts: "
                                 "(the worker's --tts); default: the offline eSpeak NG voice")
    r.set_defaults(args_type=BakeArgs, handler=run_prompts_bake, convert={"files": tuple})


def _add_worker(sub: Any) -> None:
    from ivrkit.livekit.worker import add_worker_arguments

    start = sub.add_parser("start", help="run the LiveKit worker (production): LIVEKIT_URL/API_KEY/API_SECRET",
                           description="Answer calls dispatched to this agent with the given flow(s), under a guard "
                                       "that hangs up a dead worker's callers (docs/deploy.md).",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="example:\n  LIVEKIT_URL=wss://... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... \\\n"
                                  "    ivrkit start flows/ --route number:+15550100=acme-bank --max-calls 10\n\n"
                                  "exit codes: 0 stopped (SIGTERM: calls drained), 1 flow errors or the server is "
                                  "unreachable,\n2 missing or bad LiveKit settings or routes")
    add_worker_arguments(start)
    start.set_defaults(func=_run_start)
    dev = sub.add_parser("dev", help="run the LiveKit worker, reloading on flow/hook changes, with the browser dial pad",
                         description="Development worker: restarts when a flow, audio file or hook changes, "
                                     "and serves the browser dial pad to call your flow without a phone line.",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         epilog="examples:\n  ivrkit dev flows/ --local-server    # a livekit-server of its own; "
                                "open the dial pad address it prints\n"
                                "  LIVEKIT_URL=ws://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret "
                                "ivrkit dev flows/\n\nexit codes: as start")
    add_worker_arguments(dev, dev=True)
    dev.add_argument("--dialpad-port", type=int, default=None, help="dial pad port (default 8765; 0 = any free port)")
    dev.add_argument("--no-dialpad", action="store_true", help="do not serve the browser dial pad")
    dev.add_argument("--local-server", action="store_true",
                     help="start a livekit-server of its own for this session (signalling on 127.0.0.1, media on "
                          "--local-server-ip); LIVEKIT_URL/API_KEY/API_SECRET are then not needed")
    dev.add_argument("--local-server-ip", metavar="ADDR", default=os.environ.get("IVRKIT_LOCAL_SERVER_IP"),
                     help="non-loopback address of this machine the browser's media goes to (env "
                          "IVRKIT_LOCAL_SERVER_IP; default: the address of the default route's interface)")
    dev.add_argument("--local-server-port", type=int, default=7880, metavar="PORT",
                     help="its port on 127.0.0.1 (default 7880; ICE/TCP uses PORT+1)")
    dev.add_argument("--local-server-udp", type=_port_range, default=(50000, 50099), metavar="FIRST-LAST",
                     help="its UDP ports for media (default 50000-50099)")
    dev.set_defaults(func=_run_dev)


def _run_start(ns: argparse.Namespace) -> int:
    from ivrkit.livekit.worker import options_from_args, run_worker

    run_worker(options_from_args(ns, dev=False))
    return 0


def _run_dev(ns: argparse.Namespace) -> int:
    from ivrkit.livekit.local_server import LocalServer, LocalServerError

    local: LocalServer | None = None
    if ns.local_server:
        try:
            local = _start_local_server(ns)
        except LocalServerError as exc:
            print(f"ivrkit dev: {exc}", file=sys.stderr, flush=True)
            return 2
    try:
        return _run_dev_worker(ns)
    finally:
        if local is not None:
            local.stop()


def _port_range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    if not (sep and first.isdigit() and last.isdigit() and 0 < int(first) <= int(last) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r}: write FIRST-LAST, e.g. 50000-50099")
    return int(first), int(last)


def _start_local_server(ns: argparse.Namespace) -> Any:
    """Start `--local-server` and point the worker and the dial pad at it (the flags win over
    any LIVEKIT_* in the environment: this session's server is the one meant)."""
    from ivrkit.livekit.local_server import API_KEY, LocalServer, LocalServerOptions, find_binary, media_address

    opts = LocalServerOptions(media_ip=media_address(ns.local_server_ip), port=ns.local_server_port,
                              tcp_port=ns.local_server_port + 1, udp_range=ns.local_server_udp)
    server = LocalServer(opts, find_binary())
    server.start()
    print(f"ivrkit dev: local livekit-server at {opts.url} (media on {opts.media_ip}, UDP "
          f"{opts.udp_range[0]}-{opts.udp_range[1]}, TCP {opts.tcp_port}; api key {API_KEY}); "
          f"log {server.log_path}", file=sys.stderr, flush=True)
    ns.url, ns.api_key, ns.api_secret = opts.url, API_KEY, opts.api_secret
    return server


def _run_dev_worker(ns: argparse.Namespace) -> int:
    from ivrkit.dialpad.server import DEFAULT_PORT, BackgroundDevServer, DevServerError, DevServerOptions
    from ivrkit.livekit.worker import options_from_args, run_worker

    opts = options_from_args(ns, dev=True)
    dialpad: BackgroundDevServer | None = None
    if not ns.no_dialpad and opts.url and opts.api_key and opts.api_secret:
        port = DEFAULT_PORT if ns.dialpad_port is None else ns.dialpad_port
        try:
            dialpad = BackgroundDevServer(DevServerOptions(
                livekit_url=opts.url, api_key=opts.api_key, api_secret=opts.api_secret, port=port,
                agent_name=opts.agent_name or None, flows=opts.path,
            ))
            print(f"ivrkit dev: dial pad at {dialpad.start()}", file=sys.stderr, flush=True)
        except DevServerError as exc:
            dialpad = None
            print(f"ivrkit dev: no dial pad: {exc}", file=sys.stderr, flush=True)
    try:
        run_worker(opts)
    finally:
        if dialpad is not None:
            dialpad.stop()
    return 0


def _add_dialpad(sub: Any) -> None:
    from ivrkit.dialpad.server import add_dialpad_parser

    add_dialpad_parser(sub)


COMMANDS: list[Callable[[Any], None]] = [
    add_console_parser, _add_new, _add_check, add_graph_parser, add_diff_parser, add_replay_parser, add_report_parser, _add_schema, _add_prompts, _add_worker, _add_dialpad,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivrkit", description="Phone menus (IVR) as YAML state machines on LiveKit.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if hasattr(ns, "func"):  # adapter commands that take the parsed namespace as it is
        return int(ns.func(ns) or 0)
    args_type = ns.args_type
    names = {f.name for f in fields(args_type)}
    values = {k: ns.convert.get(k, lambda v: v)(v) for k, v in vars(ns).items() if k in names}
    return int(ns.handler(args_type(**values)))


if __name__ == "__main__":
    sys.exit(main())
