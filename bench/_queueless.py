"""Row 13's "queue-less" side: prompts fed 10 ms at a time from Python into a native source
without a queue, so nothing at all is sent while no prompt plays.

Why it is measured and not shipped: livekit's native `AudioSource` with a queue (what ivrkit
uses) hands WebRTC a 10 ms frame every 10 ms, of silence when its queue is empty (rust-sdks
#929, "always provide a 10 ms frame to avoid playout underruns"), so an idle call keeps the
Opus encoder and the send path busy. A source created with `queue_size_ms=0` delivers only
what it is given — but then each 10 ms frame is its own FFI request, whose answer the pinned
SDK hands to Python on its audio thread, and the pacing is a Python timer per call. This
module replaces `PromptPlayer._feed` for the bench's worker only (imported by its LAUNCH line):
each frame is sent when it is due less `LEAD`, with a request id chosen here, and its answer
awaited on one subscription per call that keeps only this call's ids, so frames stay in order
(the FFI runs each capture as a task of its own: two in flight may swap).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2 as proto_ffi

from ivrkit.livekit import channel, player
from ivrkit.voice.audio import chunks

#: Audio handed to WebRTC ahead of real time after each wake-up; the feeder sleeps until the
#: lead is down to `LEAD - WAKE`. A barge-in is heard up to `LEAD` late (the queued side: none).
LEAD, WAKE = 0.08, 0.04
#: Request ids far above the FFI's own counter.
_ids = itertools.count(1 << 62)


async def _feed(self: player.PromptPlayer) -> None:
    loop = asyncio.get_running_loop()
    mine: set[int] = set()

    def keep(e: Any) -> bool:
        return bool(e.WhichOneof("message") == "capture_audio_frame" and e.capture_audio_frame.async_id in mine)

    answers = FfiClient.instance.queue.subscribe(loop=loop, filter_fn=keep)
    handle = self.source._ffi_handle.handle
    try:
        while True:
            gen, prompt, pcm = await self._ready.get()
            if gen != self._gen:
                continue
            start = loop.time()
            for i, frame in enumerate(chunks(pcm, 10)):
                ahead = start + i * 0.01 - loop.time()
                if ahead > LEAD:
                    await asyncio.sleep(ahead - LEAD + WAKE)
                if gen != self._gen:
                    break
                audio = rtc.AudioFrame(data=frame.samples, sample_rate=frame.sample_rate, num_channels=1,
                                       samples_per_channel=frame.num_samples)
                req = proto_ffi.FfiRequest()
                async_id = next(_ids)
                mine.add(async_id)
                req.capture_audio_frame.source_handle = handle
                req.capture_audio_frame.request_async_id = async_id
                req.capture_audio_frame.buffer.CopyFrom(audio._proto_info())
                FfiClient.instance.request(req)
                answer = await answers.get()
                mine.discard(answer.capture_audio_frame.async_id)
                self._pushed_ms += 10
            else:
                rest = start + self._pushed_ms / 1000 - loop.time()
                if rest > 0:
                    await asyncio.sleep(rest)
            if gen == self._gen and self._current is prompt:
                self._current = None
                self._end(prompt, interrupted=False)
    finally:
        FfiClient.instance.queue.unsubscribe(answers)


def install() -> None:
    channel.QUEUE_MS = 0  # the call's source is created without a native queue
    player.PromptPlayer._feed = _feed  # type: ignore[method-assign]
