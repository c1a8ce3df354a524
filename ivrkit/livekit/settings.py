"""Worker settings: the LIVEKIT_* connection variables and the options of `ivrkit start/dev`.

Why a dataclass and not the livekit-agents CLI: `ivrkit start PATH` has its own arguments (the
flow path, routes, trace folder), so ivrkit parses them itself and hands one frozen
`WorkerOptions` to `ivrkit.livekit.worker.run_worker` — the same split as livekit-agents'
`CliArgs` -> `_run_worker`. The options object is also what a job process receives (it is
pickled into the process executor), so it holds only plain values.

Environment (read by `WorkerOptions.from_env`; explicit arguments win):

=========================  =====================================================================
LIVEKIT_URL                server URL, `wss://<project>.livekit.cloud` or `ws://127.0.0.1:7880`
LIVEKIT_API_KEY            API key (required)
LIVEKIT_API_SECRET         API secret (required)
LIVEKIT_AGENT_NAME         agent name for explicit dispatch (default `ivrkit`)
IVRKIT_EXECUTOR            `thread` or `process` (default: see `DEFAULT_EXECUTOR`)
IVRKIT_TRACE_DIR           write one JSON-lines call trace per call into this folder
IVRKIT_PROMPT_CACHE        folder of baked prompts (`ivrkit prompts bake`)
IVRKIT_DEFAULT_FLOW        flow used when no route matches (folder of flows)
IVRKIT_ROUTES              routes separated by commas, e.g. `number:+15550100=bank,room:s-*=support`
IVRKIT_SIP_TRUNK           outbound SIP trunk id for `dial` states that name none
IVRKIT_MAX_CALLS           capacity in calls: report load as calls/max instead of CPU share
IVRKIT_DTMF                how keys arrive in flows that do not say (`dtmf:`): rfc4733 (default),
                           inband (tones in the caller's audio) or both
IVRKIT_METRICS_PORT        serve Prometheus `/metrics` and the readiness probe `/ready` on this port
=========================  =====================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from ivrkit.errors import IvrkitError
from ivrkit.flow.model import DTMF_MODES, DtmfMode
from ivrkit.livekit.routing import Route, parse_route

__all__ = [
    "DEFAULT_AGENT_NAME",
    "DEFAULT_EXECUTOR",
    "ExecutorKind",
    "LiveKitCredentials",
    "SettingsError",
    "WorkerOptions",
    "credentials",
]

ExecutorKind = Literal["thread", "process"]

#: Chosen from measurement (bench/concurrency.py; see the module docstring of
#: `ivrkit.livekit.worker`): 1.1 MB per call on the thread executor vs 21.3 MB with a process
#: per call, and an IVR call runs no model, so there is little to isolate.
DEFAULT_EXECUTOR: ExecutorKind = "thread"
#: Calls a worker takes per CPU core when `max_calls` is not set. bench/concurrency.py (row 6) on
#: 2 cores, the simulated callers on the same cores: the thread executor held p99 key -> prompt
#: under 250 ms at 10 calls (15 on an earlier Intel machine) and failed at 15 (20), as did the
#: hand-written baseline; 5 per core stays under the lower of those.
CALLS_PER_CORE = 5
DEFAULT_AGENT_NAME = "ivrkit"
#: The health check port of `start` (livekit-agents' default).
DEFAULT_HEALTH_PORT = 8081
#: At most this many worker processes under one guard.
MAX_WORKERS = 64

_HOW = {
    "LIVEKIT_URL": "export LIVEKIT_URL=wss://<project>.livekit.cloud (or ws://127.0.0.1:7880 for a local livekit-server)",
    "LIVEKIT_API_KEY": "export LIVEKIT_API_KEY=<key> (LiveKit Cloud: Settings > API keys; livekit-server: its `keys:` config)",
    "LIVEKIT_API_SECRET": "export LIVEKIT_API_SECRET=<secret> (shown once when the API key is created)",
}


class SettingsError(IvrkitError):
    """A setting is missing or malformed. One line, naming the variable and how to set it.

    Raised by `WorkerOptions` (bad executor, max calls, agent name, a non-numeric variable),
    `credentials()` (no server URL or key) and `job.tts_factory` (a `--tts` that cannot be
    loaded), before the worker connects.

    `exit_code` is what the CLI exits with (2, like a usage error).
    """

    exit_code = 2


@dataclass(frozen=True, slots=True)
class LiveKitCredentials:
    url: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Everything `run_worker` needs. Hashable and picklable (it travels to job processes)."""

    path: Path
    agent_name: str = DEFAULT_AGENT_NAME
    dev: bool = False
    reload: bool = True  # dev mode only: restart on flow/hook file changes
    executor: ExecutorKind = DEFAULT_EXECUTOR
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    default_flow: str | None = None
    routes: tuple[Route, ...] = ()
    trace_dir: Path | None = None
    prompt_cache: Path | None = None
    tts: str | None = None  # `module:factory` returning a livekit-agents tts.TTS
    stt: str | None = None  # `module:factory` returning a streaming livekit-agents stt.STT (speech input)
    sip_trunk: str | None = None  # outbound trunk for `dial` states without `trunk:`
    dtmf: DtmfMode = "rfc4733"  # flows without `dtmf:` hear keys this way
    log_level: str = "INFO"
    log_format: Literal["json", "colored"] = "json"  # dev mode is always colored (livekit-agents' rule)
    max_retry: int = 16  # connection attempts before giving up (livekit-agents' backoff, max 10 s)
    busy_calls: int | None = None  # callers past max_calls answered with the busy flow; None: max_calls // 2
    max_calls: int | None = None  # load = active calls / max_calls; None: CALLS_PER_CORE x cores
    num_idle_processes: int | None = None  # process executor only; None: livekit-agents' default
    http_port: int | None = None  # health check port; None: 8081 in start, any free port in dev
    http_host: str | None = None  # health check address; None: all interfaces in start (probes), 127.0.0.1 in dev
    metrics_port: int | None = None  # /metrics and /ready (ivrkit.livekit.status), bound like the health port; None: off
    caller_timeout: float = 60.0  # seconds a job waits for its caller before giving up
    drain_timeout: int = 1800  # seconds `start` waits for calls in progress on SIGTERM; then they are stopped
    guard: bool = True  # start only: run the worker under the guard (ivrkit.livekit.guard)
    guard_dir: Path | None = None  # where calls in progress are registered; None: a temp folder
    workers: int = 1  # start only: worker processes under the guard, each registered with LiveKit on its own

    def __post_init__(self) -> None:
        if self.executor not in ("thread", "process"):
            raise SettingsError(f"executor must be 'thread' or 'process', not {self.executor!r} (IVRKIT_EXECUTOR)")
        if self.busy_calls is not None and self.busy_calls < 0:
            raise SettingsError(f"busy calls must be >= 0, not {self.busy_calls} (IVRKIT_BUSY_CALLS / --busy-calls)")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"metrics port must be 0-65535, not {self.metrics_port} (IVRKIT_METRICS_PORT / --metrics-port)")
        if self.max_calls is not None and self.max_calls < 1:
            raise SettingsError(f"max calls must be >= 1, not {self.max_calls} (IVRKIT_MAX_CALLS / --max-calls)")
        if self.drain_timeout < 1:  # livekit-agents reads 0 as "wait for ever"
            raise SettingsError(f"drain timeout must be >= 1 s, not {self.drain_timeout} "
                                "(IVRKIT_DRAIN_TIMEOUT / --drain-timeout)")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise SettingsError(f"workers must be 1-{MAX_WORKERS}, not {self.workers} (IVRKIT_WORKERS / --workers)")
        if self.workers > 1 and (self.dev or not self.guard):
            raise SettingsError("several workers (--workers / IVRKIT_WORKERS) run under `ivrkit start`'s guard: "
                                "drop --no-guard, or run one process per worker under your own supervisor")
        if self.dtmf not in DTMF_MODES:
            raise SettingsError(f"dtmf must be one of {', '.join(DTMF_MODES)}, not {self.dtmf!r} (IVRKIT_DTMF / --dtmf)")
        if not self.agent_name.strip():
            raise SettingsError("agent name is empty: set LIVEKIT_AGENT_NAME or pass --agent-name (e.g. ivrkit)")

    @property
    def bind_host(self) -> str:
        """The address the health and metrics ports listen on: `http_host`, else 127.0.0.1 in
        dev and all interfaces in start (a container's probes and Prometheus come from outside)."""
        return self.http_host if self.http_host is not None else ("127.0.0.1" if self.dev else "")

    @classmethod
    def from_env(cls, path: str | os.PathLike[str], env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerOptions:
        """Options for `path`, taking unset ones from the environment (`env`, default os.environ).

        `overrides` are field names; a value of None means "not given" and leaves the
        environment's value in place, so a CLI can pass every flag through unconditionally.
        """
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown WorkerOptions field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {"path": Path(path)}
        from_env: dict[str, tuple[str, Any]] = {
            "url": ("LIVEKIT_URL", str),
            "api_key": ("LIVEKIT_API_KEY", str),
            "api_secret": ("LIVEKIT_API_SECRET", str),
            "agent_name": ("LIVEKIT_AGENT_NAME", str),
            "executor": ("IVRKIT_EXECUTOR", lambda v: v.strip().lower()),
            "trace_dir": ("IVRKIT_TRACE_DIR", Path),
            "prompt_cache": ("IVRKIT_PROMPT_CACHE", Path),
            "default_flow": ("IVRKIT_DEFAULT_FLOW", str),
            "routes": ("IVRKIT_ROUTES", _parse_routes),
            "sip_trunk": ("IVRKIT_SIP_TRUNK", str),
            "dtmf": ("IVRKIT_DTMF", lambda v: v.strip().lower()),
            "max_calls": ("IVRKIT_MAX_CALLS", _positive_int("IVRKIT_MAX_CALLS")),
            "busy_calls": ("IVRKIT_BUSY_CALLS", int),
            "http_host": ("IVRKIT_HTTP_HOST", str),
            "metrics_port": ("IVRKIT_METRICS_PORT", _port("IVRKIT_METRICS_PORT")),
            "guard_dir": ("IVRKIT_GUARD_DIR", Path),
            "workers": ("IVRKIT_WORKERS", _positive_int("IVRKIT_WORKERS")),
            "drain_timeout": ("IVRKIT_DRAIN_TIMEOUT", _positive_int("IVRKIT_DRAIN_TIMEOUT")),
        }
        for name, (var, convert) in from_env.items():
            raw = env.get(var, "").strip()
            if raw:
                values[name] = convert(raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = tuple(value) if name == "routes" else value
        return cls(**values)


def _positive_int(var: str) -> Any:
    def convert(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise SettingsError(f"{var}={raw!r} is not a whole number >= 1")
        return value

    return convert


def _port(var: str) -> Any:
    def convert(raw: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{var}={raw!r} is not a port number (0-65535; 0 = any free port)") from None

    return convert


def _parse_routes(raw: str) -> tuple[Route, ...]:
    return tuple(parse_route(part) for part in raw.split(",") if part.strip())


def credentials(opts: WorkerOptions) -> LiveKitCredentials:
    """The server URL and keys, or `SettingsError` naming every missing one and how to set it."""
    given = {"LIVEKIT_URL": opts.url, "LIVEKIT_API_KEY": opts.api_key, "LIVEKIT_API_SECRET": opts.api_secret}
    missing = [name for name, value in given.items() if not (value or "").strip()]
    if len(missing) == 1:
        raise SettingsError(f"{missing[0]} is not set: {_HOW[missing[0]]}")
    if missing:
        raise SettingsError(
            f"{', '.join(missing)} are not set: " + "; ".join(_HOW[name] for name in missing)
        )
    url = (opts.url or "").strip()
    scheme = urlparse(url).scheme
    if scheme not in ("ws", "wss", "http", "https") or not urlparse(url).netloc:
        raise SettingsError(
            f"LIVEKIT_URL {url!r} is not a LiveKit server URL: use wss://<project>.livekit.cloud "
            "or ws://HOST:7880"
        )
    return LiveKitCredentials(url=url, api_key=(opts.api_key or "").strip(), api_secret=(opts.api_secret or "").strip())
