"""A real livekit-server (built by tests/stack/install.sh) running inside the test namespace.

Why each config key (the server parses its YAML strictly; an unknown key aborts start):
- `bind_addresses`: only the namespace's test address, never a wildcard or ::1.
- `rtc.use_external_ip: false`: true would do a STUN lookup to the internet and fail offline.
- `rtc.node_ip` / `rtc.ips.includes`: the one address ICE candidates may carry.
- `rtc.stun_servers`: a dead port inside the namespace, so clients never try public STUN.
- `rtc.port_range_*`: a small UDP range for media; `rtc.tcp_port` for ICE/TCP fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .netns import Namespace
from .process import NsProcess, ProcessError

API_KEY = "devkey"
API_SECRET = "secret"
HTTP_PORT = 7880
TCP_PORT = 7881
UDP_RANGE = (50000, 50199)
DEAD_STUN_PORT = 3478  # nothing listens there inside the namespace


def stack_cache() -> Path:
    return Path(os.environ.get("IVRKIT_STACK_CACHE", Path.home() / ".cache" / "ivrkit-stack"))


def server_binary() -> Path:
    """Where install.sh puts livekit-server (`IVRKIT_LIVEKIT_SERVER` overrides)."""
    override = os.environ.get("IVRKIT_LIVEKIT_SERVER")
    return Path(override) if override else stack_cache() / "bin" / "livekit-server"


def render_config(address: str) -> str:
    """The server's YAML config for a namespace whose test address is `address`."""
    return f"""\
port: {HTTP_PORT}
bind_addresses:
  - {address}
keys:
  {API_KEY}: {API_SECRET}
logging:
  level: info
rtc:
  use_external_ip: false
  node_ip: {address}
  ips:
    includes:
      - {address}/32
  stun_servers:
    - {address}:{DEAD_STUN_PORT}
  port_range_start: {UDP_RANGE[0]}
  port_range_end: {UDP_RANGE[1]}
  tcp_port: {TCP_PORT}
"""


# Runs inside the namespace: polls GET / until it answers 200 "OK" or the deadline passes.
_PROBE = """\
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200 and r.read().strip() == b"OK":
                sys.exit(0)
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.05)
"""


@dataclass
class LiveKitServer:
    """A started server: `process` (NsProcess, log kept), `url` (ws://), `http_url`."""

    process: NsProcess
    address: str
    config_path: Path
    ready_after: float  # seconds from start until GET / answered OK

    @property
    def url(self) -> str:
        return f"ws://{self.address}:{HTTP_PORT}"

    @property
    def http_url(self) -> str:
        return f"http://{self.address}:{HTTP_PORT}"

    @classmethod
    def start(cls, ns: Namespace, log_dir: Path, binary: Path | None = None, timeout: float = 30.0,
              config: str | None = None) -> LiveKitServer:
        """Write the config (`config` or `render_config`), start the server in `ns`, wait until
        `GET /` is OK from inside `ns`.

        Raises ProcessError with the server's log tail if it exits or is not ready in time.
        """
        binary = binary or server_binary()
        log_dir.mkdir(parents=True, exist_ok=True)
        config_path = log_dir / "livekit-server.yaml"
        config_path.write_text(config if config is not None else render_config(ns.address))
        process = NsProcess.start(
            ns.exec_prefix(),
            [str(binary), "--config", str(config_path)],
            name="livekit-server",
            log_dir=log_dir,
        )
        server = cls(process=process, address=ns.address, config_path=config_path, ready_after=0.0)
        try:
            server._wait_ready(ns, timeout)
        except BaseException:
            process.stop()
            raise
        server.ready_after = time.monotonic() - process.started_at
        # GET / answers 100 ms before the server marks itself running; a SIGTERM before that
        # is ignored (pkg/service/server.go Start/Stop), so give it that moment.
        time.sleep(0.2)
        if not process.alive():  # e.g. another server already answered on that address
            raise ProcessError(
                f"livekit-server exited with {process.returncode} right after start; "
                f"config {config_path}; log {process.log_path}:\n{process.log_tail()}"
            )
        return server

    def _wait_ready(self, ns: Namespace, timeout: float) -> None:
        probe = subprocess.Popen(
            [*ns.exec_prefix(), sys.executable, "-c", _PROBE, f"{self.http_url}/", str(timeout)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while probe.poll() is None:
                if not self.process.alive():
                    raise ProcessError(
                        f"livekit-server exited with {self.process.returncode} during start; "
                        f"config {self.config_path}; log {self.process.log_path}:\n{self.process.log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            if probe.poll() is None:
                probe.kill()
            probe.wait()
        if probe.returncode != 0:
            raise ProcessError(
                f"livekit-server not ready at {self.http_url}/ within {timeout:.0f} s; "
                f"log {self.process.log_path}:\n{self.process.log_tail()}"
            )

    def stop(self) -> int:
        """SIGTERM, a second (forcing) SIGTERM after 2 s, SIGKILL after 10 s."""
        return self.process.stop(timeout=10.0, term_again_after=2.0)
