"""Worker startup failures, as an operator sees them: `python -m ivrkit.livekit.worker start ...`.

Each runs the real entry point in a subprocess (the same code `ivrkit start` calls) and checks
the exit code and that the message is one clear line with no traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOW = REPO / "flows" / "bank.yaml"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "IVRKIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "ivrkit.livekit.worker", "start", *args],
        env={**base, "PYTHONPATH": str(REPO), **(env or {})}, cwd=REPO,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_missing_settings_exit_2_with_one_line_naming_them() -> None:
    proc = run(str(FLOW), env={"LIVEKIT_URL": "ws://127.0.0.1:7880"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ivrkit: LIVEKIT_API_KEY, LIVEKIT_API_SECRET are not set: export LIVEKIT_API_KEY=")
    assert proc.stdout == ""


def test_a_flow_that_fails_its_check_stops_the_worker_before_it_connects(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: bad\nstart: main\nstates:\n  main:\n    menu: {prompt: hi, options: {\"1\": mian}}\n")
    env = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s" * 32}
    proc = run(str(bad), env=env)
    assert proc.returncode == 1
    assert f"{bad}:5:" in proc.stderr and "unknown state" in proc.stderr
    assert "ivrkit worker: not starting, 1 error(s)" in proc.stderr
    assert "Traceback" not in proc.stderr and "starting worker" not in proc.stdout


def test_an_unreachable_server_is_retried_then_reported_without_a_traceback() -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"LIVEKIT_URL": f"ws://127.0.0.1:{port}", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s" * 32}
    proc = run(str(FLOW), "--max-retry", "1", "--http-port", "0", "--http-host", "127.0.0.1", env=env)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "failed to connect to livekit, retrying in 0s" in out
    assert f"ivrkit: could not reach the LiveKit server at ws://127.0.0.1:{port} after 1 attempts" in proc.stderr
    assert "Traceback" not in out
    assert "HTTP server listening on 127.0.0.1:" in out  # never the machine's own addresses in a test


def test_a_tts_plugin_that_cannot_be_loaded_stops_the_worker_with_one_line() -> None:
    env = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s" * 32}
    for spec, said in (
        ("livekit.plugins.nosuch:TTS", "cannot import 'livekit.plugins.nosuch'"),
        ("ivrkit.livekit.tts:Nope", "module 'ivrkit.livekit.tts' has no 'Nope'"),
        ("espeak", "is not module:factory"),
    ):
        proc = run(str(FLOW), "--tts", spec, env=env)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"ivrkit: --tts {spec!r}") and said in lines[0], proc.stderr


def test_an_stt_plugin_that_cannot_be_loaded_stops_the_worker_with_one_line() -> None:
    env = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s" * 32}
    for spec, said in (("livekit.plugins.nosuch:STT", "cannot import 'livekit.plugins.nosuch'"),
                       ("deepgram", "is not module:factory, e.g. livekit.plugins.deepgram:STT")):
        proc = run(str(FLOW), "--stt", spec, env=env)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"ivrkit: --stt {spec!r}") and said in lines[0], proc.stderr


def test_dev_mode_ends_when_its_worker_gives_up_instead_of_waiting_silently(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "bank.yaml").write_text(FLOW.read_text().replace("python_path: [../examples]", f"python_path: [{REPO / 'examples'}]"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "IVRKIT_"))}
    env = {**base, "PYTHONPATH": str(REPO), "LIVEKIT_URL": f"ws://127.0.0.1:{port}", "LIVEKIT_API_KEY": "k",
           "LIVEKIT_API_SECRET": "s" * 32}
    proc = subprocess.run(
        [sys.executable, "-m", "ivrkit.livekit.worker", "dev", str(flows), "--max-retry", "1"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=90, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "ivrkit dev: the worker exited with code 1 (see above); stopping" in proc.stdout
    assert f"could not reach the LiveKit server at ws://127.0.0.1:{port}" in proc.stderr
    assert "failed to connect to livekit, retrying in 0s" in out and "Traceback" not in out
    assert "HTTP server listening on 127.0.0.1:" in out  # dev keeps its health check local


def test_the_help_of_start_and_dev_says_the_health_port_each_really_uses(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ivrkit dev --help` said 8081 while dev picks a free port: the help follows the options."""
    from ivrkit.cli import build_parser
    from ivrkit.livekit.worker import options_from_args

    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.setenv(name, "x")
    helps = {}
    for command in ("start", "dev"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        helps[command] = " ".join(capsys.readouterr().out.split())
        opts = options_from_args(build_parser().parse_args([command, str(FLOW)]), dev=command == "dev")
        assert opts.http_port == (0 if command == "dev" else None)  # None: livekit-agents' 8081
    assert "health check port (default 8081; 0 = any free port)" in helps["start"]
    assert "health check port (default: any free port; 8081 in start)" in helps["dev"]
    assert "8081;" not in helps["dev"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_worker_not_yet_registered_is_alive_but_not_ready() -> None:
    """The real worker (guard and child), its server unreachable: while livekit-agents retries,
    liveness (`/` on the health port) answers OK and readiness (`/ready` on the metrics port)
    answers 503 with the reason; when the retries are used up the worker exits 1."""
    import time

    http, metrics, dead = _free_port(), _free_port(), _free_port()
    env = {"LIVEKIT_URL": f"ws://127.0.0.1:{dead}", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s" * 32}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "IVRKIT_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(FLOW), "--max-retry", "3",
         "--http-port", str(http), "--http-host", "127.0.0.1", "--metrics-port", str(metrics)],
        env={**base, "PYTHONPATH": str(REPO), **env}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        deadline, ready, live = time.monotonic() + 60, None, None
        while time.monotonic() < deadline and (ready is None or live is None) and proc.poll() is None:
            try:
                ready = _get(f"http://127.0.0.1:{metrics}/ready")
                live = _get(f"http://127.0.0.1:{http}/")
            except OSError:  # not listening yet
                time.sleep(0.1)
        assert ready == (503, "not registered with the LiveKit server yet\n")
        assert live == (200, "OK")
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out
    assert f"ivrkit status http://127.0.0.1:{metrics} (/metrics, /ready)" in out


def _parent_with_a_retrying_worker(mode: str, tmp_path: Path, *, nohup: bool = False) -> tuple[subprocess.Popen[str], str]:
    """`ivrkit dev` / `ivrkit start` against a server nothing answers, returned once its worker
    runs livekit-agents' retry loop (its own signal handling in place); and the output so far."""
    import re
    import select
    import signal

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "IVRKIT_"))}
    env = {**base, "PYTHONPATH": str(REPO), "LIVEKIT_URL": f"ws://127.0.0.1:{port}", "LIVEKIT_API_KEY": "k",
           "LIVEKIT_API_SECRET": "s" * 32, "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0"}
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", mode, str(FLOW), "--max-retry", "100",
            "--http-port", "0", "--http-host", "127.0.0.1"]
    if mode == "start":
        argv += ["--guard-dir", str(tmp_path / "guard")]
    ignore = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if nohup else None  # what `nohup` does
    parent = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=ignore)
    assert parent.stdout is not None
    out = ""
    while not re.search(r"failed to connect to livekit, retrying", out):
        readable, _, _ = select.select([parent.stdout], [], [], 60)
        if not readable:
            parent.kill()
            raise AssertionError(f"the {mode} worker never tried the server: {out}")
        line = parent.stdout.readline()
        assert line, f"the {mode} parent exited early: {out}"
        out += line
    return parent, out


@pytest.mark.parametrize("mode", ["dev", "start"])
def test_a_closed_terminal_stops_the_worker_through_its_parent(tmp_path: Path, mode: str) -> None:
    """SIGHUP (the terminal closed) reaches only `ivrkit dev` / `ivrkit start`'s guard: their
    worker runs in a session of its own. By default SIGHUP killed the parent on the spot, so no
    guard was left to hang up the worker's calls, and off Linux the worker ran on, orphaned.
    Now the parent stops its worker as on SIGTERM, waits for it, and exits on its own."""
    import signal

    parent, out = _parent_with_a_retrying_worker(mode, tmp_path)
    try:
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        assert children, "no worker child"
        parent.send_signal(signal.SIGHUP)
        rest, _ = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert parent.returncode != -signal.SIGHUP, "SIGHUP killed the parent: nobody stopped its worker"
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"worker pid {pid} outlived its parent"
    # The worker stopped the orderly way: `start` drains, `dev` stops its calls at once.
    assert ("draining worker" if mode == "start" else "shutting down worker") in rest, rest
    assert "Traceback" not in out + rest, out + rest


@pytest.mark.parametrize("mode", ["dev", "start"])
def test_under_nohup_a_closed_terminal_is_still_ignored(tmp_path: Path, mode: str) -> None:
    """`nohup ivrkit start ...` must outlive its terminal: the parent keeps SIGHUP ignored (read
    from the kernel's view of the process, /proc/PID/status SigIgn, bit 0 = SIGHUP)."""
    import signal

    parent, _ = _parent_with_a_retrying_worker(mode, tmp_path, nohup=True)
    try:
        status = Path(f"/proc/{parent.pid}/status").read_text()
        ignored = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
        assert ignored & (1 << (signal.SIGHUP - 1)), "the parent took SIGHUP back from nohup"
    finally:
        parent.terminate()
        parent.communicate(timeout=30)
