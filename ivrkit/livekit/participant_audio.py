"""Hearing one participant of the room: subscribe to its audio track, yield its frames, and
unsubscribe when the listener is done.

Why a subscription of our own: the worker joins with `AutoSubscribe.SUBSCRIBE_NONE` (an IVR
plays audio and hears keys; decoding every participant's audio would cost CPU for nothing).
Answering-machine detection must hear a dialled leg for a few seconds. So this subscribes to
that one track only while the engine listens (`Channel.dialled_audio`) and drops it after.

The frames come as 16-bit mono PCM at the rate asked for (LiveKit resamples), 10 ms each.
The iteration ends when the participant leaves or its track ends. Closing the generator
(`aclose()`) unsubscribes. Failures to find or subscribe to the track are `ChannelError`s
with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

from livekit import rtc

from ivrkit.errors import ChannelError
from ivrkit.voice.audio import Pcm

__all__ = ["TRACK_WAIT", "hear"]

logger = logging.getLogger("ivrkit.livekit")

#: How long to wait for the participant's audio track to be published and subscribed to.
#: LiveKit SIP publishes a dialled leg's track as the call is answered; seen within 0.5 s.
TRACK_WAIT = 5.0


async def hear(room: rtc.Room, identity: str, *, sample_rate: int = 8000,
               track_wait: float = TRACK_WAIT) -> AsyncGenerator[Pcm, None]:
    """Yield what participant `identity` says, from now until it leaves or the caller closes
    the generator."""
    loop = asyncio.get_running_loop()
    subscribed: asyncio.Future[rtc.Track] = loop.create_future()
    gone: asyncio.Future[None] = loop.create_future()
    publication: rtc.RemoteTrackPublication | None = None

    def subscribe(pub: rtc.RemoteTrackPublication) -> None:
        nonlocal publication
        if publication is None and pub.kind == rtc.TrackKind.KIND_AUDIO:
            publication = pub
            pub.set_subscribed(True)
            if pub.track is not None and not subscribed.done():
                subscribed.set_result(pub.track)

    def on_published(pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == identity:
            subscribe(pub)

    def on_subscribed(track: rtc.Track, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == identity and track.kind == rtc.TrackKind.KIND_AUDIO and not subscribed.done():
            subscribed.set_result(track)

    def on_left(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == identity and not gone.done():
            gone.set_result(None)

    room.on("track_published", on_published)
    room.on("track_subscribed", on_subscribed)
    room.on("participant_disconnected", on_left)
    stream: rtc.AudioStream | None = None
    nxt: asyncio.Future[rtc.AudioFrameEvent] | None = None
    try:
        participant = room.remote_participants.get(identity)
        if participant is None:
            raise ChannelError(f"cannot hear '{identity}': it is not in room '{room.name}' (it left, or never joined)")
        for pub in participant.track_publications.values():
            subscribe(pub)
        try:
            track = await asyncio.wait_for(asyncio.shield(subscribed), track_wait)
        except asyncio.TimeoutError:
            what = "published no audio track" if publication is None else "its audio track was not delivered"
            raise ChannelError(f"cannot hear '{identity}': it {what} within {track_wait:g} s") from None
        stream = rtc.AudioStream.from_track(track=track, sample_rate=sample_rate, num_channels=1)
        frames = stream.__aiter__()
        while True:
            nxt = asyncio.ensure_future(frames.__anext__())
            waiting: list[asyncio.Future[Any]] = [nxt, gone]
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:  # the participant left
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
                return
            try:
                event = nxt.result()
            except StopAsyncIteration:
                return
            yield Pcm(bytes(event.frame.data), sample_rate)
    finally:
        if nxt is not None and not nxt.done():  # closed while waiting for a frame (a timeout)
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)
        room.off("track_published", on_published)
        room.off("track_subscribed", on_subscribed)
        room.off("participant_disconnected", on_left)
        if stream is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.aclose(), 1.0)
        if publication is not None:
            try:
                publication.set_subscribed(False)
            except Exception as e:  # the room may be gone: nothing left to unsubscribe from
                logger.debug("unsubscribing from '%s': %r", identity, e)
