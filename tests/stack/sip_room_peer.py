"""A scripted room participant that plays the agent's part in a SIP call, without the worker.

Why: LiveKit SIP answers an inbound call only once it can subscribe to an audio track in the
room. This peer joins the room, publishes a continuous audio track (silence, or a sine tone on
command), reports every `sip_dtmf_received` and participant change, and sends DTMF with
`publish_dtmf` on command. So a test proves, with no ivrkit code: the call is answered, keys
pressed on the phone reach the room, audio from the room reaches the phone, and DTMF from the
room reaches the phone as RFC 4733.

Protocol: JSON lines. Commands on stdin: {"cmd": "tone", "hz": 660, "seconds": 1.0},
{"cmd": "dtmf", "digits": "9*"}, {"cmd": "quit"}. Events on stdout (each with "t", time.time()):
{"event": "connected"}, {"event": "participant", "identity", "kind", "attributes"},
{"event": "participant_left", "identity"}, {"event": "dtmf", "code", "digit", "from"},
{"event": "tone_done", "hz"}, {"event": "dtmf_sent", "digit"}, {"event": "disconnected"}.
`SipRoomPeer` starts it in the namespace and reads those events.

Run: python -m tests.stack.sip_room_peer --url ws://ADDR:7880 --room NAME [--identity ID]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 48000
FRAME = RATE // 100  # 10 ms
DTMF_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11,
              "a": 12, "b": 13, "c": 14, "d": 15}
REPO = Path(__file__).resolve().parents[2]


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


async def _run(url: str, room_name: str, identity: str, level: float) -> None:
    from livekit import api, rtc

    from .server import API_KEY, API_SECRET

    token = (api.AccessToken(API_KEY, API_SECRET).with_identity(identity)
             .with_grants(api.VideoGrants(room_join=True, room=room_name)).to_jwt())
    room = rtc.Room()
    done = asyncio.Event()

    def on_participant(p: rtc.RemoteParticipant) -> None:
        _emit("participant", identity=p.identity, kind=int(p.kind), attributes=dict(p.attributes))

    room.on("participant_connected", on_participant)
    room.on("participant_disconnected", lambda p: _emit("participant_left", identity=p.identity))
    room.on("participant_attributes_changed",
            lambda changed, p: _emit("attributes", identity=p.identity,
                                     attributes=dict(p.attributes)))
    room.on("sip_dtmf_received", lambda ev: _emit(
        "dtmf", code=ev.code, digit=ev.digit,
        **{"from": ev.participant.identity if ev.participant else None}))
    def on_disconnected(*_: object) -> None:
        _emit("disconnected")
        done.set()

    room.on("disconnected", on_disconnected)
    await room.connect(url, token)
    for p in room.remote_participants.values():
        on_participant(p)
    source = rtc.AudioSource(RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("peer-audio", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    _emit("connected", room=room_name, identity=identity)

    tones: asyncio.Queue[tuple[float, float]] = asyncio.Queue()
    commands: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip():
                commands.put(json.loads(line))
        commands.put(None)

    threading.Thread(target=read_stdin, daemon=True).start()

    async def audio() -> None:
        phase = 0
        silence = bytes(FRAME * 2)
        while not done.is_set():
            if tones.empty():
                await source.capture_frame(rtc.AudioFrame(silence, RATE, 1, FRAME))
                continue
            hz, seconds = await tones.get()
            amplitude = level * 32767
            for _ in range(round(seconds * 100)):
                samples = [round(amplitude * math.sin(2 * math.pi * hz * (phase + n) / RATE))
                           for n in range(FRAME)]
                phase += FRAME
                data = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)
                await source.capture_frame(rtc.AudioFrame(data, RATE, 1, FRAME))
            await source.wait_for_playout()  # captured is not played: the source queues ~1 s
            _emit("tone_done", hz=hz)

    async def control() -> None:
        while not done.is_set():
            cmd = await asyncio.to_thread(commands.get)
            if cmd is None or cmd.get("cmd") == "quit":
                break
            if cmd["cmd"] == "tone":
                tones.put_nowait((float(cmd["hz"]), float(cmd["seconds"])))
            elif cmd["cmd"] == "dtmf":
                for digit in str(cmd["digits"]):
                    key = digit.lower()
                    await room.local_participant.publish_dtmf(code=DTMF_CODES[key], digit=key)
                    _emit("dtmf_sent", digit=key)
            else:
                _emit("error", message=f"unknown command {cmd!r}")

    audio_task = asyncio.create_task(audio())
    try:
        await control()
    finally:
        audio_task.cancel()
        await room.disconnect()


@dataclass
class SipRoomPeer:
    """The peer process (started under `prefix`) and the events it reported so far."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    _buffer: bytes = b""
    _eof: bool = False

    @classmethod
    def start(cls, url: str, room: str, log_dir: Path, *, prefix: Sequence[str] = (),
              identity: str = "ivrkit-test-peer", level: float = 0.3,
              timeout: float = 20.0) -> SipRoomPeer:
        """Start the peer and wait until it has joined `room` and published its track."""
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{identity}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "tests.stack.sip_room_peer", "--url", url,
             "--room", room, "--identity", identity, "--level", str(level)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True)
        log.close()
        peer = cls(proc=proc, log_path=log_path)
        peer.wait_for(lambda e: e["event"] == "connected", timeout, "join the room")
        return peer

    def poll(self) -> list[dict[str, Any]]:
        """Read whatever events are ready (non-blocking) and return all events so far."""
        assert self.proc.stdout is not None
        if self.proc.stdout.closed:  # stopped: everything it said was read in stop()
            return self.events
        fd = self.proc.stdout.fileno()
        while not self._eof and select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                self._eof = True
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        self.events.extend(json.loads(line) for line in lines if line.strip())
        return self.events

    def wait_for(self, match: Any, timeout: float, what: str) -> dict[str, Any]:
        """The first event (old or new) for which `match(event)` is true; raises TimeoutError
        naming `what`, with the events seen and the peer's log tail, if none comes in time."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            self.poll()
            for e in self.events[seen:]:
                if match(e):
                    return e
            seen = len(self.events)
            if self.proc.poll() is not None and self._eof:
                raise RuntimeError(f"room peer exited ({self.proc.returncode}) before it did "
                                   f"'{what}'; events {self.events}; log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"room peer did not see '{what}' within {timeout:.0f} s; "
                                   f"events {self.events}; log:\n{self.log_tail()}")
            time.sleep(0.02)

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def tone(self, hz: float, seconds: float) -> None:
        self.send(cmd="tone", hz=hz, seconds=seconds)

    def dtmf(self, digits: str) -> None:
        self.send(cmd="dtmf", digits=digits)

    def digits_received(self) -> str:
        return "".join(e["digit"] for e in self.poll() if e["event"] == "dtmf")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 5.0) -> int:
        """Ask it to leave, then stop it by PID."""
        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
                self.proc.wait(timeout)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.poll()
        for pipe in (self.proc.stdin, self.proc.stdout):  # left open, each is a ResourceWarning
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:  # BrokenPipeError flushing stdin of a process that is gone
                    pass
        return self.proc.returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scripted LiveKit room peer for SIP tests")
    parser.add_argument("--url", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--identity", default="ivrkit-test-peer")
    parser.add_argument("--level", type=float, default=0.3, help="tone amplitude, 0..1")
    args = parser.parse_args(argv)
    asyncio.run(_run(args.url, args.room, args.identity, args.level))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
