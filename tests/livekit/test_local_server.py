"""`ivrkit dev --local-server`: which livekit-server, which media address, its config, and its
start/stop — with a stand-in server script on 127.0.0.1 (the real one runs in
tests/e2e/test_dialpad.py, inside the harness's namespace)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ivrkit.livekit.local_server import (
    LocalServer,
    LocalServerError,
    LocalServerOptions,
    find_binary,
    media_address,
    render_config,
)

REPO = Path(__file__).resolve().parents[2]

# Stands in for livekit-server: reads the port from --config, answers GET / with OK on 127.0.0.1.
FAKE_SERVER = f"""#!{sys.executable}
import http.server, sys, yaml
config = yaml.safe_load(open(sys.argv[sys.argv.index("--config") + 1]))
class OK(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"OK")
    def log_message(self, *args):
        pass
print("fake livekit-server on", config["port"], "node_ip", config["rtc"]["node_ip"], flush=True)
http.server.HTTPServer(("127.0.0.1", config["port"]), OK).serve_forever()
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_binary_comes_from_the_variable_then_the_stack_cache_then_path(tmp_path: Path) -> None:
    mine = _executable(tmp_path / "my-server", "#!/bin/sh\n")
    assert find_binary({"IVRKIT_LIVEKIT_SERVER": str(mine)}) == mine
    with pytest.raises(LocalServerError, match="IVRKIT_LIVEKIT_SERVER=.*no such file"):
        find_binary({"IVRKIT_LIVEKIT_SERVER": str(tmp_path / "gone")})
    cache = tmp_path / "cache"
    (cache / "bin").mkdir(parents=True)
    built = _executable(cache / "bin" / "livekit-server", "#!/bin/sh\n")
    on_path = tmp_path / "path"
    on_path.mkdir()
    _executable(on_path / "livekit-server", "#!/bin/sh\n")
    assert find_binary({"IVRKIT_STACK_CACHE": str(cache), "PATH": str(on_path)}) == built
    assert find_binary({"IVRKIT_STACK_CACHE": str(tmp_path / "none"), "PATH": str(on_path)}) == on_path / "livekit-server"
    with pytest.raises(LocalServerError, match=r"no livekit-server found: .*get\.livekit\.io.*tests/stack/install\.sh"):
        find_binary({"IVRKIT_STACK_CACHE": str(tmp_path / "none"), "PATH": str(tmp_path / "empty")})


def test_the_media_address_is_never_loopback() -> None:
    assert media_address("10.213.0.1") == "10.213.0.1"
    for bad in ("127.0.0.1", "::1", "0.0.0.0"):
        with pytest.raises(LocalServerError, match="never send media to a loopback|loopback"):
            media_address(bad)
    with pytest.raises(LocalServerError, match="not an IP address"):
        media_address("my-laptop")
    with pytest.raises(LocalServerError, match=r"ip link add ivrkit0 type dummy"):
        media_address("127.0.0.2")


def test_the_config_keeps_signalling_on_loopback_and_media_on_the_one_address() -> None:
    opts = LocalServerOptions(media_ip="10.213.0.1", port=7890, tcp_port=7891, udp_range=(50300, 50399))
    config = yaml.safe_load(render_config(opts))
    assert config["bind_addresses"] == ["127.0.0.1"] and config["port"] == 7890
    assert config["keys"] == {"devkey": opts.api_secret} and len(opts.api_secret) >= 32
    rtc = config["rtc"]
    assert rtc["use_external_ip"] is False and rtc["node_ip"] == "10.213.0.1"
    assert rtc["ips"] == {"includes": ["10.213.0.1/32"]} and rtc["stun_servers"] == ["127.0.0.1:3478"]
    assert (rtc["port_range_start"], rtc["port_range_end"], rtc["tcp_port"]) == (50300, 50399, 7891)
    assert opts.url == "ws://127.0.0.1:7890" and opts.api_secret not in repr(opts)
    assert LocalServerOptions(media_ip="10.0.0.1").api_secret != opts.api_secret  # fresh each session


def test_it_starts_answers_and_stops_leaving_nothing(tmp_path: Path) -> None:
    server = LocalServer(LocalServerOptions(media_ip="10.213.0.1", port=_free_port()), _executable(tmp_path / "lk", FAKE_SERVER))
    server.start(timeout=20)
    try:
        assert server.process is not None and server.process.poll() is None
        assert "fake livekit-server on" in server.log_tail() and "node_ip 10.213.0.1" in server.log_tail()
        process = server.process
    finally:
        server.stop()
    assert process.poll() is not None and not server.folder.exists()


def test_a_server_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    dies = _executable(tmp_path / "lk", "#!/bin/sh\necho 'could not parse config: unknown key' >&2\nexit 1\n")
    server = LocalServer(LocalServerOptions(media_ip="10.213.0.1", port=_free_port()), dies)
    with pytest.raises(LocalServerError, match=r"(?s)exited with 1 at start.*could not parse config"):
        server.start(timeout=10)
    server.stop()


def test_ivrkit_dev_local_server_without_a_server_says_how_to_get_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "IVRKIT_"))}
    env.update(PYTHONPATH=str(REPO), IVRKIT_STACK_CACHE=str(tmp_path), PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "ivrkit.cli", "dev", str(REPO / "flows"), "--local-server",
                           "--local-server-ip", "10.213.0.1"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ivrkit dev: no livekit-server found:"), proc.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux only")
def test_the_server_dies_with_ivrkit_dev_however_that_ends(tmp_path: Path) -> None:
    fake = _executable(tmp_path / "lk", FAKE_SERVER)
    script = f"""
import os
from pathlib import Path
from ivrkit.livekit.local_server import LocalServer, LocalServerOptions
server = LocalServer(LocalServerOptions(media_ip="10.213.0.1", port={_free_port()}), Path({str(fake)!r}))
server.start(timeout=20)
print(server.process.pid, server.folder, flush=True)
os._exit(9)  # no clean-up at all, as after a SIGKILL
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    pid, folder = int(done.stdout.split()[0]), Path(done.stdout.split()[1])
    shutil.rmtree(folder)  # what the dead parent could not remove
    for _ in range(100):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":  # dead, waiting to be reaped by whoever adopted it
            return
        time.sleep(0.05)  # a real process dying: polled, not timed
    os.kill(pid, 9)
    pytest.fail(f"the server (pid {pid}) outlived the process that started it")
