"""The job's own limits on LiveKit: a room join livekit's native client never answers must end
the call (logged, room deleted) instead of holding the job and its caller for good."""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivrkit.errors import ChannelError
from ivrkit.livekit import job
from ivrkit.livekit.settings import WorkerOptions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _free_the_join_turn() -> Iterator[None]:
    """A stand-in join is never answered, so it keeps the process-wide join turn
    (ivrkit.livekit.joining) after its test's loop is gone; give it back for the next test."""
    yield
    from ivrkit.livekit import joining

    if joining._TURN.locked():
        joining._TURN.release()


class StandInContext:
    """What `run_call` and `entrypoint` use of a JobContext; `connect` is never answered, as
    when livekit's FFI times out "waiting for ReadyForRoomEventRequest after ConnectCallback"."""

    def __init__(self) -> None:
        self.left = 0

        async def disconnect() -> None:
            self.left += 1

        # An rtc.Room has no name until its join succeeded; the job knows its room from the start.
        self.room = types.SimpleNamespace(name="", disconnect=disconnect)
        self.job = types.SimpleNamespace(id="AJ_1", room=types.SimpleNamespace(name="r1"))
        self.deleted: list[str] = []
        self.shutdown_reason: str | None = None

        async def delete_room(request: Any) -> None:
            self.deleted.append(request.room)

        self.api = types.SimpleNamespace(room=types.SimpleNamespace(delete_room=delete_room))

    async def connect(self, **kwargs: Any) -> None:
        await asyncio.get_running_loop().create_future()  # never answered

    def shutdown(self, reason: str) -> None:
        self.shutdown_reason = reason


async def test_a_join_never_answered_fails_the_call_within_the_limit() -> None:
    ctx = StandInContext()
    with pytest.raises(ChannelError, match=r"joining room 'r1' was not answered within 0 s"):
        await job.run_call(WorkerOptions(path=REPO / "flows", default_flow="acme-bank"), ctx, connect_limit=0)  # type: ignore[arg-type]


async def test_the_failed_join_is_logged_and_the_room_deleted(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    ctx = StandInContext()
    monkeypatch.setattr(job, "CONNECT_LIMIT", 0.0)
    with caplog.at_level(logging.INFO, logger="ivrkit.livekit"):
        await job.entrypoint(WorkerOptions(path=REPO / "flows", default_flow="acme-bank"), ctx)  # type: ignore[arg-type]
    assert ctx.deleted == ["r1"], "the caller was not hung up"
    assert ctx.shutdown_reason == "call failed (see the error above)"
    assert any("joining room 'r1' was not answered" in r.getMessage() or
               (r.exc_info and "joining room 'r1'" in str(r.exc_info[1])) for r in caplog.records)


async def test_a_call_still_joining_is_registered_for_the_guard(tmp_path: Path) -> None:
    """A worker that dies while calls are still joining (an overload) must not leave those
    callers in silence: the room is in the guard's folder from the job's start until it ends."""
    from ivrkit.livekit.guard import CallRegistry

    ctx = StandInContext()
    opts = WorkerOptions(path=REPO / "flows", default_flow="acme-bank", guard_dir=tmp_path)
    call = asyncio.ensure_future(job.run_call(opts, ctx, connect_limit=60))  # type: ignore[arg-type]
    for _ in range(20):  # until the join is under way (it waits on the stand-in's connect)
        await asyncio.sleep(0)
    assert not call.done()
    assert CallRegistry(tmp_path).rooms() == ["r1"]
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert CallRegistry(tmp_path).rooms() == []


async def test_render_time_is_observed_for_each_prompt_even_one_that_fails() -> None:
    """`_timed` wraps the job's synthesizer when the worker serves metrics: every prompt's
    render time reaches `ivrkit_prompt_render_seconds`, a render that raises too."""
    from prometheus_client import CollectorRegistry

    from ivrkit.clock import LoopClock
    from ivrkit.metrics import IvrMetrics

    registry = CollectorRegistry()
    series = IvrMetrics(registry).flow("f")
    calls: list[str] = []

    async def synthesize(prompt: Any) -> Any:
        calls.append(prompt)
        await asyncio.sleep(0.01)
        if prompt == "bad":
            raise RuntimeError("no voice")
        return b"pcm"

    timed = job._timed(synthesize, LoopClock(), series.observe_render)
    assert await timed("hello") == b"pcm"
    with pytest.raises(RuntimeError, match="no voice"):
        await timed("bad")
    assert calls == ["hello", "bad"]
    assert registry.get_sample_value("ivrkit_prompt_render_seconds_count", {"flow": "f"}) == 2
    total = registry.get_sample_value("ivrkit_prompt_render_seconds_sum", {"flow": "f"})
    assert total is not None and total >= 0.02


def test_calls_are_counted_only_when_the_worker_serves_metrics(tmp_path: Path) -> None:
    from ivrkit.flow.model import Flow, Menu, State
    from ivrkit.prompts import Prompt

    flow = Flow(name="f", start="main", file="f.yaml", states={
        "main": State("main", "f.yaml:1", menu=Menu(Prompt.text("Press 1."), {"1": "main"}))})
    assert job._call_metrics(WorkerOptions.from_env(tmp_path, env={}), flow) is None
    sink = job._call_metrics(WorkerOptions.from_env(tmp_path, env={}, metrics_port=0), flow)
    assert sink is not None and sink.series.name == "f" and sink.menus == frozenset({"main"})


class Room:
    """What `wait_for_caller` uses of an rtc.Room: its participants and join events."""

    def __init__(self) -> None:
        self.remote_participants: dict[str, Any] = {}
        self.handlers: dict[str, Any] = {}

    def on(self, event: str, handler: Any) -> None:
        self.handlers[event] = handler

    def off(self, event: str, handler: Any) -> None:
        assert self.handlers.pop(event) is handler


async def test_waiting_for_the_caller_ends_when_the_worker_stops() -> None:
    """A job still waiting for its caller when the worker stops gives up at once (no call to
    stop yet), instead of waiting out `caller_timeout` (60 s)."""
    room, give_up = Room(), asyncio.Event()
    waiting = asyncio.create_task(job.wait_for_caller(room, 60.0, give_up))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert "participant_connected" in room.handlers and not waiting.done()
    give_up.set()
    assert await asyncio.wait_for(waiting, 1.0) is None
    assert room.handlers == {}  # its handler is gone with it


async def test_waiting_for_the_caller_returns_the_one_who_joins() -> None:
    room, give_up = Room(), asyncio.Event()
    waiting = asyncio.create_task(job.wait_for_caller(room, 60.0, give_up))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    caller = types.SimpleNamespace(kind=job._SIP, identity="sip_+15550100")
    room.handlers["participant_connected"](caller)
    assert await asyncio.wait_for(waiting, 1.0) is caller
    assert room.handlers == {}
