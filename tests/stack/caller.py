"""A test caller: a real LiveKit participant, run inside the test namespace, driven by JSON lines.

Why a separate process: it must run inside the network namespace (`ip netns exec`), and a test
should talk to it the way it talks to the Go caller, so one wrapper (callers.py) drives both.

Usage (the harness does this for you, see Stack.caller):
    LIVEKIT_TOKEN=<jwt> python tests/stack/caller.py --url ws://10.213.0.1:7880 [--no-mic]

At connect it publishes a (silent) microphone track, as a phone does; "connected" follows.

stdin, one JSON object a line ("id" is optional and echoed in the reply):
    {"cmd": "dtmf", "digit": "1", "code": 1, "id": 1}   code defaults from the RFC 4733 table
    {"cmd": "tone", "freq": 440, "seconds": 1.0, "amplitude": 0.3, "id": 2}   publish a sine
    {"cmd": "audio", "path": "/tmp/said.wav", "id": 3}   publish a mono 16-bit WAV (speech)
    {"cmd": "frames", "on": true}       also stream one "frame" event per 20 ms of heard audio
    {"cmd": "republish", "first": "publish"}   a new microphone track in place of the old one, as a
        web client switching microphone does ("publish": the new one, then unpublish the old) or
        a phone's re-INVITE may ("unpublish" first); tones and audio go on the new one
    {"cmd": "stats"}  {"cmd": "ping"}  {"cmd": "leave"}          (EOF on stdin = leave)

--subscribe-after S: a slow caller (a phone or browser whose media takes S seconds to come up):
join without subscribing, and subscribe to each audio track only S seconds after it appears.

stdout, one JSON object a line, each with "event" and "t" (CLOCK_MONOTONIC seconds, the same
clock as time.monotonic() in the test process):
    connected {identity, room, participants, mic}        participant_joined / participant_left
    dtmf {code, digit, participant}                 dtmf_sent {code, digit}
    track_subscribed / track_unsubscribed {participant, track, kind}
    tone_start / tone_end {participant, track, kind: "tone"|"sound", freq, start, end, duration, rms_db}
    frame {participant, rms_db, freq, purity}       tone_sent {freq, start, end}   audio_sent {start, end}
    republished {old, new} (track sids)
    stats {...}  pong  error {message}  disconnected {reason}  left
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, so `stack` imports as a package
from livekit import rtc  # noqa: E402
from stack.tone_analysis import FrameStats, ToneTracker, analyse  # noqa: E402

SAMPLE_RATE = 48000
FRAME_MS = 20
RFC4733 = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "a": 12, "b": 13, "c": 14, "d": 15}


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
    sys.stdout.flush()


@dataclass
class Heard:
    """What one remote audio track delivered: counts and the tone tracker."""

    participant: str
    track: str
    frames: int = 0
    seconds: float = 0.0
    tone_seconds: float = 0.0
    tracker: ToneTracker = field(default_factory=ToneTracker)


@dataclass
class Caller:
    room: rtc.Room
    stream_frames: bool = False
    heard: dict[str, Heard] = field(default_factory=dict)
    dtmf_received: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    source: rtc.AudioSource | None = None
    mic: rtc.LocalTrackPublication | None = None
    phase: float = 0.0
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            emit("error", message=f"internal task failed: {task.exception()!r}")

    # --- room events -------------------------------------------------------------------------
    def wire(self) -> None:
        room = self.room

        @room.on("sip_dtmf_received")
        def _dtmf(dtmf: rtc.SipDTMF) -> None:
            self.dtmf_received += 1
            who = dtmf.participant.identity if dtmf.participant is not None else None
            emit("dtmf", code=dtmf.code, digit=dtmf.digit, participant=who)

        @room.on("participant_connected")
        def _joined(p: rtc.RemoteParticipant) -> None:
            emit("participant_joined", participant=p.identity)

        @room.on("participant_disconnected")
        def _left(p: rtc.RemoteParticipant) -> None:
            emit("participant_left", participant=p.identity)

        @room.on("track_subscribed")
        def _subscribed(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
            kind = "audio" if track.kind == rtc.TrackKind.KIND_AUDIO else "video"
            emit("track_subscribed", participant=p.identity, track=pub.sid, kind=kind)
            if kind == "audio":
                self.spawn(self.listen(track, p.identity, pub.sid))

        @room.on("track_unsubscribed")
        def _unsubscribed(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
            emit("track_unsubscribed", participant=p.identity, track=pub.sid)

        @room.on("disconnected")
        def _disconnected(reason: Any) -> None:
            emit("disconnected", reason=str(reason))
            self.gone.set()

    async def listen(self, track: rtc.Track, participant: str, sid: str) -> None:
        """Analyse a remote audio track frame by frame until it ends."""
        heard = self.heard.setdefault(sid, Heard(participant=participant, track=sid))
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=FRAME_MS)
        try:
            async for ev in stream:
                frame = ev.frame
                samples = np.frombuffer(frame.data, dtype=np.int16)
                stats = analyse(samples, frame.sample_rate, time.monotonic())
                heard.frames += 1
                heard.seconds += frame.samples_per_channel / frame.sample_rate
                if stats.kind == "tone":
                    heard.tone_seconds += frame.samples_per_channel / frame.sample_rate
                if self.stream_frames:
                    self._emit_frame(participant, sid, stats)
                for what, seg in heard.tracker.feed(stats):
                    emit(f"tone_{what}", participant=participant, track=sid, **seg.as_fields())
        finally:
            for what, seg in heard.tracker.flush(time.monotonic()):
                emit(f"tone_{what}", participant=participant, track=sid, **seg.as_fields())
            await stream.aclose()

    @staticmethod
    def _emit_frame(participant: str, sid: str, s: FrameStats) -> None:
        freq = None if s.freq is None else round(s.freq, 1)
        emit("frame", participant=participant, track=sid, rms_db=round(s.rms_db, 1), freq=freq,
             purity=round(s.purity, 3))

    # --- commands ----------------------------------------------------------------------------
    async def handle(self, cmd: dict[str, Any]) -> bool:
        """Run one command; False means leave."""
        reply: dict[str, Any] = {"id": cmd["id"]} if "id" in cmd else {}
        name = cmd.get("cmd")
        if name == "dtmf":
            digit = str(cmd.get("digit", ""))
            code = cmd.get("code", RFC4733.get(digit))
            if code is None:
                emit("error", message=f"unknown DTMF digit {digit!r} and no code given", **reply)
                return True
            try:
                await self.room.local_participant.publish_dtmf(code=int(code), digit=digit)
            except Exception as exc:  # reported to the test, which decides
                emit("error", message=f"publish_dtmf({digit!r}) failed: {exc}", **reply)
                return True
            emit("dtmf_sent", code=int(code), digit=digit, **reply)
        elif name == "tone":
            self.spawn(self.play_tone(float(cmd["freq"]), float(cmd.get("seconds", 1.0)),
                                      float(cmd.get("amplitude", 0.3)), reply))
        elif name == "audio":
            self.spawn(_play_audio(self, str(cmd["path"]), reply))
        elif name == "republish":
            try:
                old, new = await self.republish_mic(str(cmd.get("first", "publish")))
            except Exception as exc:  # reported to the test, which decides
                emit("error", message=f"republishing the microphone failed: {exc!r}", **reply)
                return True
            emit("republished", old=old, new=new, **reply)
        elif name == "frames":
            self.stream_frames = bool(cmd.get("on", True))
            emit("ok", **reply)
        elif name == "stats":
            emit("stats", dtmf_received=self.dtmf_received,
                 audio={h.track: {"participant": h.participant, "frames": h.frames,
                                  "seconds": round(h.seconds, 3), "tone_seconds": round(h.tone_seconds, 3)}
                        for h in self.heard.values()}, **reply)
        elif name == "ping":
            emit("pong", **reply)
        elif name == "leave":
            return False
        else:
            emit("error", message=f"unknown command {name!r} (known: dtmf, tone, audio, frames, republish, stats, ping, leave)",
                 **reply)
        return True

    async def publish_mic(self) -> rtc.AudioSource:
        """Publish the caller's microphone track (once); tones are played on it.

        Why at connect, like a phone: livekit-server announces a participant that publishes
        nothing to the others only in its 3 s batch of subscriber updates, and a Python/Rust
        receiver drops data (DTMF) from a participant it does not know yet. A publisher is
        announced at once.
        """
        if self.source is None:
            self.source = rtc.AudioSource(SAMPLE_RATE, 1)
            track = rtc.LocalAudioTrack.create_audio_track("caller-mic", self.source)
            opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            self.mic = await self.room.local_participant.publish_track(track, opts)
        return self.source

    async def republish_mic(self, first: str) -> tuple[str, str]:
        """Replace the microphone track by a new one on the same source; the two sids."""
        source = await self.publish_mic()
        old = self.mic
        if old is None:
            raise RuntimeError("the microphone track was published without its publication kept")
        track = rtc.LocalAudioTrack.create_audio_track("caller-mic", source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        if first == "unpublish":
            await self.room.local_participant.unpublish_track(old.sid)
            self.mic = await self.room.local_participant.publish_track(track, opts)
        else:
            self.mic = await self.room.local_participant.publish_track(track, opts)
            await self.room.local_participant.unpublish_track(old.sid)
        return old.sid, self.mic.sid

    async def play_tone(self, freq: float, seconds: float, amplitude: float, reply: dict[str, Any]) -> None:
        """Play a phase-continuous sine on the microphone track."""
        source = await self.publish_mic()
        start = time.monotonic()
        per_frame = SAMPLE_RATE * FRAME_MS // 1000
        step = 2 * math.pi * freq / SAMPLE_RATE
        for _ in range(max(1, round(seconds * 1000 / FRAME_MS))):
            phases = self.phase + step * np.arange(per_frame)
            self.phase = float((phases[-1] + step) % (2 * math.pi))
            pcm = (amplitude * 32767 * np.sin(phases)).astype(np.int16)
            await source.capture_frame(rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE, 1, per_frame))
        await source.wait_for_playout()
        emit("tone_sent", freq=freq, start=start, end=time.monotonic(), **reply)


async def _play_audio(self: Caller, path: str, reply: dict[str, Any]) -> None:
    """Play a mono 16-bit WAV on the microphone track (resampled to 48 kHz), then silence."""
    import wave

    with wave.open(path, "rb") as w:
        rate, data = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    samples = np.interp(np.arange(0, len(data), rate / SAMPLE_RATE), np.arange(len(data)), data).astype(np.int16)
    source = await self.publish_mic()
    per_frame = SAMPLE_RATE * FRAME_MS // 1000
    samples = np.concatenate([samples, np.zeros(-len(samples) % per_frame, dtype=np.int16)])
    start = time.monotonic()
    for i in range(0, len(samples), per_frame):
        await source.capture_frame(rtc.AudioFrame(samples[i:i + per_frame].tobytes(), SAMPLE_RATE, 1, per_frame))
    await source.wait_for_playout()
    emit("audio_sent", start=start, end=time.monotonic(), **reply)


async def read_commands(caller: Caller) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while not caller.gone.is_set():
        line = await reader.readline()
        if not line:
            return  # EOF: the test is done with us
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            emit("error", message=f"bad command line {line.decode(errors='replace').strip()!r}: {exc}")
            continue
        if not await caller.handle(cmd):
            return


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="LiveKit URL, ws://<address>:7880")
    parser.add_argument("--subscribe-after", type=float, default=None, metavar="S",
                        help="subscribe to others' audio only S seconds after each track is published")
    parser.add_argument("--no-mic", action="store_true",
                        help="do not publish a microphone track at connect (others then learn of this "
                             "participant only in the server's 3 s batch, and drop its DTMF until then)")
    args = parser.parse_args()
    token = os.environ.get("LIVEKIT_TOKEN")
    if not token:
        emit("error", message="LIVEKIT_TOKEN is not set: pass the access token in the environment")
        return 2
    room = rtc.Room()
    caller = Caller(room=room)
    caller.wire()
    options = rtc.RoomOptions(auto_subscribe=args.subscribe_after is None)
    if args.subscribe_after is not None:
        delay = args.subscribe_after

        async def subscribe_late(pub: rtc.RemoteTrackPublication) -> None:
            await asyncio.sleep(delay)
            emit("subscribing", track=pub.sid, after=delay)
            pub.set_subscribed(True)

        @room.on("track_published")
        def _published(pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
            if pub.kind == rtc.TrackKind.KIND_AUDIO:
                caller.spawn(subscribe_late(pub))
    try:
        await room.connect(args.url, token, options)
    except Exception as exc:
        emit("error", message=f"connect to {args.url} failed: {exc}")
        return 1
    if not args.no_mic:
        try:
            await caller.publish_mic()
        except Exception as exc:
            emit("error", message=f"publishing the microphone track failed: {exc}")
            await room.disconnect()
            return 1
    emit("connected", identity=room.local_participant.identity, room=room.name,
         participants=sorted(room.remote_participants), mic=not args.no_mic)
    commands = asyncio.ensure_future(read_commands(caller))
    gone = asyncio.ensure_future(caller.gone.wait())
    await asyncio.wait({commands, gone}, return_when=asyncio.FIRST_COMPLETED)
    for task in (commands, gone, *caller.tasks):
        task.cancel()
    await asyncio.gather(commands, gone, *caller.tasks, return_exceptions=True)
    if not caller.gone.is_set():
        await room.disconnect()
    emit("left")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
