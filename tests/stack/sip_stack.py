"""The real SIP stack for one test module or session: namespace, Redis, livekit-server (with
Redis), LiveKit SIP, and helpers to route calls, place them, and answer them.

Why one object on top of `stack.Stack`: SIP tests need everything a room test needs (tokens,
processes in the namespace with logs, callers, failure reports) plus Redis and LiveKit SIP,
and the server must be started with Redis — which `Stack.up` does not do. So `SipStack.up`
builds a `Stack` around a server it started itself, in a namespace of its own
(`ivrkit-sip-<pid>`, so it never clashes with the session's plain `Stack`).

    sip = SipStack.up(log_dir)
    trunk = sip.api(lambda lk: create_inbound_trunk(lk, ["+15550001"]))
    sip.api(lambda lk: create_dispatch_rule(lk, [trunk], agent_name="ivrkit"))
    phone = sip.phone("+15550001", keys=[(1.0, "1")], hold=8.0, workdir=log_dir / "call1")
    result = phone.wait()
    sip.down()
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .netns import Namespace, list_namespaces, namespace_pids
from .process import NsProcess
from .sip import (
    LiveKitSip,
    Redis,
    clear_sip_routing,
    livekit_api,
    run_in_netns,
    start_server_with_redis,
)
from .sip_diagnosis import call_log, explain
from .sip_room_peer import SipRoomPeer
from .sipp import FarEnd, PhoneCall, SippFarEnd, SippPhone, SippResult
from .stack import Stack

NS_PREFIX = "ivrkit-sip-"
NS_ADDRESS = "10.213.0.5"
T = TypeVar("T")


def reap_stale_sip_namespaces() -> list[str]:
    """Delete ivrkit-sip-<pid> namespaces whose test process is gone (killed with SIGKILL)."""
    import signal
    import subprocess

    reaped = []
    for name in list_namespaces():
        match = re.fullmatch(re.escape(NS_PREFIX) + r"(\d+)", name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        for pid in namespace_pids(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", name], check=False)
        reaped.append(name)
    return reaped


@dataclass(frozen=True)
class SipCall:
    """A SIP participant in a room: the call as LiveKit sees it."""

    room: str
    identity: str
    attributes: dict[str, str]

    @property
    def number(self) -> str:
        """The dialled (trunk) number."""
        return self.attributes.get("sip.trunkPhoneNumber", "")

    @property
    def caller(self) -> str:
        return self.attributes.get("sip.phoneNumber", "")

    @property
    def status(self) -> str:
        """sip.callStatus: "ringing" until answered, then "active", "hangup"."""
        return self.attributes.get("sip.callStatus", "")


@dataclass
class SipStack:
    """`stack` (a `Stack`: ns, server, tokens, callers, process logs), `redis`, `sip`."""

    stack: Stack
    redis: Redis
    sip: LiveKitSip
    peers: list[SipRoomPeer] = field(default_factory=list)
    phones: list[SippPhone | SippFarEnd] = field(default_factory=list)
    placed: int = 0

    @classmethod
    def up(cls, log_dir: Path, *, sip_level: str = "debug") -> SipStack:
        """Start Redis, the server (with Redis) and LiveKit SIP in a new namespace; each is
        waited on (Redis log line, server `GET /`, SIP health port). Raises ProcessError with
        the failing process's log tail."""
        reap_stale_sip_namespaces()
        ns = Namespace.create(name=f"{NS_PREFIX}{os.getpid()}", address=NS_ADDRESS)
        started: list[Any] = []
        try:
            redis = Redis.start(ns, log_dir)
            started.append(redis)
            server = start_server_with_redis(ns, log_dir, redis)
            started.append(server)
            sip = LiveKitSip.start(ns, log_dir, ws_url=server.url, redis_address=redis.address,
                                   sip_ip=ns.address, level=sip_level)
        except BaseException:
            for s in reversed(started):
                s.stop()
            ns.delete()
            raise
        return cls(stack=Stack(ns=ns, server=server, log_dir=log_dir), redis=redis, sip=sip)

    @property
    def ns(self) -> Namespace:
        return self.stack.ns

    @property
    def url(self) -> str:
        return self.stack.url

    def api(self, fn: Callable[[Any], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run `fn(LiveKitAPI)` inside the namespace and return its result (blocking; from an
        async test wrap it in `asyncio.to_thread`)."""
        async def call() -> T:
            with warnings.catch_warnings():
                # The dev secret "secret" is short on purpose (tests/stack/server.py's dev keys); PyJWT warns.
                warnings.simplefilter("ignore")
                lk = livekit_api(self.stack.server)
                try:
                    return await fn(lk)
                finally:
                    await lk.aclose()  # type: ignore[attr-defined]

        return run_in_netns(self.ns, call, timeout)

    def clear_routing(self) -> tuple[int, int]:
        """Delete all trunks and dispatch rules (call between tests)."""
        return self.api(clear_sip_routing)

    def clear_rooms(self) -> list[str]:
        """Delete every room (hangs up any SIP participant still in one); returns their names.
        Rooms outlive their calls (empty_timeout), so tests start from none."""
        async def fn(lk: Any) -> list[str]:
            from livekit import api

            names = [r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms]
            for name in names:
                await lk.room.delete_room(api.DeleteRoomRequest(room=name))
            return names

        return self.api(fn)

    def phone(self, number: str, workdir: Path, **call: Any) -> SippPhone:
        """Place a call to `number` now (see `PhoneCall` for the options: caller, keys, hold,
        hangup, answer_timeout, tone_hz, offer_telephone_event, transfer_status, dtmf). Each phone
        gets its own SIP and media ports, so calls can overlap."""
        slot = self.placed % 50
        self.placed += 1
        call.setdefault("local_sip_port", 5070 + 2 * slot)
        call.setdefault("media_port", 16000 + 20 * slot)
        phone = SippPhone(PhoneCall(number=number, sip_host=self.sip.sip_ip,
                                    sip_port=self.sip.sip_port, local_ip=self.ns.address, **call),
                          workdir, prefix=self.ns.exec_prefix())
        self.phones.append(phone)
        return phone

    def far_end(self, workdir: Path, *, sip_port: int = 5300, **far: Any) -> SippFarEnd:
        """A SIPp far end for an outbound dial, listening at the namespace address and
        `sip_port` (an outbound trunk's address; see `FarEnd` for answer, hold, ring). Returns
        once it listens; `stop_calls` stops it with the phones."""
        far.setdefault("media_port", 17100 + 10 * (sip_port - 5300))
        end = SippFarEnd(FarEnd(local_ip=self.ns.address, sip_port=sip_port, **far), workdir,
                         prefix=self.ns.exec_prefix())
        self.phones.append(end)
        return end

    def sip_calls(self) -> list[SipCall]:
        """Every SIP participant in every room right now (via RoomService)."""
        async def fn(lk: Any) -> list[SipCall]:
            from livekit import api

            out: list[SipCall] = []
            for room in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms:
                resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room.name))
                out.extend(SipCall(room.name, p.identity, dict(p.attributes))
                           for p in resp.participants if p.kind == api.ParticipantInfo.Kind.SIP)
            return out

        return self.api(fn)

    def wait_for_call(self, *, number: str | None = None, caller: str | None = None,
                      status: str | None = None, timeout: float = 10.0) -> SipCall:
        """The SIP participant of a call to `number` / from `caller` (and with
        sip.callStatus `status`, e.g. "ringing", "active"), once it is in a room. With an
        individual dispatch rule this is how a test learns the call's room. Raises
        TimeoutError listing the SIP participants seen."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.sip_calls()
            for c in calls:
                if (number is None or c.number == number) and (caller is None or c.caller == caller) \
                        and (status is None or c.status == status):
                    return c
            if time.monotonic() > deadline:
                raise TimeoutError(f"no SIP call (number={number}, caller={caller}, status={status}) "
                                   f"in any room within {timeout:.0f} s; SIP participants: {calls}")
            time.sleep(0.2)

    def peer(self, room: str, identity: str = "ivrkit-test-peer", **options: Any) -> SipRoomPeer:
        """A room participant publishing audio in `room` (answers calls routed there)."""
        peer = SipRoomPeer.start(self.url, room, self.stack.log_dir, prefix=self.ns.exec_prefix(),
                                 identity=identity, **options)
        self.peers.append(peer)
        return peer

    def start(self, argv: Sequence[str], *, name: str, **options: Any) -> NsProcess:
        """Start a process (e.g. the ivrkit worker with `self.stack.env()`) in the namespace."""
        return self.stack.start(argv, name=name, **options)

    def start_worker(self, flows: Path, *, agent: str, trace_dir: Path, expect_flows: str, args: Sequence[str] = ()) -> NsProcess:
        """`ivrkit start FLOWS` in the namespace (thread executor, JSON logs, a trace per call),
        returned once it registered with exactly the flows `expect_flows` ("a,b")."""
        import sys

        repo = Path(__file__).resolve().parents[2]
        argv = [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(flows), "--agent-name", agent,
                "--http-port", "0", "--max-calls", "20", "--trace-dir", str(trace_dir), *args]
        proc = self.start(argv, name="worker", env={**self.stack.env(), "PYTHONPATH": str(repo)}, cwd=repo)
        proc.wait_for_log(rf"ivrkit worker registered agent_name={re.escape(agent)} flows={re.escape(expect_flows)} ", 60)
        return proc

    def stop_calls(self) -> None:
        """Hang up every phone and stop every peer started so far (between tests)."""
        for phone in self.phones:
            phone.stop()  # also stops its recorder, whether or not SIPp still runs
        self.phones.clear()
        for peer in self.peers:
            peer.stop()
        self.peers.clear()

    def explain(self, result: SippResult) -> str:
        """The phone's view (`result.describe()`) plus LiveKit SIP's own log of the call: which
        failure it was (no trunk/rule matched, no audio track in the room, no telephone-event)."""
        lines = call_log(self.sip.process.log_path, result.call_id)
        return f"{result.describe()}\nLiveKit SIP: {explain(lines, result.call_id)}"

    def failure_report(self, since: float = 0.0, lines: int = 40) -> list[tuple[str, str]]:
        out = self.stack.failure_report(since, lines)
        out.append((f"livekit-sip log tail ({self.sip.process.log_path})",
                    self.sip.process.log_tail(lines)))
        return out

    def report(self, lines: int = 25) -> str:
        """Log tails of LiveKit SIP and the server, for assertion messages."""
        return "\n".join(f"--- {title}\n{tail}" for title, tail in self.failure_report(lines=lines))

    def down(self) -> list[int]:
        """Stop calls, SIP, server, Redis; delete the namespace; return PIDs left over there."""
        try:
            self.stop_calls()
            self.sip.stop()
            self.stack.stop_processes()
            self.stack.server.stop()
            self.redis.stop()
        finally:
            leftover = self.ns.delete()
        return leftover
