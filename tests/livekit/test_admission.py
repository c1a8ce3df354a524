"""Admission at dispatch: exactly --max-calls served, then --busy-calls busy, then refused —
also when a burst of requests arrives before any of them runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from ivrkit.livekit.admission import (
    ADMISSION,
    ASSIGN_GRACE,
    SERVER_TARGET_LOAD,
    Admission,
    Verdict,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_gets_exactly_max_then_busy_then_refused() -> None:
    adm = Admission(max_calls=3, busy_calls=2, clock=Clock())
    verdicts = [adm.decide(f"J{i}", []) for i in range(8)]  # nothing runs yet: all still pending
    assert verdicts == ["serve"] * 3 + ["busy"] * 2 + ["refuse"] * 3


def test_running_jobs_count_once_when_their_pending_entry_is_seen_running() -> None:
    adm = Admission(max_calls=2, busy_calls=0, clock=Clock())
    assert adm.decide("J1", []) == "serve"
    assert adm.decide("J2", [("J1", "serve")]) == "serve"  # J1 now runs: counted once, not twice
    assert adm.decide("J3", [("J1", "serve"), ("J2", "serve")]) == "refuse"
    assert adm.decide("J4", [("J2", "serve")]) == "serve"  # J1 ended: its place is free again


def test_an_accepted_job_that_never_runs_is_forgotten_after_the_grace() -> None:
    clock = Clock()
    adm = Admission(max_calls=1, busy_calls=0, clock=clock)
    assert adm.decide("J1", []) == "serve"
    assert adm.decide("J2", []) == "refuse"
    clock.now += ASSIGN_GRACE + 0.1  # J1's assignment never came (the caller left)
    assert adm.decide("J3", []) == "serve"


def test_busy_calls_do_not_take_served_places() -> None:
    adm = Admission(max_calls=1, busy_calls=1, clock=Clock())
    running: list[tuple[str, Verdict]] = [("J1", "serve"), ("J2", "busy")]
    assert adm.decide("J3", running) == "refuse"
    assert adm.decide("J4", [("J1", "serve")]) == "busy"
    assert adm.decide("J5", [("J2", "busy")]) == "serve"


@dataclass
class _Request:
    id: str
    answers: list[Any] = field(default_factory=list)

    async def accept(self, **kw: Any) -> None:
        self.answers.append(("accept", kw))

    async def reject(self, *, terminate: bool = True) -> None:
        self.answers.append(("reject", terminate))


@dataclass
class _Args:
    attributes: dict[str, str] | None


@dataclass
class _Job:
    id: str


@dataclass
class _Running:
    job: _Job
    accept_arguments: _Args


@dataclass
class _Server:
    active_jobs: list[_Running]


def test_the_request_callback_tags_the_verdict_and_refuses_so_another_worker_may_take_it() -> None:
    server = _Server([_Running(_Job("J0"), _Args({ADMISSION: "serve"}))])
    adm = Admission(max_calls=1, busy_calls=1, clock=Clock(), server=server)
    busy, refused = _Request("J1"), _Request("J2")
    asyncio.run(adm(busy))
    asyncio.run(adm(refused))
    assert busy.answers == [("accept", {"attributes": {ADMISSION: "busy"}})]
    assert refused.answers == [("reject", False)]  # terminate=False: LiveKit tries other workers
    assert adm.load() == SERVER_TARGET_LOAD  # every place taken: the server offers no more


def test_load_reaches_the_servers_target_only_when_every_place_is_taken() -> None:
    server = _Server([_Running(_Job("J0"), _Args(None)), _Running(_Job("J1"), _Args({ADMISSION: "busy"}))])
    adm = Admission(max_calls=4, busy_calls=2, clock=Clock(), server=server)
    assert adm.load() == pytest.approx(SERVER_TARGET_LOAD * 2 / 6)  # a job without the attribute counts as served
    assert adm.decide("J2", adm._running()) == "serve"
    assert adm.load() == pytest.approx(SERVER_TARGET_LOAD * 3 / 6)  # accepted, not yet running: counted
    server.active_jobs.append(_Running(_Job("J2"), _Args({ADMISSION: "serve"})))
    assert adm.load() == pytest.approx(SERVER_TARGET_LOAD * 3 / 6)  # now running: still counted once


def test_a_call_that_ran_and_ended_between_two_requests_frees_its_place() -> None:
    """Only `load()` (every 0.5 s) saw J1 running; then it ended. Before, J1 stayed counted as
    accepted-not-running for the rest of the grace: the worker reported itself full and
    livekit-server dispatched new calls to nobody."""
    server = _Server([])
    adm = Admission(max_calls=1, busy_calls=0, clock=Clock(), server=server)
    assert adm.decide("J1", adm._running()) == "serve"
    assert adm.load() == SERVER_TARGET_LOAD  # accepted, not yet running
    server.active_jobs.append(_Running(_Job("J1"), _Args({ADMISSION: "serve"})))
    assert adm.load() == SERVER_TARGET_LOAD  # running: counted once
    server.active_jobs.clear()  # the call ended before any other request came in
    assert adm.load() == 0.0
    assert adm.decide("J2", adm._running()) == "serve"
    assert adm._started == set()  # forgotten with J1's pending entry
