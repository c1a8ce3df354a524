"""`ivrkit dev --local-server`: a livekit-server of your own for trying the worker and the dial pad.

Why it is more than `livekit-server --dev`: the browser's media (WebRTC) never uses a loopback
address — browsers drop 127.0.0.1 ICE candidates — so a server that only advertises 127.0.0.1
lets the page load and join, then fails after ~15 s with "could not establish pc connection".
The server must advertise an address of this machine that is *not* loopback (`rtc.node_ip`),
and only that one. Signalling (the websocket, the HTTP API) stays on 127.0.0.1.

Which address (`media_address`), first that applies:
  1. `--local-server-ip ADDR` (env `IVRKIT_LOCAL_SERVER_IP`);
  2. the address of the interface the default route leaves through — a laptop's Wi-Fi/LAN
     address, a container's eth0 (found with a UDP `connect()`, which sends nothing);
  3. none (an offline machine, a container with only `lo`): an error that says how to add a
     private address (a dummy interface) and pass it.

The server itself: livekit-server, from `IVRKIT_LIVEKIT_SERVER`, else the build
`tests/stack/install.sh` caches in `~/.cache/ivrkit-stack/bin/`, else `livekit-server` on PATH
(LiveKit's installer or Homebrew). It gets a config written to a temporary folder, a fresh API
secret, and is stopped (SIGTERM, then SIGKILL) when `ivrkit dev` ends.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ivrkit.errors import IvrkitError

__all__ = ["API_KEY", "LocalServer", "LocalServerError", "LocalServerOptions", "find_binary", "media_address", "render_config"]

API_KEY = "devkey"
READY_TIMEOUT = 30.0
#: A TEST-NET-1 address (RFC 5737): `connect()` on a UDP socket picks the route towards it and
#: sends nothing; nothing there is ever contacted.
_ROUTE_PROBE = ("192.0.2.1", 9)
_DUMMY_RECIPE = ("sudo ip link add ivrkit0 type dummy && sudo ip addr add 10.213.0.1/32 dev ivrkit0 && "
                 "sudo ip link set ivrkit0 up, then --local-server-ip 10.213.0.1")


class LocalServerError(IvrkitError, RuntimeError):
    """`ivrkit dev --local-server` cannot start its livekit-server; the message says what to do."""


@dataclass(frozen=True)
class LocalServerOptions:
    """Where the local server listens. Ports are the server's defaults; the UDP range is small."""

    media_ip: str
    port: int = 7880
    tcp_port: int = 7881
    udp_range: tuple[int, int] = (50000, 50099)
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def find_binary(env: dict[str, str] | None = None) -> Path:
    """The livekit-server to run (see the module docstring), or `LocalServerError` naming the
    three ways to get one."""
    env = dict(os.environ) if env is None else env
    if env.get("IVRKIT_LIVEKIT_SERVER"):
        path = Path(env["IVRKIT_LIVEKIT_SERVER"])
        if not path.is_file():
            raise LocalServerError(f"IVRKIT_LIVEKIT_SERVER={path}: no such file")
        return path
    cache = Path(env.get("IVRKIT_STACK_CACHE") or Path.home() / ".cache" / "ivrkit-stack")
    if (cache / "bin" / "livekit-server").is_file():
        return cache / "bin" / "livekit-server"
    found = shutil.which("livekit-server", path=env.get("PATH"))
    if found:
        return Path(found)
    raise LocalServerError(
        "no livekit-server found: install it with LiveKit's installer (`curl -sSL https://get.livekit.io | bash`) "
        "or Homebrew (`brew install livekit`), or build it from a checkout with `bash tests/stack/install.sh` "
        f"(into {cache / 'bin'}), or point IVRKIT_LIVEKIT_SERVER at one"
    )


def media_address(given: str | None = None) -> str:
    """The non-loopback address of this machine the server advertises for media."""
    if given:
        try:
            address = ipaddress.ip_address(given)
        except ValueError:
            raise LocalServerError(f"--local-server-ip {given!r} is not an IP address") from None
        if address.is_loopback or address.is_unspecified:
            raise LocalServerError(
                f"--local-server-ip {given}: browsers never send media to a loopback address; give an "
                f"address of a network interface of this machine (or add one: {_DUMMY_RECIPE})")
        return str(address)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_ROUTE_PROBE)
            found = str(probe.getsockname()[0])
    except OSError:
        found = ""
    if not found or ipaddress.ip_address(found).is_loopback:
        raise LocalServerError(
            "no network address besides 127.0.0.1 on this machine, and browsers never send media to "
            f"127.0.0.1: add a private one ({_DUMMY_RECIPE}), or pass the address of an interface with "
            "--local-server-ip")
    return found


def render_config(opts: LocalServerOptions) -> str:
    """The server's YAML (parsed strictly: an unknown key aborts its start). Signalling on
    127.0.0.1 only; media candidates carry `media_ip` only; no public STUN lookup."""
    return f"""\
port: {opts.port}
bind_addresses:
  - 127.0.0.1
keys:
  {API_KEY}: {opts.api_secret}
logging:
  level: info
rtc:
  use_external_ip: false
  node_ip: {opts.media_ip}
  ips:
    includes:
      - {opts.media_ip}/32
  stun_servers:
    - 127.0.0.1:3478
  port_range_start: {opts.udp_range[0]}
  port_range_end: {opts.udp_range[1]}
  tcp_port: {opts.tcp_port}
"""


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM it when `ivrkit dev` dies, however it dies, so
    no server outlives the session (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class LocalServer:
    """A running livekit-server child process. `start()` returns once `GET /` answers OK."""

    def __init__(self, opts: LocalServerOptions, binary: Path) -> None:
        self.opts = opts
        self.binary = binary
        self.folder = Path(tempfile.mkdtemp(prefix="ivrkit-local-server-"))
        self.log_path = self.folder / "livekit-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        config = self.folder / "livekit-server.yaml"
        config.write_text(render_config(self.opts), encoding="utf-8")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([str(self.binary), "--config", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        deadline = time.monotonic() + timeout
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with no_proxy.open(f"http://127.0.0.1:{self.opts.port}/", timeout=1) as r:
                    if r.status == 200:
                        time.sleep(0.3)  # a server already on that port answers too: ours must still run
                        self._check_alive()
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise LocalServerError(f"livekit-server did not answer on 127.0.0.1:{self.opts.port} within {timeout:g} s; "
                               f"its log: {self.log_path}\n{self.log_tail()}")

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            code = self.process.returncode
            self.process = None
            raise LocalServerError(f"livekit-server exited with {code} at start (is port {self.opts.port} taken?); "
                                   f"its log: {self.log_path}\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s. The config folder (and log) is removed."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
