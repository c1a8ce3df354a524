"""The guard's call registry: a worker's calls in progress, as files that outlive the worker.
(The guard itself — SIGKILL a worker mid-call, its caller hung up, a new worker serving — is
proven end to end in tests/e2e/test_worker.py.)"""

from __future__ import annotations

from pathlib import Path

from ivrkit.livekit.guard import CallRegistry, hang_up
from ivrkit.livekit.settings import LiveKitCredentials


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


def test_nothing_registered_asks_the_server_nothing(tmp_path: Path) -> None:
    creds = LiveKitCredentials(url="ws://127.0.0.1:9", api_key="k", api_secret="s")  # nothing listens
    assert hang_up(CallRegistry(tmp_path), creds) == []


def test_a_room_the_server_cannot_be_asked_about_stays_registered(tmp_path: Path) -> None:
    reg = CallRegistry(tmp_path)
    reg.add("call-1")
    creds = LiveKitCredentials(url="http://127.0.0.1:9", api_key="k", api_secret="s")  # refused at once
    assert hang_up(reg, creds) == []
    assert reg.rooms() == ["call-1"]  # the next sweep tries again
