"""Scale-out on one real livekit-server: three ivrkit workers registered under one agent name.

What LiveKit's own dispatcher does with them, end to end (docs/deploy.md, "Scaling" and "When the worker dies",
quotes the figures this test prints):

1. 30 calls spread over the three workers: each takes some, none is ever above `--max-calls`
   (from each worker's own log: the time each job was offered and the time it ended);
2. SIGKILL to a worker mid-prompt, with `ivrkit start`'s guard and without it (the guard
   killed first, as with `--no-guard` or a whole container killed): what their callers hear
   (the prompt stops; then hung up by the guard, or silence until LiveKit drops the dead agent
   and after), and new calls go to the others;
3. SIGTERM to a worker mid-call while a worker with a changed flow (version B) joins, as a
   rolling update does: the draining worker's calls run to their end, it takes no new call and
   exits when they are done; old and new versions serve at once, and every call's trace shows
   one version throughout (`flow_version` in its `call` record, and only that version's states).

Callers: the Go caller (tests/e2e/goclient) for the bulk — it joins, publishes a microphone
track and presses keys, and costs no CPU for audio (it never subscribes, so each call waits
the worker's 5 s subscription limit before its first prompt) — and the Python caller, which
hears, only where what a caller hears is the point (the killed workers' calls).

Every worker runs under its guard, also the one killed "without" it. A livekit FFI panic in any
worker fails the test: the panic that used to come with joins at the same moment
(docs/deploy.md, "Room joins take turns") is fixed, and a call lost to it would be lost in
production too.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from livekit.agents.worker import UPDATE_STATUS_INTERVAL
from stack.callers import CallerProcess
from stack.process import NsProcess
from stack.stack import Stack
from stack.testenv import tone_flows
from stack.worker import Record, Worker, events, json_object, log_records

from ivrkit.livekit.flows import flow_version

REPO = Path(__file__).resolve().parents[2]
AGENT = "ivrkit-e2e-scale"
FLOW = "e2e-scale"
MAX_CALLS = 3
#: Callers at a time in the 30-call run: two thirds of the three workers' places. A job holds its
#: place a moment after its call ends, and livekit-server learns a worker's load only every
#: 2.5 s: a call arriving while every worker is reported full is dispatched to nobody
#: (docs/deploy.md, "Scaling": keep headroom), so the run stays below full capacity.
AT_ONCE = 2 * MAX_CALLS
#: prompt -> (Hz, seconds). The menu prompt is long so that a kill lands in the middle of it;
#: the Go callers barge in, so it costs them nothing.
TONES = {"main": (440.0, 4.0), "done_a": (660.0, 0.4), "done_b": (880.0, 0.4)}
#: Version A of the flow; version B (the rollout) differs in the state "1" leads to.
FLOW_A = f"""\
flow: {FLOW}
start: main
defaults: {{timeout: 60s, retries: 1}}
states:
  main:
    menu:
      prompt: {{audio: tones/main.wav}}
      options: {{"1": done_a}}
      on_max_retries: done_a
  done_a:
    say: {{audio: tones/done_a.wav}}
    hangup: true
"""
FLOW_B = FLOW_A.replace("done_a", "done_b")
STATES = {"A": {"main", "done_a"}, "B": {"main", "done_b"}}
#: A job the worker's log shows ending (ivrkit.livekit.job.entrypoint).
ENDED = re.compile(r"job (\S+) \(room (.+)\) ended: ")
T = TypeVar("T")


@dataclass
class Node:
    """One worker as the test sees it: `ivrkit start` (the guard, and the worker its child), its
    flow version, and where it writes traces."""

    name: str
    worker: Worker
    flow: str  # "A" or "B"
    version: str

    @property
    def proc(self) -> NsProcess:
        return self.worker.process

    @property
    def trace_dir(self) -> Path:
        assert self.worker.trace_dir is not None
        return self.worker.trace_dir

    def registrations(self) -> int:
        return self.proc.log_text().count(f"ivrkit worker registered agent_name={AGENT} ")

    def wait_registered(self, times: int = 1, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.registrations() < times:
            if time.monotonic() > deadline or not self.proc.alive():
                raise AssertionError(f"{self.name} did not register (time {times}):\n{self.proc.log_tail()}")
            time.sleep(0.1)

    def worker_pid(self) -> int:
        """The worker process: the guard's latest child."""
        return int(re.findall(r"ivrkit guard: worker pid=(\d+) started", self.proc.log_text())[-1])

    def log(self) -> list[Record]:
        return log_records(self.proc.log_text())


def _start(stack: Stack, base: Path, name: str, flow: str) -> Node:
    src = base / f"{name}-src"
    src.mkdir()
    (src / "scale.yaml").write_text(FLOW_A if flow == "A" else FLOW_B)
    flows = tone_flows([src / "scale.yaml"], base / f"{name}-flows", TONES)
    trace_dir = base / f"{name}-traces"
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(flows), "--agent-name", AGENT,
            "--http-port", "0", "--max-calls", str(MAX_CALLS), "--busy-calls", "0", "--trace-dir", str(trace_dir),
            "--default-flow", FLOW, "--log-level", "INFO", "--guard-dir", str(base / f"{name}-calls")]
    proc = stack.start(argv, name=f"scale-{name}", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    return Node(name, Worker(proc, trace_dir, AGENT, trace_timeout=20), flow,
                flow_version([str(flows / "scale.yaml")]))


def _live_trace(node: Node, room: str) -> list[Record]:
    files = sorted(node.trace_dir.glob(f"{room}--*.jsonl"))
    if not files:
        return []
    return [r for line in files[0].read_text().splitlines() if (r := json_object(line)) is not None]


def _in_state(nodes: Sequence[Node], room: str, state: str, timeout: float = 30.0) -> Node:
    """The worker whose trace of `room` shows the call in `state` (its live trace file)."""
    deadline = time.monotonic() + timeout
    while True:
        for node in nodes:
            if any(r.get("state") == state for r in events(_live_trace(node, room), "state")):
                return node
            assert "FFI Panic" not in node.proc.log_text(), f"livekit's native client panicked on {node.name}"
        if time.monotonic() > deadline:
            seen = {n.name: [r["event"] for r in _live_trace(n, room)][-6:] for n in nodes}
            raise AssertionError(f"room {room} never reached {state!r} on any worker: {seen}")
        time.sleep(0.1)


def _ts(record: Record) -> float:
    return datetime.datetime.fromisoformat(str(record["timestamp"])).timestamp()


def _jobs(node: Node, rooms: set[str]) -> tuple[list[tuple[float, float]], int]:
    """From the worker's log, for calls in `rooms`: (offered, ended) wall times of each job it
    served, and how many offers it refused (offered, never ended, served elsewhere)."""
    offered: dict[str, tuple[float, str]] = {}
    ended: dict[str, float] = {}
    for r in node.log():
        message = str(r.get("message", ""))
        if message == "received job request" and r.get("room") in rooms:
            offered[str(r["job_id"])] = (_ts(r), str(r["room"]))
        elif (m := ENDED.match(message)) and m.group(2) in rooms:
            ended[m.group(1)] = _ts(r)
    spans = [(at, ended[job]) for job, (at, _) in offered.items() if job in ended]
    return spans, len(offered) - len(spans)


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    marks = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])  # an end first on a tie
    most = now = 0
    for _, step in marks:
        now += step
        most = max(most, now)
    return most


def _parallel(fn: Callable[[str], T], rooms: Sequence[str], at_once: int) -> list[T]:
    with ThreadPoolExecutor(at_once) as pool:
        return list(pool.map(fn, rooms))


def _go_call(stack: Stack, nodes: Sequence[Node], room: str) -> tuple[str, str]:
    """A whole call from a Go caller: joins, waits until the menu runs, presses 1, is hung up by
    the flow. Returns the room and the name of the worker that served it."""
    caller = stack.go_caller(room, room, agent_name=AGENT, timeout=30)
    try:
        node = _in_state(nodes, room, "main")
        caller.dtmf("1")
        caller.wait_for("disconnected", 20)
        return room, node.name
    finally:
        caller.leave(timeout=3)


def _finished(node: Node, room: str) -> list[Record]:
    trace = node.worker.trace(room)
    assert events(trace, "call_end"), (node.name, room, [r["event"] for r in trace])
    return trace


def _check_versions(nodes: Sequence[Node]) -> dict[str, int]:
    """Every trace any worker wrote: one version throughout — its `call` record names the version
    of the worker's flow files, and it entered only that version's states. Returns calls per
    version."""
    per_version = {"A": 0, "B": 0}
    for node in nodes:
        for path in sorted(node.trace_dir.glob("*.jsonl")):
            trace = [r for line in path.read_text().splitlines() if (r := json_object(line)) is not None]
            call = next((r for r in trace if r["event"] == "call"), None)
            assert call is not None, f"{path.name} on {node.name} has no call record: {trace[:2]}"
            assert call["flow"] == FLOW and call["flow_version"] == node.version, (node.name, path.name, call)
            states = {r["state"] for r in events(trace, "state")}
            assert states <= STATES[node.flow], f"{path.name} on {node.name} (version {node.flow}) entered {states}"
            per_version[node.flow] += 1
    return per_version


@pytest.fixture(scope="module")
def cluster(stack: Stack, go_caller_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    """Three workers on version A, each under `ivrkit start`'s guard."""
    base = tmp_path_factory.mktemp("scale")
    nodes = [_start(stack, base, name, "A") for name in ("w0", "w1", "w2")]
    try:
        for node in nodes:
            node.wait_registered()
        yield nodes
    finally:
        for node in nodes:
            node.proc.stop(timeout=15)


def test_thirty_calls_spread_over_three_workers_none_above_its_limit(stack: Stack, cluster: list[Node]) -> None:
    stamp = time.monotonic_ns() % 1_000_000
    rooms = [f"scale-{stamp}-{i}" for i in range(30)]
    began = time.monotonic()
    served = _parallel(lambda room: _go_call(stack, cluster, room), rooms, at_once=AT_ONCE)
    took = time.monotonic() - began
    split = {n.name: [name for _, name in served].count(n.name) for n in cluster}
    dialled = set(rooms)
    most: dict[str, int] = {}
    refused: dict[str, int] = {}
    for node in cluster:
        mine = {room for room, name in served if name == node.name}
        for room in mine:
            assert events(_finished(node, room), "state")[-1]["state"] == "done_a"
        spans, refused[node.name] = _jobs(node, dialled)
        assert len(spans) >= len(mine), f"{node.name}: {len(spans)} jobs in its log, {len(mine)} traces"
        most[node.name] = _most_at_once(spans)
        twice = [room for room in mine for other in cluster if other is not node and any(other.trace_dir.glob(f"{room}--*"))]
        assert not twice, f"calls served by {node.name} and by another worker: {twice}"
    print(f"\nscale-out: 30 calls ({AT_ONCE} callers at a time) in {took:.1f} s; calls per worker {split}; "
          f"most at once {most} (--max-calls {MAX_CALLS}); offers refused (full) {refused}")
    assert all(split.values()), f"a worker took no call: {split}"
    assert all(m <= MAX_CALLS for m in most.values()), f"a worker went above --max-calls {MAX_CALLS}: {most}"


@dataclass
class Killed:
    node: Node
    caller: CallerProcess
    room: str
    at: float  # time.monotonic() of the SIGKILL


def _kill_mid_prompt(node: Node, caller: CallerProcess, room: str, *, guard_too: bool) -> Killed:
    """SIGKILL to the worker 0.5 s into the menu prompt the caller hears; with `guard_too`, to
    its guard first (nobody is left to hang up: as with --no-guard, or a container killed)."""
    caller.wait_for_tone(TONES["main"][0], 15)
    time.sleep(0.5)
    worker = node.worker_pid()
    if guard_too:
        os.kill(node.proc.pid, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    return Killed(node, caller, room, time.monotonic())


def _heard_until(k: Killed) -> float:
    """When the caller last heard the prompt tone, relative to the kill (s)."""
    ends = [t.end for t in k.caller.tones() if t.matches(TONES["main"][0]) and t.end is not None]
    assert ends, f"{k.room}: the prompt never ended for the caller\n{k.caller.describe()}"
    return ends[-1] - k.at


def test_a_killed_worker_s_callers_with_and_without_the_guard(stack: Stack, cluster: list[Node]) -> None:
    """SIGKILL mid-prompt of w1 (its guard hangs up) and w2 (its guard killed first), each as soon as a listening caller
    of it hears its menu: what those callers experience; new calls go to the other workers."""
    w0, w1, w2 = cluster
    stamp = time.monotonic_ns() % 1_000_000
    killed: dict[str, Killed] = {}
    fillers: list[tuple[CallerProcess, Node, str]] = []
    for i in range(3 * MAX_CALLS + 2):  # callers kept where they land fill the others: w2 is reached in time
        room = f"scale-kill-{stamp}-{i}"
        caller = stack.caller(room, room, agent_name=AGENT, timeout=30)
        node = _in_state(cluster, room, "main")
        if node in (w1, w2) and node.name not in killed:
            killed[node.name] = _kill_mid_prompt(node, caller, room, guard_too=node is w2)
        else:
            fillers.append((caller, node, room))
        if len(killed) == 2:
            break
    assert set(killed) == {"w1", "w2"}, f"no call reached {set(['w1', 'w2']) - set(killed)}"
    guarded, bare = killed["w1"], killed["w2"]

    hung_up = guarded.caller.wait_for("disconnected", 10)
    w1.proc.wait_for_log(rf"killed by signal 9; hung up 1 call\(s\) it was serving: {re.escape(guarded.room)}", 10)
    for caller, node, room in fillers:  # their places are free once their jobs have ended
        caller.leave(timeout=3)
        _finished(node, room)
    # ...and once livekit-server has heard so: a worker reports its load every 2.5 s; until then
    # the server sees w0 full, and w1's new worker may not have registered: a call arriving
    # then is dispatched to nobody ("no worker is available", seen in a run).
    w1.wait_registered(times=2)
    time.sleep(UPDATE_STATUS_INTERVAL + 0.5)
    # New calls while w2's callers sit in silence: they go to the workers alive (w0, and w1's new one).
    after = [f"scale-after-{stamp}-{i}" for i in range(3)]
    served = [name for _, name in _parallel(lambda room: _go_call(stack, [w0, w1, w2], room), after, at_once=3)]
    assert "w2" not in served, served

    agent_left = bare.caller.wait_for("participant_left", 40)
    time.sleep(3.0)  # what the caller gets after the server dropped the dead agent
    observed = time.monotonic() - bare.at
    assert not bare.caller.events("disconnected"), "a caller of the dead worker without a guard was hung up"
    figures = {
        "guarded: prompt heard until": _heard_until(guarded), "guarded: hung up": hung_up.t - guarded.at,
        "no guard: prompt heard until": _heard_until(bare), "no guard: agent dropped by the server": agent_left.t - bare.at,
    }
    print("\nSIGKILL mid-prompt, ms after the kill: " + "; ".join(f"{k} {v * 1000:.0f}" for k, v in figures.items())
          + f"; no guard: still connected, in silence, {observed:.1f} s after the kill; "
          f"calls after the kills served by {served}")
    assert figures["guarded: prompt heard until"] < 1.0 and figures["no guard: prompt heard until"] < 1.0
    assert figures["guarded: hung up"] < 3.0, figures
    assert not [t for t in bare.caller.tones() if t.start > bare.at + 1.0], "the dead worker's caller heard sound"
    bare.caller.leave(timeout=3)


def test_sigterm_drains_while_a_new_flow_version_rolls_out(stack: Stack, cluster: list[Node],
                                                           tmp_path: Path) -> None:
    """A rolling update, one worker: SIGTERM to w0 while it serves calls, and a worker with flow
    version B (w3) starts at once. w0's calls run to their end on version A, it takes no new
    call and exits; meanwhile A (w1) and B (w3) serve new calls; no call mixes versions."""
    w0, w1, w2 = cluster
    w1.wait_registered(times=2)  # the guard's new worker after the kill
    live = [w0, w1]
    stamp = time.monotonic_ns() % 1_000_000
    old_rooms = [f"scale-old-{stamp}-{i}" for i in range(4)]  # w1 takes at most 3: w0 has some
    old: dict[str, CallerProcess] = {}
    lock = threading.Lock()

    def join(room: str) -> str:
        caller = stack.go_caller(room, room, agent_name=AGENT, timeout=30)
        with lock:
            old[room] = caller
        return _in_state(live, room, "main").name

    where = dict(zip(old_rooms, _parallel(join, old_rooms, at_once=4)))
    on_w0 = [room for room, name in where.items() if name == "w0"]
    assert on_w0, where

    os.kill(w0.proc.pid, signal.SIGTERM)
    term = time.monotonic()
    w3 = _start(stack, tmp_path, "w3", "B")
    w0.proc.wait_for_log(r'"draining worker"', 10)
    w3.wait_registered()
    free = 2 * MAX_CALLS - (len(old_rooms) - len(on_w0))  # every place left on w1 and w3
    new_rooms = [f"scale-new-{stamp}-{i}" for i in range(free)]
    new = [name for _, name in _parallel(lambda room: _go_call(stack, [w0, w1, w3], room), new_rooms, at_once=free)]
    assert "w0" not in new, f"the draining worker took a new call: {new}"
    assert w0.proc.alive(), "w0 exited with calls in progress"

    for room in old_rooms:  # the calls in progress since before the SIGTERM go on to their end
        old[room].dtmf("1")
    for room in old_rooms:
        old[room].wait_for("disconnected", 20)
    deadline = time.monotonic() + 20
    while w0.proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    exited, exited_wall = time.monotonic(), time.time()
    assert not w0.proc.alive(), "w0 did not exit after its last call"
    assert w0.proc.returncode == 0, w0.proc.log_tail()
    for room in on_w0:
        trace = _finished(w0, room)
        assert events(trace, "state")[-1]["state"] == "done_a", [r["event"] for r in trace]
        assert trace[-1]["reason"] == "the flow hung up", trace[-2:]
    last_end = max(_ts(r) for r in w0.log() if ENDED.match(str(r.get("message", ""))))
    offers_after_drain = [r for r in w0.log() if r.get("message") == "received job request"
                          and _ts(r) > _ts(next(x for x in w0.log() if x.get("message") == "draining worker"))]
    assert not offers_after_drain, offers_after_drain

    per_version = _check_versions([w0, w1, w2, w3])
    split = {name: new.count(name) for name in ("w1", "w3")}
    print(f"\nrolling update: SIGTERM to w0 with {len(on_w0)} call(s) in progress; w0 exited "
          f"{exited - term:.1f} s after the SIGTERM, {exited_wall - last_end:.2f} s "
          f"after its last call ended; new calls during the drain {split} (w1 version A {w1.version}, "
          f"w3 version B {w3.version}); calls per version over the whole module {per_version}")
    assert split["w3"] >= 1 and per_version["B"] >= 1 and w3.version != w0.version
