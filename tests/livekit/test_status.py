"""ivrkit.livekit.status: the status port over real HTTP — readiness by reason, the worker's
gauges, and a call counted in another process (the process executor's multiprocess mode) read
back through this process's /metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivrkit.livekit.admission import Admission
from ivrkit.livekit.settings import SettingsError, WorkerOptions
from ivrkit.livekit.status import MULTIPROC_ENV, Readiness, Status, prepare_multiprocess, start_status

REPO = Path(__file__).resolve().parents[2]


class Server:
    """The two things readiness reads of livekit-agents' AgentServer (its public `draining`
    property, and the flag its own health check reads), without a LiveKit server to register
    with; tests/e2e/test_metrics.py drains a real one."""

    def __init__(self) -> None:
        self.draining = False
        self._connection_failed = False
        self.active_jobs: list[object] = []


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def status() -> Iterator[Status]:
    s = start_status(WorkerOptions.from_env(".", env={}, metrics_port=0, http_host="127.0.0.1"))
    assert s is not None
    yield s
    s.close()


def test_readiness_says_why_until_flows_are_loaded_registered_and_not_draining() -> None:
    r, server = Readiness(), Server()
    assert r.check() == (False, "loading flows")
    r.flows = True
    assert r.check() == (False, "not registered with the LiveKit server yet")
    r.server = server
    assert r.check() == (False, "not registered with the LiveKit server yet")
    r.registered = True
    assert r.check() == (True, "ready")
    server.draining = True
    assert r.check() == (False, "draining: finishing its calls, taking no new ones")
    server.draining, server._connection_failed = False, True
    assert r.check() == (False, "the connection to the LiveKit server failed")


def test_ready_answers_503_then_200_and_metrics_carry_the_worker_gauges(status: Status) -> None:
    base = f"http://127.0.0.1:{status.port}"
    assert _get(base + "/ready") == (503, "loading flows\n")
    code, text = _get(base + "/metrics")
    assert code == 200 and 'ivrkit_worker_ready{executor="thread"} 0.0' in text

    server = Server()
    admission = Admission(max_calls=4, busy_calls=2)
    admission.server = server
    admission.decide("job-1", [])  # accepted, not running yet: one place taken
    status.attach(server, admission)
    status.readiness.flows = status.readiness.registered = True
    assert _get(base + "/ready") == (200, "ready\n")
    code, text = _get(base + "/metrics")
    assert 'ivrkit_worker_ready{executor="thread"} 1.0' in text
    assert 'ivrkit_worker_calls{executor="thread"} 1.0' in text
    assert 'ivrkit_worker_max_calls{executor="thread"} 4.0' in text
    assert f'ivrkit_worker_load{{executor="thread"}} {0.7 * 1 / 6}' in text
    assert "python_info" in text  # the process's default registry: livekit-agents' series live there

    server.draining = True
    assert _get(base + "/ready") == (503, "draining: finishing its calls, taking no new ones\n")
    assert _get(base + "/nothing")[0] == 404


def test_a_port_in_use_is_one_clear_settings_error(status: Status) -> None:
    with pytest.raises(SettingsError, match=rf"cannot listen on 127.0.0.1:{status.port} for metrics and readiness"):
        start_status(WorkerOptions.from_env(".", env={}, metrics_port=status.port, http_host="127.0.0.1"))


def test_multiprocess_mode_only_for_the_process_executor_with_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert prepare_multiprocess(WorkerOptions.from_env(".", env={}, metrics_port=9100)) is None  # thread
    assert prepare_multiprocess(WorkerOptions.from_env(".", env={}, executor="process")) is None  # no metrics
    assert MULTIPROC_ENV not in os.environ
    monkeypatch.setenv(MULTIPROC_ENV, "/given/by/the/operator")
    assert prepare_multiprocess(WorkerOptions.from_env(".", env={}, executor="process", metrics_port=0)) == \
        "/given/by/the/operator"


CHILD = textwrap.dedent('''
    import asyncio, os, sys
    from ivrkit.flow.model import Flow, Menu, State
    from ivrkit.metrics import default_metrics
    from ivrkit.prompts import Prompt
    from ivrkit.testing import FlowTester

    flow = Flow(name="m", start="main", file="m.yaml", states={
        "main": State("main", "m.yaml:1", menu=Menu(Prompt.text("Press 1."), {"1": "bye"})),
        "bye": State("bye", "m.yaml:2", say=Prompt.text("Bye."), hangup=True)})

    async def call() -> None:
        sink = default_metrics().call(flow)
        async with FlowTester(flow, metrics=sink) as t:
            await t.until_input()
            await t.press("1")
            if sys.argv[1:] == ["killed"]:  # a job process killed mid-call, after a publish
                sink.flush()
                os._exit(9)
            await t.advance(5)

    asyncio.run(call())
''')


def test_a_call_counted_in_a_job_process_is_served_by_the_workers_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the process executor does: the job process (here a plain child process) counts into
    the multiprocess folder; this process's /metrics merges it. Run twice: counters add up."""
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {**os.environ, MULTIPROC_ENV: str(folder), "PYTHONPATH": str(REPO)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, timeout=60)
    killed = subprocess.run([sys.executable, "-c", CHILD, "killed"], env=env, timeout=60)
    assert killed.returncode == 9
    assert len(list(folder.glob("gauge_livesum_*.db"))) == 3
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    before = CollectorRegistry()
    MultiProcessCollector(before, str(folder))  # type: ignore[no-untyped-call]
    assert before.get_sample_value("ivrkit_calls_active", {"flow": "m"}) == 1.0  # what plain merging says
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    s = start_status(WorkerOptions.from_env(".", env={}, executor="process", metrics_port=0, http_host="127.0.0.1"))
    assert s is not None
    try:
        code, text = _get(f"http://127.0.0.1:{s.port}/metrics")
    finally:
        s.close()
    assert code == 200
    assert 'ivrkit_calls_started_total{flow="m"} 3.0' in text  # the killed one too
    assert 'ivrkit_menu_choices_total{flow="m",key="1",state="main"} 3.0' in text
    assert 'ivrkit_calls_ended_total{ended_by="hangup",flow="m"} 2.0' in text
    # the killed process's +1 is forgotten with its process: no call is active
    assert "ivrkit_calls_active{" not in text.replace('ivrkit_calls_active{flow="m"} 0.0', "")
    assert list(folder.glob("gauge_livesum_*.db")) == []
    assert 'ivrkit_worker_ready{executor="process"} 0.0' in text
