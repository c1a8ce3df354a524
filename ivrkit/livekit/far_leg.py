"""A dialled SIP leg in a room of its own, which the agent joins too.

Why a room of its own: LiveKit SIP relays every DTMF data packet in a room to every SIP leg in
it (measured with SIPp at both ends, tests/e2e/test_sip_bridge.py). With the dialled leg in the
caller's room the caller's PIN went out to the far end as tones, and the keys the flow sent to
the far IVR were played to the caller. In a separate room each leg hears only the keys sent in
its own room: the agent sends navigation keys into the leg's room only, and the caller's keys
stay in the caller's. Audio crosses only through the agent (`ivrkit.livekit.bridge`), which
carries samples and never keys.

The agent publishes two audio tracks in the leg's room: `ivrkit-to-far`, silence until the call
bridges the legs, then the caller's voice; and `ivrkit-prompts`, the call's prompts (the same
audio source as the caller's prompt track), so a flow can speak to the dialled party — leave a
voicemail message after AMD, say who is calling — as it did when both legs shared a room. Hold
audio is the caller's only: the prompt track is muted in the leg's room while a hold prompt
plays. The leg's own audio is heard through one `ParticipantAudio` (one subscription) shared by
AMD, navigate and the bridge, so one of them ending never cuts the others. Closing deletes the room, which hangs the leg up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from livekit import api, rtc

from ivrkit.clock import Clock
from ivrkit.errors import ChannelError
from ivrkit.livekit.ffi_events import narrow_room
from ivrkit.livekit.joining import join
from ivrkit.livekit.participant_audio import ParticipantAudio, frames
from ivrkit.voice.audio import Pcm

__all__ = ["BRIDGE_RATE", "FarLeg", "RoomKeys", "leg_room_name"]

logger = logging.getLogger("ivrkit.livekit")

#: Sample rate of the bridge's audio both ways (telephone speech; LiveKit resamples).
BRIDGE_RATE = 16000
#: Joining the leg's room waits at most this long.
JOIN_LIMIT = 10.0


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """What the agent needs to join another room than its job's: the server URL and API keys."""

    url: str
    api_key: str
    api_secret: str

    def token(self, room: str, identity: str) -> str:
        grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True,
                                 can_publish_data=True)
        return (api.AccessToken(self.api_key, self.api_secret).with_identity(identity).with_kind("agent")
                .with_grants(grants).to_jwt())


def leg_room_name(caller_room: str, n: int) -> str:
    """The room of the call's n-th dial: named after the caller's, so an operator finds both."""
    return f"{caller_room}--leg{n}"


class FarLeg:
    """The room of one dial. `open` joins it and publishes the track the far end hears;
    the SIP participant is then created in `room.name` (the caller of `open` does that)."""

    def __init__(self, room: rtc.Room, source: rtc.AudioSource, prompts: rtc.LocalAudioTrack) -> None:
        self.room = room
        self.source = source  # the bridge's track: the caller's voice once bridged
        self.prompts = prompts  # the call's prompts, as the caller hears them (muted during hold)
        self.identity: str | None = None  # the SIP participant, once answered
        self.audio: ParticipantAudio | None = None  # its audio, for every listener, once answered

    @classmethod
    async def open(cls, keys: RoomKeys, name: str, identity: str, prompt_source: rtc.AudioSource) -> FarLeg:
        room = rtc.Room()
        source = rtc.AudioSource(BRIDGE_RATE, 1, queue_size_ms=200)
        try:
            await join(lambda: room.connect(keys.url, keys.token(name, identity), rtc.RoomOptions(auto_subscribe=False)),
                       limit=JOIN_LIMIT, what=f"joining the dialled leg's room '{name}'", on_abandoned=room.disconnect)
            narrow_room(room)
            bridge = rtc.LocalAudioTrack.create_audio_track("ivrkit-to-far", source)
            prompts = rtc.LocalAudioTrack.create_audio_track("ivrkit-prompts", prompt_source)
            for track in (bridge, prompts):
                await asyncio.wait_for(room.local_participant.publish_track(
                    track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)), JOIN_LIMIT)
        except BaseException as e:  # cancelled too (the caller hung up meanwhile): leave the room
            with contextlib.suppress(Exception):
                await room.disconnect()
            with contextlib.suppress(Exception):
                await source.aclose()
            if not isinstance(e, Exception):
                raise
            raise ChannelError(f"cannot join the dialled leg's room '{name}' ({type(e).__name__}: {e})") from e
        return cls(room, source, prompts)

    def hear_prompts(self, on: bool) -> None:
        """Whether the dialled party hears the call's prompts (not while hold audio plays)."""
        if self.prompts.muted == on:
            (self.prompts.unmute if on else self.prompts.mute)()

    async def send_dtmf(self, code: int, digit: str) -> None:
        """A key into this leg's room: LiveKit SIP plays it to this leg only."""
        await self.room.local_participant.publish_dtmf(code=code, digit=digit)

    def answered(self, identity: str, clock: Clock) -> None:
        """The dial was answered by SIP participant `identity`: its audio can be heard."""
        self.identity = identity
        self.audio = ParticipantAudio(self.room, identity, clock=clock, who="dialled")

    def hear(self, sample_rate: int = 8000) -> AsyncGenerator[Pcm, None]:
        """The far party's audio until it hangs up; one more listener of the leg's one
        subscription (closing it leaves the others' audio alone)."""
        if self.audio is None:
            raise ChannelError("cannot hear the dialled party: the dial was not answered")
        return frames(self.audio, sample_rate=sample_rate)

    async def close(self, lk: api.LiveKitAPI) -> None:
        """Hang the leg up (its room is deleted: BYE, or CANCEL while it rings) and leave."""
        name = self.room.name
        if self.audio is not None:  # its listeners' streams, before the track goes away
            await self.audio.aclose()
        try:  # first: this is what hangs up the far party
            await asyncio.wait_for(lk.room.delete_room(api.DeleteRoomRequest(room=name)), 5.0)
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:  # NOT_FOUND: gone already
                logger.warning("deleting the dialled leg's room '%s' failed: %s", name, e.message)
        except Exception as e:
            logger.warning("deleting the dialled leg's room '%s' failed (%s: %s)", name, type(e).__name__, e)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.room.disconnect(), 1.0)
        with contextlib.suppress(Exception):
            await self.source.aclose()
