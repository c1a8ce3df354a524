"""The SIP half of the real stack: Redis, livekit-server joined to it, LiveKit SIP, and the
inbound routing (trunk + dispatch rule) a test call needs.

Why Redis: livekit-server and LiveKit SIP talk over it (psrpc); without it every SIP API call
fails "sip not connected". Why everything runs in the harness's namespace: LiveKit SIP joins
rooms over WebRTC, which skips loopback candidates, so it must reach the server at the
namespace's test address. SIP and RTP between SIPp and LiveKit SIP use the same address.

`server.render_config` has no Redis option, so `start_server_with_redis` appends the `redis:`
block to that config here (reported to the server harness's owner).

API calls: the test process stays outside the namespace, where the server's address does not
exist. `run_in_netns(ns, coro_fn)` runs a coroutine on a thread that has joined the namespace
(setns(2) on that thread only), so livekit-api's sockets are created inside it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .netns import Namespace
from .process import NsProcess, ProcessError
from .server import API_KEY, API_SECRET, LiveKitServer, render_config, server_binary, stack_cache

REDIS_PORT = 6390
SIP_PORT = 5060
SIP_HEALTH_PORT = 8089
SIP_RTP_RANGE = (20000, 20199)
#: LiveKit SIP v1.8.0 (pinned) sometimes loses the race between a REFER's final response and
#: its transaction ending (`getResponse` selects on tx.Done() and tx.Responses() at once), so a
#: transfer the phone accepted with 202 is reported failed. Seen in 2 of 23 runs here.
LKSIP_REFER_RACE = "transaction failed to complete (0 intermediate responses)"
CLONE_NEWNET = 0x40000000

T = TypeVar("T")


def sip_binary() -> Path:
    """Where install_sip.sh puts livekit-sip (`IVRKIT_LIVEKIT_SIP` overrides)."""
    override = os.environ.get("IVRKIT_LIVEKIT_SIP")
    return Path(override) if override else stack_cache() / "bin" / "livekit-sip"


def sip_stack_missing() -> str | None:
    """Why the SIP stack cannot run here (a skip reason), or None when it can."""
    if os.geteuid() != 0:
        return "SIP e2e tests need root (network namespaces, SIPp's raw-socket RTP playback)"
    for what, path in (("livekit-server", server_binary()), ("livekit-sip", sip_binary())):
        if not path.exists():
            return f"{what} not built at {path}: run tests/stack/install.sh and install_sip.sh"
    for tool, pkg in (("redis-server", "redis-server"), ("sipp", "sip-tester")):
        if shutil.which(tool) is None:
            return f"{tool} not installed: run tests/stack/install_sip.sh (Debian {pkg})"
    return None


# --- running code inside the namespace ------------------------------------------------------

def run_in_netns(ns: Namespace | str, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60.0) -> T:
    """Run `asyncio.run(fn())` on a new thread that has joined network namespace `ns`.

    Blocking; from async tests use `await asyncio.to_thread(run_in_netns, ns, fn)`. Only that
    thread changes namespace (setns affects the calling thread), so the test process is not
    moved. Sockets keep the namespace they were created in.
    """
    name = ns.name if isinstance(ns, Namespace) else ns
    box: dict[str, object] = {}

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into network namespace {name}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["result"] = asyncio.run(fn())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"code in namespace {name} did not finish within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


_HTTP_PROBE = """\
import sys, time, urllib.request, urllib.error
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except (OSError, urllib.error.HTTPError):
        pass
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.05)
"""


def _wait_http_ok(ns: Namespace, process: NsProcess, url: str, timeout: float, what: str) -> None:
    probe = subprocess.Popen([*ns.exec_prefix(), sys.executable, "-c", _HTTP_PROBE, url, str(timeout)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while probe.poll() is None:
            if not process.alive():
                raise ProcessError(f"{what} exited with {process.returncode} during start; "
                                   f"log {process.log_path}:\n{process.log_tail()}")
            time.sleep(0.05)
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait()
    if probe.returncode != 0:
        raise ProcessError(f"{what} not healthy at {url} within {timeout:.0f} s; "
                           f"log {process.log_path}:\n{process.log_tail()}")


# --- Redis ----------------------------------------------------------------------------------

@dataclass
class Redis:
    """redis-server on a private port inside the namespace, no persistence (nothing on disk)."""

    process: NsProcess
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def start(cls, ns: Namespace, log_dir: Path, host: str = "127.0.0.1", port: int = REDIS_PORT,
              timeout: float = 10.0) -> Redis:
        log_dir.mkdir(parents=True, exist_ok=True)
        process = NsProcess.start(
            ns.exec_prefix(),
            ["redis-server", "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no",
             "--protected-mode", "no", "--dir", str(log_dir), "--daemonize", "no"],
            name="redis", log_dir=log_dir)
        try:
            process.wait_for_log(r"Ready to accept connections", timeout)
        except BaseException:
            process.stop()
            raise
        return cls(process=process, host=host, port=port)

    def stop(self) -> int:
        return self.process.stop()


def start_server_with_redis(ns: Namespace, log_dir: Path, redis: Redis, *,
                            binary: Path | None = None, timeout: float = 30.0) -> LiveKitServer:
    """`LiveKitServer.start`, with a `redis:` block added to its config (SIP needs it)."""
    binary = binary or server_binary()
    log_dir.mkdir(parents=True, exist_ok=True)
    config_path = log_dir / "livekit-server.yaml"
    config_path.write_text(render_config(ns.address) + f"redis:\n  address: {redis.address}\n")
    process = NsProcess.start(ns.exec_prefix(), [str(binary), "--config", str(config_path)],
                              name="livekit-server", log_dir=log_dir)
    server = LiveKitServer(process=process, address=ns.address, config_path=config_path,
                           ready_after=0.0)
    try:
        _wait_http_ok(ns, process, f"{server.http_url}/", timeout, "livekit-server")
    except BaseException:
        process.stop()
        raise
    server.ready_after = time.monotonic() - process.started_at
    time.sleep(0.2)  # see LiveKitServer.start: a SIGTERM right after readiness is ignored
    return server


# --- LiveKit SIP ----------------------------------------------------------------------------

def render_sip_config(*, ws_url: str, redis_address: str, sip_ip: str, sip_port: int = SIP_PORT,
                      rtp_range: tuple[int, int] = SIP_RTP_RANGE,
                      health_port: int = SIP_HEALTH_PORT, level: str = "debug") -> str:
    """LiveKit SIP's YAML. Its parser ignores unknown keys, so every key here was checked
    against pkg/config/config.go of the pinned tag (a typo would silently do nothing).
    `max_cpu_utilization: 1.0`: the default 0.9 turns the health port to 429 "UnderLoad" and
    refuses outbound calls whenever the machine's CPUs are busy — as on a 2-core CI box
    running builds next to the tests."""
    return f"""\
api_key: {API_KEY}
api_secret: {API_SECRET}
ws_url: {ws_url}
redis:
  address: {redis_address}
sip_port: {sip_port}
rtp_port: {rtp_range[0]}-{rtp_range[1]}
health_port: {health_port}
use_external_ip: false
nat_1_to_1_ip: {sip_ip}
listen_ip: {sip_ip}
max_cpu_utilization: 1.0
logging:
  level: {level}
"""


@dataclass
class LiveKitSip:
    """A started LiveKit SIP: SIP (UDP+TCP) at `sip_ip:sip_port` inside the namespace."""

    process: NsProcess
    sip_ip: str
    sip_port: int
    config_path: Path
    ready_after: float

    @classmethod
    def start(cls, ns: Namespace, log_dir: Path, *, ws_url: str, redis_address: str,
              sip_ip: str = "127.0.0.1", sip_port: int = SIP_PORT,
              rtp_range: tuple[int, int] = SIP_RTP_RANGE, health_port: int = SIP_HEALTH_PORT,
              level: str = "debug", binary: Path | None = None, timeout: float = 30.0) -> LiveKitSip:
        """Start it in `ns` and wait until its health port answers 200 (it is then connected to
        Redis and listening for SIP). Raises ProcessError with its log tail otherwise."""
        binary = binary or sip_binary()
        log_dir.mkdir(parents=True, exist_ok=True)
        config_path = log_dir / "livekit-sip.yaml"
        config_path.write_text(render_sip_config(
            ws_url=ws_url, redis_address=redis_address, sip_ip=sip_ip, sip_port=sip_port,
            rtp_range=rtp_range, health_port=health_port, level=level))
        process = NsProcess.start(ns.exec_prefix(), [str(binary), "--config", str(config_path)],
                                  name="livekit-sip", log_dir=log_dir)
        try:
            _wait_http_ok(ns, process, f"http://127.0.0.1:{health_port}/", timeout, "livekit-sip")
        except BaseException:
            process.stop()
            raise
        return cls(process=process, sip_ip=sip_ip, sip_port=sip_port, config_path=config_path,
                   ready_after=time.monotonic() - process.started_at)

    def stop(self) -> int:
        return self.process.stop(timeout=10.0)


# --- inbound routing (livekit-api) ----------------------------------------------------------

async def create_inbound_trunk(lk: object, numbers: Sequence[str], *,
                               allowed_addresses: Sequence[str] = ("127.0.0.1/32",),
                               name: str = "ivrkit-test-trunk") -> str:
    """An inbound trunk accepting INVITEs to `numbers` (the To user) from `allowed_addresses`
    (no auth). Returns its id. `lk` is a `livekit.api.LiveKitAPI`."""
    from livekit import api

    info = await lk.sip.create_inbound_trunk(  # type: ignore[attr-defined]
        api.CreateSIPInboundTrunkRequest(trunk=api.SIPInboundTrunkInfo(
            name=name, numbers=list(numbers), allowed_addresses=list(allowed_addresses))))
    return str(info.sip_trunk_id)


async def create_outbound_trunk(lk: object, address: str, numbers: Sequence[str], *,
                                name: str = "ivrkit-test-outbound") -> str:
    """An outbound trunk: LiveKit SIP sends a dial's INVITE to `address` (`host:port`, UDP, no
    auth) from the first of `numbers` (the caller id). Returns its id, what a flow's `dial:`
    names as `trunk:` (or the worker's `--sip-trunk`)."""
    from livekit import api

    info = await lk.sip.create_outbound_trunk(  # type: ignore[attr-defined]
        api.CreateSIPOutboundTrunkRequest(trunk=api.SIPOutboundTrunkInfo(
            name=name, address=address, numbers=list(numbers), transport=api.SIPTransport.SIP_TRANSPORT_UDP)))
    return str(info.sip_trunk_id)


async def create_dispatch_rule(lk: object, trunk_ids: Sequence[str] = (), *,
                               agent_name: str | None = None, agent_metadata: str = "",
                               room_prefix: str = "call-", room_name: str | None = None,
                               name: str = "ivrkit-test-rule") -> str:
    """A dispatch rule for calls on `trunk_ids` (all trunks if empty). Default: individual (a
    new room `<room_prefix>_<caller>_<random>` per call). `room_name`: a direct rule into that
    one room instead. `agent_name`: the room dispatches that agent (the ivrkit worker's name);
    without it no agent is dispatched (a test participant must answer by publishing audio)."""
    from livekit import api

    if room_name is not None:
        rule = api.SIPDispatchRule(dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name=room_name))
    else:
        rule = api.SIPDispatchRule(dispatch_rule_individual=api.SIPDispatchRuleIndividual(
            room_prefix=room_prefix))
    room_config = None
    if agent_name is not None:
        room_config = api.RoomConfiguration(agents=[api.RoomAgentDispatch(
            agent_name=agent_name, metadata=agent_metadata)])
    info = await lk.sip.create_dispatch_rule(  # type: ignore[attr-defined]
        api.CreateSIPDispatchRuleRequest(dispatch_rule=api.SIPDispatchRuleInfo(
            name=name, rule=rule, trunk_ids=list(trunk_ids), room_config=room_config)))
    return str(info.sip_dispatch_rule_id)


async def clear_sip_routing(lk: object) -> tuple[int, int]:
    """Delete every inbound trunk and dispatch rule (a clean slate per test); returns counts."""
    from livekit import api

    sip = lk.sip  # type: ignore[attr-defined]
    rules = (await sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    for r in rules:
        await sip.delete_dispatch_rule(api.DeleteSIPDispatchRuleRequest(
            sip_dispatch_rule_id=r.sip_dispatch_rule_id))
    trunks = (await sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
    for t in trunks:
        await sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=t.sip_trunk_id))
    return len(trunks), len(rules)


def livekit_api(server: LiveKitServer) -> object:
    """A `LiveKitAPI` for the server; create it (and use it) inside `run_in_netns`."""
    from livekit import api

    return api.LiveKitAPI(server.http_url, API_KEY, API_SECRET)
