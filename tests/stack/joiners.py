"""Several threads, each with its own event loop, join rooms at the same moment — as
livekit-agents' thread executor runs jobs — either straight through `rtc.Room.connect`
(`--at-once`) or through ivrkit's `ivrkit.livekit.joining.join` (in turns).

    LIVEKIT_TOKENS='["<jwt>", ...]' python tests/stack/joiners.py --url ws://... [--at-once]

Prints one JSON line: {"joined": {thread: seconds}, "failed": {thread: error}}. A livekit FFI
panic ends the process by SIGTERM before that line (the Python SDK's answer to any panic), so
"no line and 'FFI Panic' in the log" is what a panicked round looks like.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time

from livekit import rtc

from ivrkit.livekit.joining import join


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--at-once", action="store_true", help="rtc.Room.connect straight, no turns")
    parser.add_argument("--stay", type=float, default=2.0, help="seconds in the room after joining")
    args = parser.parse_args()
    tokens: list[str] = json.loads(os.environ["LIVEKIT_TOKENS"])
    joined: dict[int, float] = {}
    failed: dict[int, str] = {}
    start = threading.Barrier(len(tokens))

    async def one(i: int, token: str) -> None:
        room = rtc.Room()
        start.wait()
        t0 = time.monotonic()

        def connect() -> asyncio.Future[None]:
            return asyncio.ensure_future(room.connect(args.url, token, rtc.RoomOptions(auto_subscribe=False)))

        try:
            if args.at_once:
                await connect()
            else:
                await join(connect, limit=30, what=f"joining as thread {i}")
            joined[i] = round(time.monotonic() - t0, 3)
        except Exception as e:
            failed[i] = f"{type(e).__name__}: {e}"
        await asyncio.sleep(args.stay)
        await room.disconnect()

    threads = [threading.Thread(target=lambda i=i, t=t: asyncio.run(one(i, t))) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"joined": joined, "failed": failed}), flush=True)


if __name__ == "__main__":
    main()
