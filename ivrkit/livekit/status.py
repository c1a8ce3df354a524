"""The worker's status port (`--metrics-port`, IVRKIT_METRICS_PORT): `/metrics` for Prometheus
and `/ready` for a container's readiness probe, on one small HTTP server of ivrkit's own.

Why not livekit-agents' `prometheus_port`: its server's routes are fixed inside
`AgentServer.run()` before any hook runs, so a readiness route cannot join it (nor its health
server's). ivrkit's server serves the same exposition livekit-agents' would — the process's
default registry, or every process's files in multiprocess mode — so livekit-agents' own
`lk_agents_*` series come along, next to ivrkit's call series (`ivrkit.metrics`) and the
worker's gauges below, read when scraped.

Why a thread and not the worker's event loop: it is up before the flows load (so `/ready` can
say "loading flows"), and a scrape never competes with calls for the loop. Liveness stays
livekit-agents' `/` on the health port (`--http-port`), which the loop itself answers: a stuck
loop fails liveness, a draining worker fails only readiness.

Readiness (`GET /ready`): 200 `ready` only when this process's flows are loaded, the worker is
registered with the LiveKit server, it is not draining (SIGTERM: it finishes its calls and
takes no new one) and its connection has not failed for good; otherwise 503 and the reason.
A worker whose flows fail to load prints their errors and exits 1: its port closes, which a
probe reads as not ready.

Executors: with the thread executor every call runs in this process and the default registry
holds everything. With the process executor each call's job process counts into its own
registry; `prepare_multiprocess` sets `PROMETHEUS_MULTIPROC_DIR` before prometheus_client is
first imported, livekit-agents' forkserver and every job process inherit it, each writes its
values to files there, and `/metrics` merges them (`MultiProcessCollector`) — prometheus_client's
multiprocess mode, which livekit-agents also uses (each scrape forgets the live gauges of job
processes that have exited, see `forget_dead_processes`). Shown by tests/livekit/test_status.py (a call
in another process read back here) and tests/e2e/test_metrics.py (a real process-executor call).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ivrkit.livekit.admission import SERVER_TARGET_LOAD
from ivrkit.livekit.settings import SettingsError, WorkerOptions

__all__ = ["Readiness", "Status", "prepare_multiprocess", "start_status"]

logger = logging.getLogger("ivrkit.livekit")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess(opts: WorkerOptions) -> str | None:
    """For a process-executor worker with metrics on: a fresh `PROMETHEUS_MULTIPROC_DIR` (unless
    one is set already), removed when this process exits. Must run before prometheus_client is
    imported (it picks its value class at import). Returns the folder, or None."""
    if opts.metrics_port is None or opts.executor != "process":
        return None
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        return given
    if "prometheus_client" in sys.modules:
        logger.warning("prometheus_client was imported before %s was set: this process's own series "
                       "will be missing from /metrics", MULTIPROC_ENV)
    folder = tempfile.mkdtemp(prefix="ivrkit-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    atexit.register(shutil.rmtree, folder, True)
    return folder


@dataclass
class Readiness:
    """What `/ready` answers (see the module docstring). Set by the worker as it starts."""

    flows: bool = False
    registered: bool = False
    server: Any = None  # the livekit-agents AgentServer, once built

    def check(self) -> tuple[bool, str]:
        if not self.flows:
            return False, "loading flows"
        if self.server is None or not self.registered:
            return False, "not registered with the LiveKit server yet"
        if getattr(self.server, "draining", False):
            return False, "draining: finishing its calls, taking no new ones"
        if getattr(self.server, "_connection_failed", False):
            return False, "the connection to the LiveKit server failed"
        return True, "ready"


class WorkerSeries:
    """The worker's own gauges, read at scrape time (a prometheus_client custom collector):

    ivrkit_worker_ready{executor}      1 while /ready answers 200
    ivrkit_worker_calls{executor}      calls taken (served and busy), as admission counts them (from
                                       its load, which is that count scaled: one reading, not two)
    ivrkit_worker_max_calls{executor}  capacity (--max-calls)
    ivrkit_worker_load{executor}       the load reported to LiveKit (see ivrkit.livekit.admission)
    """

    def __init__(self, executor: str, readiness: Readiness) -> None:
        self.executor = executor
        self.readiness = readiness
        self.admission: Any = None  # ivrkit.livekit.admission.Admission, once built

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=["executor"])
            family.add_metric([self.executor], value)
            return family

        yield gauge("ivrkit_worker_ready", "1 while the worker is ready for calls (/ready)",
                    1.0 if self.readiness.check()[0] else 0.0)
        admission = self.admission
        if admission is not None:
            load = admission.load()  # SERVER_TARGET_LOAD x taken / (max_calls + busy_calls)
            places = admission.max_calls + admission.busy_calls
            taken = round(load / SERVER_TARGET_LOAD * places)
            yield gauge("ivrkit_worker_calls", "Calls taken (served and busy)", float(taken))
            yield gauge("ivrkit_worker_max_calls", "Capacity in calls (--max-calls)", float(admission.max_calls))
            yield gauge("ivrkit_worker_load", "Load reported to the LiveKit server", load)


class Status:
    """The running status server: its `readiness`, its worker gauges and the port it got."""

    def __init__(self, opts: WorkerOptions) -> None:
        from prometheus_client import CollectorRegistry

        self.readiness = Readiness()
        self.worker = WorkerSeries(opts.executor, self.readiness)
        self._own = CollectorRegistry(auto_describe=False)
        self._own.register(self.worker)
        self._http: ThreadingHTTPServer | None = None
        self.host = opts.bind_host
        self.port = 0

    def attach(self, server: Any, admission: Any) -> None:
        """The worker is built: readiness follows it, the gauges read its admission."""
        self.readiness.server = server
        self.worker.admission = admission

    def exposition(self) -> bytes:
        """Every series of this worker in the text format (see the module docstring)."""
        from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        folder = os.environ.get(MULTIPROC_ENV)
        if folder:
            forget_dead_processes(folder)
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            calls = generate_latest(merged)
        else:
            calls = generate_latest(REGISTRY)
        return calls + generate_latest(self._own)

    def serve(self, port: int) -> None:
        handler = type("StatusHandler", (_Handler,), {"status": self})
        try:
            self._http = ThreadingHTTPServer((self.host, port), handler)
        except OSError as e:
            raise SettingsError(f"cannot listen on {self.host or '*'}:{port} for metrics and readiness "
                                f"(--metrics-port / IVRKIT_METRICS_PORT): {e.strerror or e}") from None
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, name="ivrkit-status", daemon=True).start()

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


def forget_dead_processes(folder: str) -> list[int]:
    """Drop the live-gauge files of job processes that have exited (`ivrkit_calls_active` is a
    `livesum` gauge): prometheus_client keeps them until someone calls `mark_process_dead`, which
    livekit-agents does not, so a job process killed mid-call would count as an active call for
    good. Counter and histogram files stay: what a finished call counted must not vanish.
    Returns the pids forgotten."""
    from prometheus_client.multiprocess import mark_process_dead

    dead = []
    for name in os.listdir(folder):
        if not (name.startswith("gauge_live") and name.endswith(".db")):
            continue
        pid = int(name[:-3].rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            try:
                mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
            except FileNotFoundError:  # a scrape on another thread forgot it first
                continue
            dead.append(pid)
        except PermissionError:  # alive, someone else's
            pass
    return dead


class _Handler(BaseHTTPRequestHandler):
    status: Status

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            try:
                self._answer(200, self.status.exposition(), CONTENT_TYPE_LATEST)
            except Exception as e:  # a scrape must not take the server down; say why
                logger.exception("/metrics failed")
                self._answer(500, f"{type(e).__name__}: {e}\n".encode(), "text/plain; charset=utf-8")
        elif path == "/ready":
            ok, why = self.status.readiness.check()
            self._answer(200 if ok else 503, f"{why}\n".encode(), "text/plain; charset=utf-8")
        else:
            self._answer(404, b"/metrics or /ready\n", "text/plain; charset=utf-8")

    def _answer(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # a probe every few seconds is not news
        pass


def start_status(opts: WorkerOptions) -> Status | None:
    """Start the status server when `opts.metrics_port` is set (one line on stdout says where);
    raises SettingsError when the port cannot be had."""
    if opts.metrics_port is None:
        return None
    status = Status(opts)
    status.serve(opts.metrics_port)
    print(f"ivrkit status http://{status.host or '0.0.0.0'}:{status.port} (/metrics, /ready)", flush=True)
    return status
