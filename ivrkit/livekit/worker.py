"""The bundled LiveKit worker: `ivrkit start PATH` / `ivrkit dev PATH` — what runs in production.

Built on livekit-agents 1.8.9's own worker: an `AgentServer` with one
`@server.rtc_session(agent_name=...)` entrypoint (explicit dispatch: a SIP dispatch rule, a
token's room configuration or `AgentDispatchService.create_dispatch` names the agent), run by
livekit-agents' CLI runner, so signals, draining, the health endpoint (`:8081/`), the JSON log
format and the reconnect backoff are LiveKit's own. What a job does when that runner closes it
(`dev` stopped, `start` past `--drain-timeout`) is ivrkit's: its call is stopped at once and
hung up (`ivrkit.livekit.stopping`).

Startup, in order (each failure is one clear message and a non-zero exit, before registering):
1. LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET present and well-formed (exit 2);
2. every flow loaded and checked once — errors printed mypy-style, worker refuses (exit 1);
3. routes and default flow valid (exit 2);
4. register with the server; then one readiness line on stdout:
   `ivrkit worker registered agent_name=ivrkit flows=bank,support executor=thread id=AW_...`
   An unreachable server gets livekit-agents' retries (delay 0, 2, 4 ... 10 s, 16 attempts) with
   one warning line each; when they are used up the worker exits 1 with one error line.

Executors (`--executor`, IVRKIT_EXECUTOR). livekit-agents runs each job either in its own
process (PROCESS, its default on Linux) or on a thread with its own event loop inside the worker
(THREAD). bench/concurrency.py (row 6 of bench/README.md: a real livekit-server, 10 callers
pressing keys, PSS of the worker's whole process tree, idle worker subtracted) measured

    THREAD    1.1 MB per call   (p99 key -> prompt 163 ms at 10 calls; fails at 15)
    PROCESS  21.3 MB per call   (p99 115 ms at 10 calls; fails at 15)

An IVR job runs no model and little CPU, so process isolation buys little: **THREAD is the
default** (about 20x less memory per call, the same number of calls per core under load).
Choose PROCESS when flow hooks are untrusted or may crash the
interpreter (a segfaulting hook then takes down one call instead of all). bench/concurrency.py
(row 6) measures both executors under load. Local inference preloading is disabled
(`LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE=0`): an IVR never uses the ~244 MB end-of-turn model.

Capacity: `--max-calls` (default CALLS_PER_CORE x CPU cores, from bench/concurrency.py) is an
exact count, decided at dispatch by `ivrkit.livekit.admission` (also in bursts): past it, up to
`--busy-calls` more callers hear the busy flow and are hung up, and past that the worker refuses
the call so LiveKit offers it to another worker. A call count is steadier for even, cheap IVR
calls than livekit-agents' default whole-machine CPU share, which other processes on a shared
host push up; the load the worker reports is served calls / max calls.

Dev mode (`ivrkit dev PATH`): livekit-agents 1.8.9 removed in-process reload from its Python
CLI (it points to `lk agent dev`), so ivrkit does its own: `ivrkit.livekit.reload` runs the
worker in a child process and restarts it when a flow file, an audio file or a hook module
changes — after checking the new flows in a fresh interpreter; a broken edit keeps the running
worker and prints the errors.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivrkit.errors import IvrkitError
from ivrkit.flow.model import DTMF_MODES
from ivrkit.livekit.dev_child import options_from_environment
from ivrkit.livekit.flows import FlowSet, FlowSetError, build_flow_set, install
from ivrkit.livekit.routing import RoutingError, parse_route
from ivrkit.livekit.settings import (
    CALLS_PER_CORE,
    DEFAULT_EXECUTOR,
    LiveKitCredentials,
    SettingsError,
    WorkerOptions,
    credentials,
)
from ivrkit.livekit.status import Status, prepare_multiprocess, start_status

__all__ = ["add_worker_arguments", "main", "options_from_args", "run_worker"]

logger = logging.getLogger("ivrkit.livekit")


class _ConnectFailureFilter(logging.Filter):
    """Drop the traceback from livekit-agents' final "failed to connect" error: the message says
    it all, and a stack of aiohttp frames reads like a crash of ivrkit."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and "failed to connect to livekit" in str(exc):
            record.exc_info = None
            record.exc_text = None
        return True


def _fail(error: IvrkitError, code: int) -> SystemExit:
    print(f"ivrkit: {error}", file=sys.stderr, flush=True)
    return SystemExit(code)


def prepare(opts: WorkerOptions) -> tuple[LiveKitCredentials, FlowSet]:
    """Steps 1-3 of startup. Raises SystemExit(2|1) after printing what to fix."""
    try:
        creds = credentials(opts)
        if opts.tts:
            from ivrkit.livekit.job import tts_factory

            tts_factory(opts.tts)
        if opts.stt:
            from ivrkit.livekit.job import tts_factory as plugin_factory

            plugin_factory(opts.stt, "--stt")
    except SettingsError as e:
        raise _fail(e, e.exit_code) from None
    try:
        fs = build_flow_set(opts)
    except FlowSetError as e:
        raise _fail(e, e.exit_code) from None
    except RoutingError as e:
        raise _fail(e, 2) from None
    return creds, fs


class _InfiniteThresholdFilter(logging.Filter):
    """livekit-agents warns when the load threshold is above 1 in production; ivrkit sets it to
    infinity on purpose (admission decides, see `ivrkit.livekit.admission`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "load_threshold in prod env must be less than 1" not in record.getMessage()


def build_server(opts: WorkerOptions, creds: LiveKitCredentials, status: Status | None = None) -> Any:
    """The livekit-agents `AgentServer` for `opts`, with ivrkit's job entrypoint registered (and
    followed by the status port's readiness and gauges, when there is one)."""
    from livekit.agents import AgentServer, JobExecutorType

    from ivrkit.livekit.admission import Admission
    from ivrkit.livekit.job import entrypoint, prewarm

    max_calls = opts.max_calls or CALLS_PER_CORE * (os.cpu_count() or 1)
    admission = Admission(max_calls, opts.busy_calls if opts.busy_calls is not None else max(1, max_calls // 2))
    kwargs: dict[str, Any] = {
        "load_fnc": admission.load,
        # livekit-agents' own check estimates jobs not yet running; admission counts them
        "load_threshold": math.inf,
        # all interfaces only where a container's health probe needs them
        "host": opts.bind_host,
    }
    if opts.num_idle_processes is not None:
        kwargs["num_idle_processes"] = opts.num_idle_processes
    if opts.http_port is not None:
        kwargs["port"] = opts.http_port
    server = AgentServer(
        job_executor_type=JobExecutorType.THREAD if opts.executor == "thread" else JobExecutorType.PROCESS,
        ws_url=creds.url,
        api_key=creds.api_key,
        api_secret=creds.api_secret,
        max_retry=opts.max_retry,
        drain_timeout=opts.drain_timeout,
        setup_fnc=functools.partial(prewarm, opts),
        # Imported once in the forkserver and shared copy-on-write by job processes.
        preload_modules=["ivrkit.livekit.job"],
        **kwargs,
    )
    # functools.partial of a module-level function: picklable for the process executor.
    server.rtc_session(functools.partial(entrypoint, opts), agent_name=opts.agent_name, on_request=admission)
    admission.server = server
    if status is not None:
        status.attach(server, admission)
    logging.getLogger("livekit.agents").addFilter(_InfiniteThresholdFilter())
    return server


def serve(opts: WorkerOptions, creds: LiveKitCredentials, fs: FlowSet, status: Status | None = None) -> None:
    """Register and serve calls until SIGTERM/SIGINT (livekit-agents' runner). Blocks."""
    from livekit.agents.cli import proto
    from livekit.agents.cli.cli import _run_worker

    install(opts, fs)
    server = build_server(opts, creds, status)
    flows = ",".join(fs.names)
    if status is not None:
        status.readiness.flows = True

    def on_registered(worker_id: str, server_info: Any) -> None:
        if status is not None:
            status.readiness.registered = True
        line = (
            f"ivrkit worker registered agent_name={opts.agent_name} flows={flows} "
            f"executor={opts.executor} id={worker_id} url={creds.url}"
        )
        logger.info(line)
        print(line, flush=True)

    def on_started() -> None:  # after livekit-agents set up logging (and emptied the multiprocess folder)
        if status is not None:
            from ivrkit.metrics import default_metrics

            metrics = default_metrics()  # every flow's active calls read 0, not nothing, before its first call
            for name in fs.names:
                metrics.flow(name).child(metrics.calls_active)
        for issue in fs.warnings:
            logger.warning("%s", issue.format())
        if fs.router.default is None:
            logger.warning("no default flow: a call that matches no route is hung up "
                           "(set --default-flow, or IVRKIT_DEFAULT_FLOW, to one of %s)", flows)
        logger.info("ivrkit worker connecting to %s as agent '%s' (flows: %s, executor: %s)",
                    creds.url, opts.agent_name, fs.versions, opts.executor)

    server.on("worker_registered", on_registered)
    server.on("worker_started", on_started)
    logging.getLogger("livekit.agents").addFilter(_ConnectFailureFilter())
    # livekit-agents' own runner (signals, drain, log setup). It is module-private in 1.8.9 —
    # the public `cli.run_app` parses sys.argv itself; safe because pyproject.toml pins 1.8.9.
    _run_worker(
        server,
        proto.CliArgs(
            log_level=opts.log_level.upper(),
            url=creds.url,
            api_key=creds.api_key,
            api_secret=creds.api_secret,
            log_format="colored" if opts.dev else opts.log_format,
            dev=opts.dev,
        ),
    )
    if getattr(server, "_connection_failed", False):
        print(
            f"ivrkit: could not reach the LiveKit server at {creds.url} after {opts.max_retry} attempts; "
            "check LIVEKIT_URL and that the server is running",
            file=sys.stderr, flush=True,
        )
        raise SystemExit(1)


def run_worker(opts: WorkerOptions) -> None:
    """`ivrkit start PATH` / `ivrkit dev PATH`. Blocks until stopped; exits via SystemExit on
    bad settings (2), bad flows (1) or an unreachable server (1)."""
    os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")
    prepare_multiprocess(opts)  # before prometheus_client is imported; children inherit it
    supervised = (opts.dev and opts.reload) or (not opts.dev and opts.guard)  # a child serves
    status = None if supervised else _start_status(opts)
    creds, fs = prepare(opts)
    if opts.dev and opts.reload:
        from ivrkit.livekit.reload import supervise

        supervise(opts, fs)
        return
    if not opts.dev and opts.guard:
        from ivrkit.livekit.guard import guard

        raise SystemExit(guard(opts, creds))
    serve(opts, creds, fs, status)


def _start_status(opts: WorkerOptions) -> Status | None:
    """The status port, up before the flows load (`/ready` says so meanwhile)."""
    try:
        return start_status(opts)
    except SettingsError as e:
        raise _fail(e, e.exit_code) from None


# --- command line (used by ivrkit.cli, and by `python -m ivrkit.livekit.worker` in tests) -------


def add_worker_arguments(parser: argparse.ArgumentParser, *, dev: bool = False) -> None:
    """The options of `ivrkit start` and `ivrkit dev` (PATH plus flags; env vars fill the rest).
    `dev`: the help says dev's defaults where they differ (health port and address)."""
    parser.add_argument("path", type=Path, help="a flow file, or a folder of flow files")
    parser.add_argument("--agent-name", help="agent name for explicit dispatch (env LIVEKIT_AGENT_NAME, default ivrkit)")
    parser.add_argument("--url", help="LiveKit server URL (env LIVEKIT_URL)")
    parser.add_argument("--api-key", help="API key (env LIVEKIT_API_KEY)")
    parser.add_argument("--api-secret", help="API secret (env LIVEKIT_API_SECRET)")
    parser.add_argument("--executor", choices=("thread", "process"),
                        help=f"run each call on a thread or in its own process (env IVRKIT_EXECUTOR, default {DEFAULT_EXECUTOR})")
    parser.add_argument("--default-flow", help="flow for calls no route matches (env IVRKIT_DEFAULT_FLOW)")
    parser.add_argument("--route", action="append", type=_route_arg, metavar="KIND:PATTERN=FLOW",
                        help="route calls: number:+15550100=bank (dialled number) or room:support-*=support; repeatable")
    parser.add_argument("--trace-dir", type=Path, help="write one JSON-lines trace per call here (env IVRKIT_TRACE_DIR)")
    parser.add_argument("--prompt-cache", type=Path, help="baked prompts folder, from `ivrkit prompts bake` (env IVRKIT_PROMPT_CACHE)")
    parser.add_argument("--tts", help="module:factory returning a livekit-agents TTS (default: offline eSpeak NG)")
    parser.add_argument("--stt", help="module:factory returning a streaming livekit-agents STT for states that take "
                                      "speech, in flows without stt: (default: offline pocketsphinx)")
    parser.add_argument("--dtmf", choices=DTMF_MODES, type=str.lower,
                        help="how callers' keys arrive in flows that do not say (`dtmf:`): rfc4733 events, "
                             "inband tones in the caller's audio, or both (env IVRKIT_DTMF, default rfc4733)")
    parser.add_argument("--sip-trunk", help="outbound SIP trunk id for dial states (env IVRKIT_SIP_TRUNK)")
    parser.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARN", "ERROR"), type=str.upper)
    parser.add_argument("--log-format", choices=("json", "colored"), default=None,
                        help="start: json (default) or colored; dev logs are always colored (livekit-agents)")
    parser.add_argument("--max-calls", type=int,
                        help=f"capacity: take at most N calls, load = calls/N (env IVRKIT_MAX_CALLS; "
                             f"default {CALLS_PER_CORE} per CPU core, from bench/concurrency.py)")
    parser.add_argument("--busy-calls", type=int,
                        help="callers past --max-calls who hear the busy flow and are hung up, at once "
                             "(env IVRKIT_BUSY_CALLS; default half of --max-calls; 0: refuse them)")
    parser.add_argument("--max-retry", type=int,
                        help="connection attempts before giving up (default 16, ~2 min with backoff)")
    if dev:  # several dev workers (and test runs) on one machine must not fight over 8081
        parser.add_argument("--http-port", type=int, help="health check port (default: any free port; 8081 in start)")
        parser.add_argument("--http-host", help="health check address (env IVRKIT_HTTP_HOST; default 127.0.0.1)")
    else:
        parser.add_argument("--http-port", type=int, help="health check port (default 8081; 0 = any free port)")
        parser.add_argument("--http-host", help="health check address (env IVRKIT_HTTP_HOST; default: all interfaces, "
                                                "for container probes)")
    parser.add_argument("--metrics-port", type=int,
                        help="serve Prometheus /metrics and the readiness probe /ready on this port, bound like "
                             "the health port (env IVRKIT_METRICS_PORT; default off; 0 = any free port)")
    parser.add_argument("--no-reload", action="store_true", help="dev: do not restart on file changes")
    parser.add_argument("--no-guard", action="store_true",
                        help="start: run the worker in this process, without the guard that hangs up a dead "
                             "worker's calls (for a supervisor of your own)")
    parser.add_argument("--workers", type=int,
                        help="start: worker processes under the guard (env IVRKIT_WORKERS; default 1). Each "
                             "registers with LiveKit and reports its own load, so the calls spread over "
                             "every core; each takes --max-calls (default: its share of 5 per core), and "
                             "the health and metrics ports given plus its number (0, 1, ...)")
    parser.add_argument("--drain-timeout", type=int, metavar="SECONDS",
                        help="start: on SIGTERM, how long calls in progress may run on (no new ones are taken); "
                             "past it each is stopped: its caller is hung up and its trace says the worker "
                             "stopped (env IVRKIT_DRAIN_TIMEOUT; default 1800). Set it below your "
                             "orchestrator's kill deadline (terminationGracePeriodSeconds)")
    parser.add_argument("--guard-dir", type=Path,
                        help="start: folder where calls in progress are registered (env IVRKIT_GUARD_DIR; "
                             "default a temp folder; a volume lets a restarted container hang up the calls "
                             "its dead predecessor left)")


def _route_arg(text: str) -> Any:
    try:
        return parse_route(text)
    except RoutingError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def options_from_args(args: argparse.Namespace, *, dev: bool) -> WorkerOptions:
    """`WorkerOptions` from parsed `add_worker_arguments` flags plus the environment."""
    try:
        return WorkerOptions.from_env(
            args.path,
            dev=dev,
            reload=not args.no_reload,
            agent_name=args.agent_name,
            url=args.url,
            api_key=args.api_key,
            api_secret=args.api_secret,
            executor=args.executor,
            default_flow=args.default_flow,
            routes=args.route,
            trace_dir=args.trace_dir,
            prompt_cache=args.prompt_cache,
            tts=args.tts,
            stt=args.stt,
            sip_trunk=args.sip_trunk,
            dtmf=args.dtmf,
            log_level=args.log_level or os.environ.get("LIVEKIT_LOG_LEVEL") or ("DEBUG" if dev else "INFO"),
            log_format=args.log_format,
            max_calls=args.max_calls,
            max_retry=args.max_retry,
            busy_calls=args.busy_calls,
            http_port=args.http_port if args.http_port is not None else (0 if dev else None),
            http_host=args.http_host,
            metrics_port=args.metrics_port,
            guard=not args.no_guard,
            guard_dir=args.guard_dir,
            workers=args.workers,
            drain_timeout=args.drain_timeout,
        )
    except (SettingsError, RoutingError) as e:
        raise _fail(e, 2) from None


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m ivrkit.livekit.worker {start,dev} PATH ...` — the same as `ivrkit start/dev`."""
    opts = options_from_environment()
    if opts is not None:  # a child of `ivrkit dev` (reload) or of the guard
        os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")
        prepare_multiprocess(opts)  # the parent set it already, unless it ran without metrics
        status = _start_status(opts)
        creds, fs = prepare(opts)
        serve(opts, creds, fs, status)
        return
    parser = argparse.ArgumentParser(prog="python -m ivrkit.livekit.worker", description="Run the ivrkit LiveKit worker.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("start", "production worker"), ("dev", "development worker (reload on change)")):
        add_worker_arguments(sub.add_parser(name, help=text), dev=name == "dev")
    args = parser.parse_args(argv)
    run_worker(options_from_args(args, dev=args.command == "dev"))


if __name__ == "__main__":
    main()
