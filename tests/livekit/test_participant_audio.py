"""ParticipantAudio's bookkeeping: one subscription however many listen, which publication it
takes when the participant republishes, and what a listener hears of the participant leaving.

A real `rtc.Room` needs a server; delivering a track needs one too (tests/e2e/test_sip_bridge.py
and tests/e2e/test_speech.py run this class for real: navigate on a bridged leg, a caller who
republishes). Here the room is livekit's own `EventEmitter` with the participant's publications,
and the events are emitted in the orders LiveKit sends them (`track_unsubscribed` before
`track_unpublished`, the publication still listed when the first comes)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from livekit import rtc

from ivrkit.errors import ChannelError
from ivrkit.livekit.participant_audio import ParticipantAudio, choose, frames
from ivrkit.testing import VirtualClock

MIC, AUDIO, VIDEO = rtc.TrackSource.SOURCE_MICROPHONE, rtc.TrackKind.KIND_AUDIO, rtc.TrackKind.KIND_VIDEO


@dataclass(eq=False)
class Publication:
    sid: str
    kind: Any = AUDIO
    source: Any = MIC
    track: Any = None
    asked: list[bool] = field(default_factory=list)  # set_subscribed calls, in order

    def set_subscribed(self, on: bool) -> None:
        self.asked.append(on)


@dataclass(eq=False)
class Participant:
    identity: str
    track_publications: dict[str, Publication] = field(default_factory=dict)


class Room(rtc.EventEmitter[str]):
    def __init__(self, *participants: Participant) -> None:
        super().__init__()
        self.name = "room-1"
        self.remote_participants = {p.identity: p for p in participants}

    def publish(self, who: Participant, pub: Publication) -> None:
        who.track_publications[pub.sid] = pub
        self.emit("track_published", pub, who)

    def unpublish(self, who: Participant, pub: Publication) -> None:
        """As LiveKit does it: unsubscribed (still listed), then unpublished (gone)."""
        if pub.asked and pub.asked[-1]:
            self.emit("track_unsubscribed", pub.track, pub, who)
        del who.track_publications[pub.sid]
        self.emit("track_unpublished", pub, who)


def audio(room: Room, who: str = "caller") -> ParticipantAudio:
    return ParticipantAudio(room, who, clock=VirtualClock())  # type: ignore[arg-type]


def test_choose_takes_the_newest_microphone_and_never_a_dying_one() -> None:
    old, new, screen, cam = Publication("TR_old"), Publication("TR_new"), Publication(
        "TR_screen", source=rtc.TrackSource.SOURCE_SCREENSHARE_AUDIO), Publication("TR_cam", kind=VIDEO)
    assert choose([old, new, screen, cam], set()) is new  # type: ignore[list-item]
    assert choose([old, new, screen], {"TR_new"}) is old  # type: ignore[list-item]
    assert choose([old, screen], {"TR_old"}) is screen  # type: ignore[list-item]
    assert choose([cam], set()) is None  # type: ignore[list-item]


async def test_one_subscription_however_many_listen_and_the_last_one_gone_gives_it_back() -> None:
    caller = Participant("caller")
    mic = Publication("TR_1")
    room = Room(caller)
    room.publish(caller, mic)
    ears = audio(room)
    stops = [ears.listen(lambda pcm, at: None) for _ in range(3)]
    assert mic.asked == [True]
    stops[0]()
    stops[0]()  # idempotent
    stops[2]()
    assert mic.asked == [True] and ears.listening
    stops[1]()
    assert mic.asked == [True, False] and not ears.subscribed


@pytest.mark.parametrize("first", ["publish", "unpublish"])
async def test_a_republished_track_is_followed_in_either_order(first: str) -> None:
    caller = Participant("caller")
    old, new = Publication("TR_old"), Publication("TR_new")
    room = Room(caller)
    room.publish(caller, old)
    ears = audio(room)
    ears.listen(lambda pcm, at: None)
    assert old.asked == [True]
    if first == "publish":  # a web client switching microphone
        room.publish(caller, new)
        assert new.asked == []  # the old one is still live
        room.unpublish(caller, old)
    else:  # the old one goes first: nothing to hear until the new one comes
        room.unpublish(caller, old)
        assert not ears.subscribed
        room.publish(caller, new)
    assert old.asked == [True] and new.asked == [True], "subscribed to a dying publication"
    assert ears.listening and ears.subscribed


async def test_a_publication_unpublished_before_it_was_delivered_is_let_go() -> None:
    caller = Participant("caller")
    old = Publication("TR_old")
    room = Room(caller)
    room.publish(caller, old)
    ears = audio(room)
    ears.listen(lambda pcm, at: None)
    old.asked.append(False)  # as if never delivered: no track_unsubscribed comes
    room.unpublish(caller, old)
    assert not ears.subscribed
    new = Publication("TR_new")
    room.publish(caller, new)
    assert new.asked == [True]


async def test_our_own_unsubscribing_does_not_make_a_track_dying() -> None:
    caller = Participant("caller")
    mic = Publication("TR_1")
    room = Room(caller)
    room.publish(caller, mic)
    ears = audio(room)
    ears.listen(lambda pcm, at: None)()  # listened, gave it back
    ears.listen(lambda pcm, at: None)  # and again, before the server's answer to the first
    room.emit("track_unsubscribed", None, mic, caller)  # that answer
    assert mic.asked == [True, False, True]
    assert choose(caller.track_publications.values(), ears._dying) is mic  # type: ignore[arg-type]


async def test_a_far_party_leaving_ends_its_frames_and_other_listeners_wait_on() -> None:
    far, caller = Participant("far"), Participant("caller")
    room = Room(far, caller)
    room.publish(far, Publication("TR_far"))
    ears = audio(room, "far")
    waiting = ears.listen(lambda pcm, at: None)  # no on_gone: waits for a next track
    heard = frames(ears, track_wait=60)
    reading = asyncio.ensure_future(heard.__anext__())
    await asyncio.sleep(0)
    del room.remote_participants["far"]
    room.emit("participant_disconnected", far)
    with pytest.raises(StopAsyncIteration):
        await reading
    assert ears.listening  # the other listener
    waiting()
    assert not ears.listening


async def test_frames_says_why_it_cannot_hear() -> None:
    caller = Participant("caller")
    room = Room(caller)
    with pytest.raises(ChannelError, match="cannot hear 'far': it is not in room 'room-1'"):
        await frames(audio(room, "far")).__anext__()
    ears = audio(room)
    with pytest.raises(ChannelError, match="cannot hear 'caller': it published no audio track within 0 s"):
        await frames(ears, track_wait=0).__anext__()
    assert not ears.listening  # the failed listener is gone
    room.publish(caller, Publication("TR_1"))
    with pytest.raises(ChannelError, match="its audio track was not delivered within 0 s"):
        await frames(ears, track_wait=0).__anext__()


async def test_closing_ends_every_iteration_and_gives_the_track_back() -> None:
    far = Participant("far")
    mic = Publication("TR_far")
    room = Room(far)
    room.publish(far, mic)
    ears = audio(room, "far")
    reading = asyncio.ensure_future(frames(ears, track_wait=60).__anext__())  # navigate, listening
    await asyncio.sleep(0)
    await ears.aclose()  # the leg is hung up
    with pytest.raises(StopAsyncIteration):
        await reading
    assert mic.asked == [True, False] and not ears.listening
