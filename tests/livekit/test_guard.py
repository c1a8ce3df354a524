"""The guard's call registry: a worker's calls in progress, as files that outlive the worker.
And each worker's options when the guard runs several. (The guard itself — SIGKILL a worker
mid-call, its caller hung up, a new worker serving — is proven end to end in
tests/e2e/test_worker.py; several workers in tests/e2e/test_scale_out.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivrkit.livekit.guard import CallRegistry, hang_up
from ivrkit.livekit.settings import LiveKitCredentials, SettingsError, WorkerOptions


def test_rooms_are_registered_until_removed_whatever_their_name(tmp_path: Path) -> None:
    reg = CallRegistry(tmp_path / "calls")
    names = ["call-+15550100", "room/with/slashes", "ünïcode room", ".hidden", "a%2Fb"]
    for name in names:
        reg.add(name)
    assert reg.rooms() == sorted(names)
    assert CallRegistry(tmp_path / "calls").rooms() == sorted(names)  # what a new guard finds
    reg.remove("room/with/slashes")
    reg.remove("never registered")
    assert reg.rooms() == sorted(set(names) - {"room/with/slashes"})
    assert all(p.parent == tmp_path / "calls" for p in (tmp_path / "calls").iterdir())


def test_two_jobs_in_one_room_each_keep_it_registered_until_their_own_end(tmp_path: Path) -> None:
    reg = CallRegistry(tmp_path)
    reg.add("call+1", "AJ_a")
    reg.add("call+1", "AJ_b")  # a second dispatch to the same room
    reg.add("call", "AJ_c")  # a room whose name is the first one's up to its "+"
    reg.remove("call+1", "AJ_a")
    assert reg.rooms() == ["call", "call+1"]  # AJ_b still serves it
    reg.forget("call+1")  # hung up: every job's registration goes
    assert reg.rooms() == ["call"]


def test_nothing_registered_asks_the_server_nothing(tmp_path: Path) -> None:
    creds = LiveKitCredentials(url="ws://127.0.0.1:9", api_key="k", api_secret="s")  # nothing listens
    assert hang_up(CallRegistry(tmp_path), creds) == []


def test_a_room_the_server_cannot_be_asked_about_stays_registered(tmp_path: Path) -> None:
    reg = CallRegistry(tmp_path)
    reg.add("call-1")
    creds = LiveKitCredentials(url="http://127.0.0.1:9", api_key="k", api_secret="s")  # refused at once
    assert hang_up(reg, creds) == []
    assert reg.rooms() == ["call-1"]  # the next sweep tries again


def test_one_worker_keeps_the_guard_s_folder_and_its_options(tmp_path: Path) -> None:
    from ivrkit.livekit.guard import child_options

    opts = WorkerOptions(path=tmp_path, http_port=9000, metrics_port=9100, max_calls=7)
    one = child_options(opts, tmp_path, 0)
    assert (one.guard_dir, one.http_port, one.metrics_port, one.max_calls) == (tmp_path, 9000, 9100, 7)


def test_several_workers_get_a_folder_ports_and_a_share_of_the_default_capacity_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivrkit.livekit.guard import child_options

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    opts = WorkerOptions(path=tmp_path, workers=3, metrics_port=9100)
    got = [child_options(opts, tmp_path, i) for i in range(3)]
    assert [c.guard_dir for c in got] == [tmp_path / f"worker-{i}" for i in range(3)]
    assert [c.http_port for c in got] == [8081, 8082, 8083]  # livekit-agents' default, then the next ones
    assert [c.metrics_port for c in got] == [9100, 9101, 9102]
    assert [c.max_calls for c in got] == [4, 4, 4]  # 5 per core x 2 cores, shared: ceil(10 / 3)
    free = child_options(WorkerOptions(path=tmp_path, workers=2, http_port=0, max_calls=6), tmp_path, 1)
    assert (free.http_port, free.metrics_port, free.max_calls) == (0, None, 6)  # 0: any free port; given: kept


def test_the_guard_names_each_worker_by_its_number_when_it_runs_several(tmp_path: Path) -> None:
    from ivrkit.livekit.guard import _Child, child_options

    def label(opts: WorkerOptions, number: int) -> str:
        return _Child(number, child_options(opts, tmp_path, number), CallRegistry(tmp_path))._n

    assert label(WorkerOptions(path=tmp_path), 0) == ""  # one worker: "worker pid=…", as before
    assert [label(WorkerOptions(path=tmp_path, workers=2), i) for i in (0, 1)] == [" 0", " 1"]


def test_several_workers_need_the_guard_and_a_sane_count(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="several workers .* under `ivrkit start`'s guard"):
        WorkerOptions(path=tmp_path, workers=2, guard=False)
    with pytest.raises(SettingsError, match="workers must be 1-64, not 0"):
        WorkerOptions(path=tmp_path, workers=0)
    assert WorkerOptions.from_env(tmp_path, env={"IVRKIT_WORKERS": "2"}).workers == 2
