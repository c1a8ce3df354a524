"""Soak callers (bench/soak.py): many calls in one process, each pressing a random key sequence.

Runs inside the harness's network namespace. Tokens come from LIVEKIT_TOKENS (a JSON list; each
dispatches the worker under test to its own room) and the keys from SOAK_KEYS (a JSON list, one
string per call). Per call: join (publishing a silent microphone track, as a phone does, so the
agent sees the caller at once) and subscribing to the agent's audio (the worker starts the call
once the caller hears its prompt track), wait until the agent shows the call's first state (its
`ivrkit.state` attribute: the call runs and takes keys), press the keys `--gap` apart, wait
`--linger` seconds for the last key to travel, and leave. The audio is never read: the soak
counts keys and the worker's memory, not what the caller hears.

stdout, JSON lines: {"event": "call", "call": i, "room": ..., "sent": "...", "error": null} per
call, then {"event": "done"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from livekit import rtc

CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def one_call(i: int, url: str, token: str, keys: str, args: argparse.Namespace) -> None:
    room = rtc.Room()
    running = asyncio.Event()

    def check(p: rtc.Participant) -> None:
        if p.attributes.get("ivrkit.state"):
            running.set()

    room.on("participant_attributes_changed", lambda changed, p: check(p))
    sent = ""
    error = None
    try:
        await asyncio.wait_for(room.connect(url, token, rtc.RoomOptions(auto_subscribe=True)), args.join_timeout)
        source = rtc.AudioSource(16000, 1)
        mic = rtc.LocalAudioTrack.create_audio_track("mic", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await room.local_participant.publish_track(mic, options)
        for p in room.remote_participants.values():
            check(p)
        await asyncio.wait_for(running.wait(), args.join_timeout)
        for key in keys:
            await room.local_participant.publish_dtmf(code=CODES[key], digit=key)
            sent += key
            await asyncio.sleep(args.gap)
        await asyncio.sleep(args.linger)
    except Exception as exc:  # reported per call; the soak counts it
        error = f"{type(exc).__name__}: {exc}"
    finally:
        await room.disconnect()
    emit("call", call=i, room=room.name, sent=sent, error=error)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--gap", type=float, default=0.1, help="seconds between keys")
    p.add_argument("--linger", type=float, default=1.0, help="seconds after the last key before leaving")
    p.add_argument("--stagger", type=float, default=0.1, help="seconds between call starts")
    p.add_argument("--join-timeout", type=float, default=30.0)
    args = p.parse_args()
    tokens: list[str] = json.loads(os.environ["LIVEKIT_TOKENS"])
    keys: list[str] = json.loads(os.environ["SOAK_KEYS"])

    async def staggered(i: int) -> None:
        await asyncio.sleep(i * args.stagger)
        await one_call(i, args.url, tokens[i], keys[i], args)

    await asyncio.gather(*(staggered(i) for i in range(len(tokens))))
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
