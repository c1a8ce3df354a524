"""The test phone's ears: a UDP listener that writes every datagram it gets to a pcap.

Why a separate process: SIPp cannot record, so the phone's SDP points its audio port here, and
the listener must run inside the harness's network namespace (where LiveKit SIP sends RTP),
while the test process itself stays outside. `python -m tests.stack.rtp_recorder` is that
process; `RtpRecorder` starts it (under the namespace's exec prefix), waits until it is bound,
and stops it by PID. The pcap is flushed per packet, so `recording()` can be read at any time.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .rtp_analysis import Recording
from .rtp_pcap import PcapWriter, UdpRecord

REPO = Path(__file__).resolve().parents[2]


class RecorderError(RuntimeError):
    """The recorder did not start; the message carries its stderr."""


class RtpRecorder:
    """A running recorder bound to `host:port`; its packets go to `pcap`."""

    def __init__(self, host: str, port: int, pcap: Path, *, prefix: Sequence[str] = (),
                 python: str = sys.executable, start_timeout: float = 10.0) -> None:
        self.host, self.port, self.pcap = host, port, Path(pcap)
        self._log = open(self.pcap.with_suffix(".log"), "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*prefix, python, "-m", "tests.stack.rtp_recorder", "--bind", f"{host}:{port}",
             "--out", str(self.pcap)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=self._log)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            readable, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if readable and self.proc.stdout.readline().startswith(b"ready"):
                return
        self.stop()
        raise RecorderError(f"RTP recorder on {host}:{port} did not start (exit "
                            f"{self.proc.returncode}): "
                            f"{self.pcap.with_suffix('.log').read_text(errors='replace')[-2000:]}")

    def recording(self) -> Recording:
        """Everything received so far."""
        return Recording.load(self.pcap)

    def stop(self) -> Recording | None:
        """Stop the process by its PID; returns the final recording if the pcap exists."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()  # the "ready" pipe: left open, it is a ResourceWarning
        self._log.close()
        return Recording.load(self.pcap) if self.pcap.exists() else None


def _serve(host: str, port: int, out: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((host, port))
    writer = PcapWriter(out)
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    sock.settimeout(0.2)
    print("ready", flush=True)
    try:
        while not stop:
            try:
                data, src = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            writer.write(UdpRecord(time.time(), (src[0], src[1]), (host, port), data))
    finally:
        writer.close()
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", required=True, help="HOST:PORT to listen on (UDP)")
    parser.add_argument("--out", required=True, type=Path, help="pcap file to write")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    _serve(host, int(port), args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
