"""A joined room's loop hears its own native events only (ivrkit.livekit.ffi_events), through the
SDK's real event queue: what another room's events, a prompt chunk's capture callback or another
stream's frames do to it, before and after narrowing."""

from __future__ import annotations

import asyncio
import types

from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2 as proto_ffi

from ivrkit.livekit import ffi_events


def _room_event(handle: int) -> proto_ffi.FfiEvent:
    event = proto_ffi.FfiEvent()
    event.room_event.room_handle = handle
    event.room_event.eos.SetInParent()
    return event


def _capture_callback() -> proto_ffi.FfiEvent:
    event = proto_ffi.FfiEvent()
    event.capture_audio_frame.async_id = 7
    return event


def _publish_callback() -> proto_ffi.FfiEvent:
    event = proto_ffi.FfiEvent()
    event.publish_track.async_id = 8
    return event


def _frame(handle: int) -> proto_ffi.FfiEvent:
    event = proto_ffi.FfiEvent()
    event.audio_stream_event.stream_handle = handle
    event.audio_stream_event.eos.SetInParent()
    return event


async def _delivered(queue: asyncio.Queue[proto_ffi.FfiEvent], events: list[proto_ffi.FfiEvent]) -> list[str]:
    for event in events:
        FfiClient.instance.queue.put(event)
    for _ in range(3):
        await asyncio.sleep(0)  # call_soon_threadsafe hands them over on the next turns
    got = []
    while not queue.empty():
        event = queue.get_nowait()
        which = event.WhichOneof("message")
        got.append(f"{which}:{event.room_event.room_handle}" if which == "room_event" else str(which))
    return got


async def test_a_narrowed_room_hears_its_own_events_and_its_publish_callbacks_only() -> None:
    ffi = FfiClient.instance.queue
    # subscribed as rtc.Room.connect does (all but media-stream events)
    queue = ffi.subscribe(asyncio.get_running_loop(),
                          filter_fn=lambda e: e.WhichOneof("message") not in ("audio_stream_event", "video_stream_event"))
    room = types.SimpleNamespace(_ffi_queue=queue, _ffi_handle=types.SimpleNamespace(handle=41))
    events = [_room_event(41), _room_event(42), _capture_callback(), _publish_callback()]
    try:
        assert await _delivered(queue, events) == ["room_event:41", "room_event:42", "capture_audio_frame", "publish_track"]
        assert ffi_events.narrow_room(room)  # type: ignore[arg-type]
        assert await _delivered(queue, events) == ["room_event:41", "publish_track"]
    finally:
        ffi.unsubscribe(queue)


async def test_a_narrowed_stream_hears_its_own_frames_only() -> None:
    ffi = FfiClient.instance.queue
    queue = ffi.subscribe(asyncio.get_running_loop(), filter_fn=lambda e: e.WhichOneof("message") == "audio_stream_event")
    stream = types.SimpleNamespace(_ffi_queue=queue, _ffi_handle=types.SimpleNamespace(handle=5))
    try:
        assert len(await _delivered(queue, [_frame(5), _frame(6)])) == 2
        assert ffi_events.narrow_stream(stream)  # type: ignore[arg-type]
        frames = [_frame(5), _frame(6)]
        for event in frames:
            ffi.put(event)
        for _ in range(3):
            await asyncio.sleep(0)
        got = [queue.get_nowait().audio_stream_event.stream_handle for _ in range(queue.qsize())]
        assert got == [5]
    finally:
        ffi.unsubscribe(queue)


async def test_a_room_not_joined_or_an_sdk_that_differs_is_left_as_it_is() -> None:
    assert not ffi_events.narrow_room(types.SimpleNamespace(_ffi_handle=None))  # type: ignore[arg-type]
    assert not ffi_events.narrow_room(types.SimpleNamespace(_ffi_handle=types.SimpleNamespace(handle=1)))  # type: ignore[arg-type]
