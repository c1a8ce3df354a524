"""Each room of the process hears only its own native events (a narrowed filter on livekit 1.1.21).

Why: livekit's Python SDK hands every event of its native client to every subscriber in the
process, and a joined `rtc.Room` subscribes with a filter that keeps all but media-stream events.
So each call's event loop was woken (`call_soon_threadsafe`, a write to the loop's self-pipe)
for every other call's events — a prompt chunk captured, an attribute set, a key sent — read
it, found it was not its room's, and passed it through its own broadcast queue anyway. Per call
that grows with the number of calls in the process: the fan-out issue 16 measured.

What the room's listener uses (`Room._listen_task`, and the local participant's publish and
unpublish waiters behind it): its own room events, RPC invocations, and publish / unpublish
track callbacks. `narrow_room(room)` replaces the room's filter, once it has joined, with one that
keeps exactly those — the room's behaviour does not change, its loop just stops waking for
the rest. `narrow_stream` does the same for an `AudioStream` (the caller's or a dialled
party's audio), whose SDK filter keeps the frames of every stream in the process. Both reach into the SDK's private subscriber list, so it checks what it relies on
and does nothing (logged once) on an SDK that differs: the pinned version is the one checked.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient

__all__ = ["narrow_room", "narrow_stream"]

logger = logging.getLogger("ivrkit.livekit")

#: Callbacks that reach a room's local participant through the room's queue.
_KEPT = frozenset({"rpc_method_invocation", "publish_track", "unpublish_track"})
#: The bench's "before" side turns narrowing off.
ENABLED = True
_warned = False


def _room_filter(handle: int) -> Any:
    def keep(event: Any) -> bool:
        which = event.WhichOneof("message")
        if which == "room_event":
            return bool(event.room_event.room_handle == handle)
        return which in _KEPT

    return keep


def narrow_room(room: rtc.Room) -> bool:
    """Narrow a joined `room`'s subscription to its own events; False when it could not."""
    if room._ffi_handle is None:  # not joined
        return False
    try:
        return _replace_filter(room._ffi_queue, _room_filter(room._ffi_handle.handle))
    except AttributeError as e:
        return _differs(e)


def narrow_stream(stream: rtc.AudioStream) -> bool:
    """Narrow an `AudioStream`'s subscription (all audio-stream events of the process, by the
    SDK's filter) to its own frames: each listening call's loop otherwise wakes for every
    frame of every other listening call."""
    try:
        handle = stream._ffi_handle.handle
        return _replace_filter(stream._ffi_queue, lambda e: bool(e.WhichOneof("message") == "audio_stream_event"
                                                                  and e.audio_stream_event.stream_handle == handle))
    except AttributeError as e:
        return _differs(e)


def _replace_filter(queue: Any, keep: Any) -> bool:
    if not ENABLED:
        return False
    ffi_queue = FfiClient.instance.queue
    with ffi_queue._lock:
        subscribers = ffi_queue._subscribers
        for i, (q, loop, _) in enumerate(subscribers):
            if q is queue:
                subscribers[i] = (q, loop, keep)
                return True
    return False


def _differs(e: Exception) -> bool:
    global _warned
    if not _warned:
        _warned = True
        logger.warning("livekit's SDK differs from the version ivrkit pins (%s): every call's event loop "
                       "hears every call's native events (more CPU per call)", e)
    return False
