"""The worker's metrics and readiness end to end: a real livekit-server, the worker as a
subprocess, real callers, and a real Prometheus server scraping the worker's metrics port.

What a team asks of them is checked through Prometheus' own query API: where callers hung up
(the drop-off by state) and how fast prompts answered keys — the latter against the figure the
call traces give for the very same keys. The process executor's job processes are shown to
report through the same port (prometheus_client's multiprocess folder), and SIGTERM is shown to
flip readiness to 503 while liveness stays OK and the call in progress runs to its end.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from stack import prometheus
from stack.prometheus import Prometheus, get
from stack.stack import Stack
from stack.testenv import tone_flows, unavailable
from stack.worker import Worker

REPO = Path(__file__).resolve().parents[2]
FLOW = Path(__file__).resolve().parent / "flows" / "worker.yaml"
FLOW_NAME = "e2e-worker"
PIN = "4321"  # one of testenv.TYPED_PINS: the session's PIN sweep looks for it everywhere
TONES: dict[str, tuple[float, float]] = {
    "main": (440, 2.5), "no_input": (550, 0.6), "no_match": (620, 0.6), "pin": (700, 1.5),
    "bad_pin": (780, 0.6), "ok": (860, 0.8), "sent": (1000, 0.8), "goodbye": (1150, 0.8),
}
HEALTH_PORT = 18081  # inside the test namespace only
METRICS_PORT = 19100


@pytest.fixture(scope="module", autouse=True)
def _prometheus_installed() -> None:
    if prometheus.binary() is None:
        unavailable("Debian's prometheus is not installed; install it with `bash tests/stack/install.sh`")


def _worker(stack: Stack, base: Path, agent: str, executor: str, metrics_port: int) -> Worker:
    flows = tone_flows([FLOW], base / "flows", TONES)
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(flows), "--agent-name", agent,
            "--executor", executor, "--http-port", str(HEALTH_PORT), "--metrics-port", str(metrics_port),
            "--max-calls", "5", "--trace-dir", str(base / "traces"), "--default-flow", FLOW_NAME]
    proc = stack.start(argv, name=f"worker-metrics-{executor}", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    proc.wait_for_log(rf"ivrkit status http://0\.0\.0\.0:{metrics_port} \(/metrics, /ready\)", 60)
    proc.wait_for_log(rf"ivrkit worker registered agent_name={agent} flows={FLOW_NAME} executor={executor}", 60)
    return Worker(proc, base / "traces", agent)


def _hang_up_in_pin(stack: Stack, worker: Worker, room: str) -> None:
    """Menu, key 1, the PIN prompt starts — and the caller hangs up there."""
    caller = stack.caller(room, "caller", agent_name=worker.agent_name)
    caller.wait_for_tone(TONES["main"][0], 20)
    caller.dtmf("1")
    caller.wait_for_tone(TONES["pin"][0], 10)
    caller.leave()
    assert "caller_hangup" in worker.job_end(room)


def _pin_to_the_end(stack: Stack, worker: Worker, room: str) -> None:
    """Menu, key 1, the PIN and pound, the "ok" prompt; the flow hangs up."""
    caller = stack.caller(room, "caller", agent_name=worker.agent_name)
    caller.wait_for_tone(TONES["main"][0], 20)
    caller.dtmf("1")
    caller.wait_for_tone(TONES["pin"][0], 10, ended=True)
    caller.press(PIN + "#", interval=0.15)
    caller.wait_for_tone(TONES["ok"][0], 10, ended=True)
    caller.wait_for("disconnected", 10)
    assert "hangup" in worker.job_end(room)


def key_to_prompt_from_trace(trace: list[dict[str, object]]) -> list[tuple[str, float]]:
    """(state, seconds) for each key a prompt answered, worked out from a call's trace file
    alone: a used key's arrival (call clock) to the next prompt record (file time + the call
    clock at t=0), unless a timeout came between."""
    clock = next(float(r["clock"]) for r in trace if r["event"] == "call")  # type: ignore[arg-type]
    out, pending = [], None
    for r in trace:
        if r["event"] == "key" and "consumed" in r:
            pending = float(r["arrived"])  # type: ignore[arg-type]
        elif r["event"] == "timeout":
            pending = None
        elif r["event"] == "prompt" and pending is not None:
            out.append((str(r["state"]), float(r["t"]) + clock - pending))  # type: ignore[arg-type]
            pending = None
    return out


def test_prometheus_reads_back_the_drop_off_and_key_to_prompt_latency(
        stack: Stack, tmp_path: Path, room_name: str) -> None:
    worker = _worker(stack, tmp_path, "ivrkit-metrics", "thread", METRICS_PORT)
    prom = Prometheus.start(stack, [f"127.0.0.1:{METRICS_PORT}"], tmp_path / "prometheus", interval=1.0)
    deadline = time.monotonic() + 15
    while f"http://127.0.0.1:{METRICS_PORT}/metrics" not in prom.targets_up():
        assert time.monotonic() < deadline, "Prometheus never scraped the worker"
        time.sleep(0.5)

    rooms = [room_name + "-drop", room_name + "-full"]
    _hang_up_in_pin(stack, worker, rooms[0])
    _pin_to_the_end(stack, worker, rooms[1])
    expected: dict[str, list[float]] = {}
    for room in rooms:
        for state, seconds in key_to_prompt_from_trace(worker.trace(room)):
            expected.setdefault(state, []).append(seconds)
    assert {s: len(v) for s, v in expected.items()} == {"pin": 2, "pin_ok": 1}, expected

    f = f'flow="{FLOW_NAME}"'
    prom.wait_for(f"sum(ivrkit_calls_ended_total{{{f}}})", 2)
    drop_off = prom.query(f"ivrkit_caller_hangups_total{{{f}}}")
    assert [(r["metric"]["state"], float(r["value"][1])) for r in drop_off] == [("pin", 1.0)]
    assert prom.value(f'ivrkit_calls_ended_total{{{f},ended_by="caller_hangup"}}') == 1
    assert prom.value(f'ivrkit_calls_ended_total{{{f},ended_by="hangup"}}') == 1
    assert prom.value(f"ivrkit_calls_active{{{f}}}") == 0
    assert prom.value(f'ivrkit_menu_choices_total{{{f},state="main",key="1"}}') == 2
    assert prom.value(f'ivrkit_collects_total{{{f},state="pin",reason="terminator"}}') == 1
    assert prom.value(f'ivrkit_collects_total{{{f},state="pin",reason="hangup"}}') == 1

    for state, seconds in expected.items():
        labels = f'{f},state="{state}"'
        assert prom.value(f"ivrkit_key_to_prompt_seconds_count{{{labels}}}") == len(seconds)
        got = prom.value(f"ivrkit_key_to_prompt_seconds_sum{{{labels}}}")
        assert got == pytest.approx(sum(seconds), abs=1e-3), (state, got, seconds)
    p99 = prom.value(f"histogram_quantile(0.99, sum by (le) (ivrkit_key_to_prompt_seconds_bucket{{{f}}}))")
    assert p99 is not None and 0 < p99 <= 1.0, p99
    rendered = prom.value(f"ivrkit_prompt_render_seconds_count{{{f}}}")
    assert rendered is not None and rendered >= 5  # main x2, pin x2, ok
    assert prom.value('lk_agents_worker_load') is not None  # livekit-agents' own series come along
    assert prom.value('ivrkit_worker_ready{executor="thread"}') == 1
    print(f"\nkey -> prompt from the traces: {expected}; p99 (Prometheus) {p99:.3f} s")

    code, text = get(stack, f"http://127.0.0.1:{METRICS_PORT}/metrics")
    assert code == 200 and PIN not in text


def test_the_process_executor_reports_its_calls_through_the_same_port(
        stack: Stack, tmp_path: Path, room_name: str) -> None:
    """Each call runs in a job process of its own; its series reach the worker's /metrics
    through prometheus_client's multiprocess folder (ivrkit.livekit.status)."""
    worker = _worker(stack, tmp_path, "ivrkit-metrics-proc", "process", METRICS_PORT + 1)
    _hang_up_in_pin(stack, worker, room_name)
    code, text = get(stack, f"http://127.0.0.1:{METRICS_PORT + 1}/metrics")
    assert code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    flow = ("flow", FLOW_NAME)
    assert samples[("ivrkit_caller_hangups_total", (flow, ("state", "pin")))] == 1
    assert samples[("ivrkit_calls_started_total", (flow,))] == 1
    assert samples[("ivrkit_key_to_prompt_seconds_count", (flow, ("state", "pin")))] == 1
    assert samples[("ivrkit_calls_active", (flow,))] == 0
    assert samples[("ivrkit_worker_ready", (("executor", "process"),))] == 1


def test_sigterm_makes_the_worker_not_ready_while_it_stays_alive_and_finishes_its_call(
        stack: Stack, tmp_path: Path, room_name: str) -> None:
    worker = _worker(stack, tmp_path, "ivrkit-metrics-drain", "thread", METRICS_PORT + 2)
    ready, live = f"http://127.0.0.1:{METRICS_PORT + 2}/ready", f"http://127.0.0.1:{HEALTH_PORT}/"
    assert get(stack, ready) == (200, "ready\n")
    assert get(stack, live) == (200, "OK")
    caller = stack.caller(room_name, "caller", agent_name=worker.agent_name)
    caller.wait_for_tone(TONES["main"][0], 20)
    os.kill(worker.process.pid, signal.SIGTERM)  # the guard passes it to the worker
    worker.process.wait_for_log(r"draining worker", 10)
    assert get(stack, ready) == (503, "draining: finishing its calls, taking no new ones\n")
    assert get(stack, live) == (200, "OK")
    caller.dtmf("1")
    caller.wait_for_tone(TONES["pin"][0], 10, ended=True)
    assert get(stack, ready)[0] == 503 and get(stack, live) == (200, "OK")  # still draining, still alive
    caller.press(PIN + "#", interval=0.15)
    caller.wait_for_tone(TONES["ok"][0], 10, ended=True)
    caller.wait_for("disconnected", 10)
    deadline = time.monotonic() + 20
    while worker.process.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker.process.returncode == 0, worker.process.log_tail()
