"""Simulated callers for the real-server benchmark of row 5: key → first prompt audio.

Runs inside the harness's network namespace (started by bench/_stack_run.py). One process hosts
one or many calls, each its own `rtc.Room` joined with a token from LIVEKIT_TOKENS (a JSON list;
each token's room configuration dispatches the worker under test). Per call:

1. wait for the agent's audio track and for its first prompt to play and end;
2. then, `warmup + presses` times: wait a short random gap of silence, take t0 =
   time.monotonic(), `publish_dtmf(1, "1")`, and wait for the first audio frame louder than
   -35 dBFS to arrive at this caller: latency = its arrival time - t0. Wait for the prompt to end
   (150 ms of silence) and go on. The prompts are tones, alternating between two frequencies with
   every key, so each press also checks that the *next* prompt (not a replay) was heard.

stdout, JSON lines: {"event": "call", "call": i, "latencies": [...], "failures": n,
"wrong_prompt": n, "errors": [...]} per call, then {"event": "done", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

LOUD_DB = -35.0
SILENCE_S = 0.15
RATE = 16000  # what the caller decodes to
FRAME_MS = 10


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
    sys.stdout.flush()


@dataclass
class Ear:
    """What one call hears: loud/silent per frame, with arrival times."""

    rate: int
    last_loud: float = 0.0
    loud_frames: int = 0
    waiter: asyncio.Future[tuple[float, float]] | None = None
    onset_freq_frames: list[float] = field(default_factory=list)
    collecting: int = 0
    onset_at: float = 0.0

    def feed(self, samples: np.ndarray[Any, Any], now: float) -> None:
        x = samples.astype(np.float32) / 32768.0
        rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
        db = 20 * math.log10(rms) if rms > 0 else -120.0
        if db < LOUD_DB:
            return
        self.last_loud = now
        self.loud_frames += 1
        if self.waiter is not None and not self.waiter.done():
            self.onset_at = now
            self.collecting = 3
            self.onset_freq_frames = []
            waiter, self.waiter = self.waiter, None
            waiter.set_result((now, 0.0))
        elif self.collecting:
            crossings = int(np.count_nonzero(np.diff(np.signbit(x))))
            self.onset_freq_frames.append(crossings * self.rate / (2 * len(x)))
            self.collecting -= 1


async def _listen(track: rtc.Track, ear: Ear, frame_ms: int) -> None:
    stream = rtc.AudioStream(track, sample_rate=ear.rate, num_channels=1, frame_size_ms=frame_ms)
    try:
        async for ev in stream:
            ear.feed(np.frombuffer(ev.frame.data, dtype=np.int16), time.monotonic())
    finally:
        await stream.aclose()


async def _silence(ear: Ear, limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if ear.loud_frames and time.monotonic() - ear.last_loud >= SILENCE_S:
            return True
        await asyncio.sleep(0.01)
    return False


async def _press(n: int, room: rtc.Room, ear: Ear, args: argparse.Namespace, tones: tuple[float, float],
                 expect: int, out: dict[str, Any]) -> None:
    await asyncio.sleep(args.gap * random.uniform(0.5, 1.5))
    fut: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
    ear.waiter = fut
    t0 = time.monotonic()
    await room.local_participant.publish_dtmf(code=1, digit="1")
    try:
        heard_at, _ = await asyncio.wait_for(fut, args.press_timeout)
    except asyncio.TimeoutError:
        out["failures"] += 1
        ear.waiter = None
        if len(out["errors"]) < 5:
            out["errors"].append(f"press {n}: no prompt within {args.press_timeout} s")
        await _silence(ear, 10)
        return
    if not await _silence(ear, 10):
        out["failures"] += 1
        out["errors"].append(f"press {n}: prompt did not end")
        return
    freqs = ear.onset_freq_frames
    if freqs:
        f = float(np.median(freqs))
        if abs(f - tones[expect]) > 60:
            out["wrong_prompt"] += 1  # not counted as a latency: we may have heard the wrong thing
            if len(out["errors"]) < 5:
                out["errors"].append(f"press {n}: heard {f:.0f} Hz, expected {tones[expect]:.0f} Hz")
            return
    if n >= args.warmup:
        out["latencies"].append(heard_at - t0)
        out["press_index"].append(n)


async def one_call(i: int, url: str, token: str, args: argparse.Namespace, tones: tuple[float, float]) -> dict[str, Any]:
    room = rtc.Room()
    ear = Ear(rate=RATE)
    got_track: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()
    tasks: list[asyncio.Task[None]] = []
    out: dict[str, Any] = {"call": i, "latencies": [], "failures": 0, "wrong_prompt": 0, "errors": [],
                           "press_index": []}

    @room.on("track_subscribed")
    def _sub(track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and not got_track.done():
            got_track.set_result(track)

    try:
        await room.connect(url, token)
        track = await asyncio.wait_for(got_track, args.join_timeout)
        tasks.append(asyncio.ensure_future(_listen(track, ear, FRAME_MS)))
        # the first prompt: wait for it to start, then to end
        first: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        ear.waiter = first
        await asyncio.wait_for(first, args.join_timeout)
        if not await _silence(ear, 10):
            raise TimeoutError("the first prompt did not end within 10 s")
        expect = 1  # the first prompt was tone 0; each key moves to the other one
        for n in range(args.warmup + args.presses):
            await _press(n, room, ear, args, tones, expect, out)
            expect = 1 - expect
    except Exception as exc:  # reported in the JSON: the bench decides
        out["errors"].append(f"{type(exc).__name__}: {exc}")
        out["failures"] += max(0, args.warmup + args.presses - len(out["latencies"]) - out["failures"])
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await room.disconnect()
    return out


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--presses", type=int, default=50)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--gap", type=float, default=0.15, help="mean seconds of silence before a key")
    p.add_argument("--press-timeout", type=float, default=5.0)
    p.add_argument("--join-timeout", type=float, default=30.0)
    p.add_argument("--stagger", type=float, default=0.05, help="seconds between call starts")
    p.add_argument("--tones", default="600,900")
    args = p.parse_args()
    tokens = json.loads(os.environ["LIVEKIT_TOKENS"])
    tones = tuple(float(x) for x in args.tones.split(","))
    start = time.monotonic()

    async def staggered(i: int, token: str) -> dict[str, Any]:
        await asyncio.sleep(i * args.stagger)
        res = await one_call(i, args.url, token, args, tones)  # type: ignore[arg-type]
        emit("call", **res)
        return res

    results = await asyncio.gather(*(staggered(i, t) for i, t in enumerate(tokens)))
    emit("done", calls=len(results), seconds=time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
