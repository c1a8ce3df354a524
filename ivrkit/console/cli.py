"""`ivrkit console [FLOW]`: options, and the one function that runs a console call.

Parsing and running are separate (as in livekit-agents' CLI): `add_console_parser(subparsers)`
declares the options, `options_from_args(ns)` turns them into a `ConsoleOptions` dataclass,
and `run_console(opts) -> int` runs one call and returns the exit code:

    0  the call ran to its end (the flow hung up, transferred, or the caller hung up)
    1  the flow file (or the --far-end file) could not be loaded or failed its checks (errors
       printed, mypy-style)
    2  bad options or a bad key script (message says what to write instead)
    3  the call ended on the error path (a hook failed, a state could not run: see stderr)

With no FLOW it calls the embedded demo (`ivrkit/defaults/demo.yaml`): the README's quick
start, which needs no server, no API key and no file of the user's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from ivrkit.call import CallResult
from ivrkit.cli_common import name_value
from ivrkit.clock import Clock, LoopClock
from ivrkit.console.audio import AudioUnavailable, CallRecorder, PromptSynthesizer, Speaker, open_soundcard
from ivrkit.console.channel import CONSOLE_CALLER, ConsoleChannel
from ivrkit.console.inputs import CallerInputs
from ivrkit.console.script import KeyScriptError, Step, parse_key_script
from ivrkit.console.term import cbreak_terminal
from ivrkit.console.view import ConsoleView
from ivrkit.errors import AudioFileError, FlowError, IvrkitError
from ivrkit.far_end import ScriptedIvr
from ivrkit.flow.model import Flow
from ivrkit.hooks import Hooks
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.trace import TraceEvent
from ivrkit.voice.audio import write_wav

__all__ = ["ConsoleOptions", "add_console_parser", "banner", "console_hooks", "main", "options_from_args", "run_console"]

DEMO_FLOW = "defaults/demo.yaml"

EXIT_OK, EXIT_FLOW, EXIT_USAGE, EXIT_CALL_ERROR = 0, 1, 2, 3
SCRIPTED_MAX_DURATION = 600.0
"""Seconds after which a call with no terminal attached hangs up, unless --max-duration says."""


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    """Everything `ivrkit console` can be told. `flow=None` means the embedded demo."""

    flow: str | None = None
    keys: str | None = None
    record: str | None = None
    trace: str | None = None
    no_audio: bool = False
    fast: bool = False
    seconds_per_char: float = 0.06
    max_duration: float | None = None
    voice: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    caller: str | None = None
    called: str | None = None
    no_path: bool = False
    far_end: str | None = None


def add_console_parser(subparsers: Any) -> None:
    """Register `console` on the `ivrkit` CLI's subparsers (one line in `ivrkit.cli.COMMANDS`).

    Follows the CLI's convention: `args_type=ConsoleOptions`, `handler=run_console`, and
    `convert` for the fields whose argparse value is not already the dataclass value."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "console",
        help="call a flow from the terminal: keys typed are DTMF (no server, no API key)",
        description=(
            "Call a flow from the terminal. Keys 0-9 * # A-D are DTMF, q / Ctrl-C / Ctrl-D hang up. "
            "Without FLOW, calls the built-in demo line."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(p)
    p.set_defaults(args_type=ConsoleOptions, handler=run_console, convert=_CONVERT)


_EXAMPLES = """\
examples:
  ivrkit console                                  the built-in demo
  ivrkit console --fast                           prompts take no time (timeouts stay real)
  ivrkit console --keys "1,wait 1s,4321#,1"       a scripted caller (CI, bug reports)
  ivrkit console flows/support.yaml --set now=2026-12-07T10:00
  ivrkit console flows/navigate.yaml --far-end flows/legacy_ivr.yaml
                                                  a dial reaches a scripted legacy IVR: its
                                                  prompts are shown, the keys the flow sends
                                                  answered (docs/testing.md: the far end file)
                                                  a call variable set first: here the time the
                                                  business-hours hook reads (open on a weekday)
"""


_CONVERT: dict[str, Callable[[Any], Any]] = {"variables": dict}


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow", nargs="?", metavar="FLOW", help="flow file (default: the built-in demo)")
    p.add_argument(
        "--keys",
        metavar="SCRIPT",
        help=(
            'scripted caller, e.g. "1,wait 3s,1234#,hangup": keys, wait Ns / Nms, hangup. The call '
            "goes on after the script (timeouts run) until the flow ends; end with hangup to stop"
        ),
    )
    p.add_argument("--record", metavar="WAV", help="write everything the caller heard to this WAV file")
    p.add_argument("--trace", metavar="FILE", help="write the call trace as JSON lines ('-' = stdout)")
    p.add_argument("--no-audio", action="store_true", help="do not play prompts on the sound card")
    p.add_argument("--no-path", action="store_true",
                   help="do not print the path of states after each move (path: main → pin → balance)")
    p.add_argument("--fast", action="store_true", help="prompts take no time (timeouts stay real)")
    p.add_argument(
        "--char-seconds", type=float, default=0.06, metavar="S", dest="seconds_per_char",
        help="how long a printed prompt 'plays' per character when there is no audio (default 0.06)",
    )
    p.add_argument(
        "--max-duration", type=float, metavar="S",
        help=f"hang up after S seconds (default: none at a terminal, {SCRIPTED_MAX_DURATION:g} for scripted runs)",
    )
    p.add_argument("--voice", metavar="LANG", help="eSpeak NG voice, e.g. en-gb (default en-us)")
    p.add_argument("--caller", metavar="NUMBER", help="the caller's number hooks see (default: console)")
    p.add_argument("--called", metavar="NUMBER", help="the dialled number hooks see (default: ivrkit)")
    p.add_argument(
        "--far-end", metavar="FILE", dest="far_end",
        help="what a dial reaches: a scripted legacy IVR (its prompts and what each key does; "
             "default: a silent party)",
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", dest="variables", type=name_value,
        help="set a call variable before the call starts (repeatable)",
    )


def options_from_args(ns: argparse.Namespace) -> ConsoleOptions:
    """The namespace of a parser built with `_add_arguments` as `ConsoleOptions`."""
    values = {f.name: _CONVERT.get(f.name, lambda v: v)(getattr(ns, f.name)) for f in fields(ConsoleOptions)}
    return ConsoleOptions(**values)


# --- running -----------------------------------------------------------------------------------


def _err(text: str) -> None:
    print(f"ivrkit console: {text}", file=sys.stderr)


@contextlib.contextmanager
def _flow_path(opts: ConsoleOptions) -> Iterator[Path]:
    if opts.flow is not None:
        yield Path(opts.flow)
        return
    with resources.as_file(resources.files("ivrkit").joinpath(DEMO_FLOW)) as path:
        yield path


def run_console(opts: ConsoleOptions) -> int:
    """Run one console call with `opts`; returns the process exit code (see module doc)."""
    if opts.fast and opts.record:
        _err("--fast and --record cannot be combined: a recording needs prompts to take their real time")
        return EXIT_USAGE
    if opts.seconds_per_char < 0 or (opts.max_duration is not None and opts.max_duration <= 0):
        _err("--char-seconds must be >= 0 and --max-duration > 0")
        return EXIT_USAGE
    try:
        script = parse_key_script(opts.keys) if opts.keys is not None else None
    except KeyScriptError as e:
        _err(str(e))
        return EXIT_USAGE
    for option, target in (("--record", opts.record), ("--trace", opts.trace)):
        if target is not None and target != "-" and not Path(target).resolve().parent.is_dir():
            _err(f"{option} {target}: the folder {Path(target).parent} does not exist; create it first")
            return EXIT_USAGE
    from ivrkit.flow.loader import load_flow

    _log_to_stderr()
    with _flow_path(opts) as path:
        try:
            flow = load_flow(path)
        except FlowError as e:
            print(str(e), file=sys.stderr)
            return EXIT_FLOW
    far_end = None
    if opts.far_end is not None:
        from ivrkit.far_end_file import load_far_end

        try:
            far_end = load_far_end(opts.far_end)
        except FlowError as e:
            print(str(e), file=sys.stderr)
            return EXIT_FLOW
    try:
        return asyncio.run(_call(opts, flow, script, far_end))
    except KeyboardInterrupt:  # Ctrl-C before the handler was installed or after the call
        return EXIT_OK


def _log_to_stderr() -> None:
    """Flow warnings and call errors (a failing hook...) go to stderr, one line each, unless the
    application has configured logging itself."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def _fileno(stream: Any) -> int:
    """The stream's file descriptor, or -1 when it has none (closed, or replaced by a test)."""
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return -1


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def console_hooks(view: ConsoleView) -> Hooks:
    """Observers that show the call from its own (masked) records, in order: states, prompts,
    keys and what the call did with each, entries, waits, no-input and no-match, and the moves
    (the path line)."""

    async def show(event: TraceEvent) -> None:
        view.observe(event.kind, event.state, event.data)

    view.follow_call()
    return Hooks(state_enter=[show], digits=[show], prompt=[show], transition=[show])


def banner(opts: ConsoleOptions, flow_name: str, *, interactive: bool) -> list[str]:
    """The first lines of a call. At a keyboard they also name the options a first-time user
    needs and would not find otherwise: the demo's prompts take their spoken time, and a flow
    whose hooks read a variable (support.yaml's business hours read `now`) is tried with --set."""
    source = "the built-in demo" if opts.flow is None else opts.flow
    lines = [f"calling {flow_name} ({source}); keys 0-9 * # A-D, q hangs up"]
    if interactive:
        tips = [] if opts.fast else ["--fast makes prompts instant"]
        if not opts.variables:
            tips.append("--set NAME=VALUE sets a call variable first (e.g. --set now=2026-12-07T10:00)")
        if tips:
            lines.append("tip: " + "; ".join(tips) + "; ivrkit console --help for more")
    return lines


def _audio(opts: ConsoleOptions, view: ConsoleView, clock: Clock, flow: Flow) -> tuple[
    PromptSynthesizer | None, Speaker | None, CallRecorder | None
]:
    speaker: Speaker | None = None
    if opts.no_audio:
        pass
    elif opts.fast:
        view.notice("audio is off (--fast: prompts take no time)")
    else:
        try:
            speaker = open_soundcard()
        except AudioUnavailable as e:
            rest = "prompts are printed and recorded" if opts.record else "prompts are printed only"
            view.notice(f"sound card off: {e}; {rest}")
    recorder = CallRecorder(start=clock.now()) if opts.record else None
    if recorder is not None and any(s.collect is not None and s.collect.sensitive for s in flow.states.values()):
        view.notice(f"recording to {opts.record}; prompts that read back sensitive values are bleeped in it")
    synthesizer = None
    if speaker is not None or recorder is not None:
        from ivrkit.voice.speech import EspeakVoice

        try:
            voice = EspeakVoice(opts.voice) if opts.voice else EspeakVoice()
        except IvrkitError as e:
            view.notice(f"audio is off: {e}")
            return None, None, recorder
        synthesizer = PromptSynthesizer(voice, base_dir=Path(flow.file).parent if flow.file else None)
    return synthesizer, speaker, recorder


async def _call(opts: ConsoleOptions, flow: Flow, script: Sequence[Step] | None, far_end: ScriptedIvr | None = None) -> int:
    from ivrkit.call import Call
    from ivrkit.machine import FlowMachine

    loop = asyncio.get_running_loop()
    clock = LoopClock(loop)
    out: TextIO = sys.stderr if opts.trace == "-" else sys.stdout  # keep a piped trace clean
    view = ConsoleView(out, clock, flow=flow, typewriter=_isatty(out) and not opts.fast, path=not opts.no_path)
    for text in banner(opts, flow.name, interactive=_isatty(sys.stdin)):
        view.notice(text)
    synthesizer, speaker, recorder = _audio(opts, view, clock, flow)
    caller = dataclasses.replace(
        CONSOLE_CALLER,
        number=opts.caller or CONSOLE_CALLER.number,
        called_number=opts.called or CONSOLE_CALLER.called_number,
    )
    channel = ConsoleChannel(
        caller=caller,
        clock=clock,
        out=out,
        view=view,
        synthesizer=synthesizer,
        speaker=speaker,
        recorder=recorder,
        seconds_per_char=0.0 if opts.fast else opts.seconds_per_char,
        far_end=far_end,
    )
    call = Call(FlowMachine(flow), channel, hooks=console_hooks(view), variables=dict(opts.variables))
    inputs = CallerInputs(channel, clock, view)
    stdin_fd = _fileno(sys.stdin)
    limit = None
    with cbreak_terminal(stdin_fd) as terminal:
        interrupts = 0

        def on_signal(name: str) -> None:
            # First Ctrl-C / SIGTERM: the caller hangs up and the call ends cleanly. A second
            # one while it is still ending (e.g. a hook stuck in a thread) forces the exit.
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                if channel.ended is None:
                    channel.caller_hangup(name)
                else:
                    view.notice(f"{name}: the call is ending; press Ctrl-C again to force")
                return
            terminal.restore()
            _err(f"{name} again: exiting now without waiting for the call to finish")
            os._exit(130)

        try:
            for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
                loop.add_signal_handler(sig, on_signal, name)
            if terminal:
                inputs.keyboard(loop, stdin_fd)
            elif script is None and stdin_fd >= 0:
                inputs.stdin_lines(loop, stdin_fd)
            if script is not None:
                inputs.script(script)
            # A scripted run must end even if the flow never does (a CI job must not hang).
            max_duration = opts.max_duration or (None if terminal else SCRIPTED_MAX_DURATION)
            if max_duration is not None:
                limit = clock.call_later(max_duration, lambda: channel.caller_hangup("--max-duration"))
            result = await call.run()
        finally:
            if limit is not None:
                limit.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await inputs.aclose()
            await channel.aclose()
    code = _write_outputs(opts, result, recorder, clock, view)
    state = "the built-in error path" if result.state == BUILTIN_ERROR else f"state {result.state}"
    view.notice(f"call over: ended by {result.ended_by.replace('_', ' ')} in {state}")
    if inputs.script_error is not None:
        return EXIT_USAGE
    if code == EXIT_OK and result.ended_by == "error":
        return EXIT_CALL_ERROR
    return code


def _write_outputs(opts: ConsoleOptions, result: CallResult, recorder: CallRecorder | None, clock: Clock, view: ConsoleView) -> int:
    code = EXIT_OK
    if recorder is not None and opts.record:
        pcm = recorder.finish(clock.now())
        try:
            write_wav(opts.record, pcm)
            view.notice(f"recorded {pcm.duration:.1f} s to {opts.record}")
        except AudioFileError as e:
            _err(str(e))
            code = EXIT_USAGE
    if opts.trace:
        lines = result.trace.to_jsonl()
        try:
            if opts.trace == "-":
                sys.stdout.write(lines)
            else:
                Path(opts.trace).write_text(lines, encoding="utf-8")
        except OSError as e:
            _err(f"{opts.trace}: cannot write the trace: {e.strerror or e}")
            code = EXIT_USAGE
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ivrkit.console`: the command on its own."""
    parser = argparse.ArgumentParser(
        prog="ivrkit console",
        description="Call a flow from the terminal (keys 0-9 * # A-D are DTMF; q, Ctrl-C, Ctrl-D hang up).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    return run_console(options_from_args(parser.parse_args(argv)))
