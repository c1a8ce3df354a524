"""A call's dialled legs: each in a room of its own, where the flow's keys go, and the bridge.

Why a room per leg: LiveKit SIP relays every DTMF data packet in a room to every SIP leg in it
(`ivrkit.livekit.far_leg`). So a dial joins a new room (`<caller's room>--legN`) before asking
LiveKit SIP to call into it; keys the flow sends go into the last answered leg's room only;
`bridge` copies audio between the rooms (`ivrkit.livekit.bridge`), each side taken from its
`ParticipantAudio`, so it shares one subscription with in-band DTMF and speech input (the
caller's) or with AMD and navigate (the leg's); the caller's is muted as it is captured while
input is sensitive. The caller is bridged to one leg at a time: a bridge to another leg (a
later dial) replaces the one before, and one whose far end hung up can be replaced too. Every
leg is hung up (its room deleted) when the call ends, or when its dial failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator, Callable

from livekit import api, rtc

from ivrkit.clock import Clock
from ivrkit.errors import ChannelError
from ivrkit.livekit.bridge import Bridge, Muting, caller_frames, to_source
from ivrkit.livekit.far_leg import BRIDGE_RATE, FarLeg, RoomKeys, leg_room_name
from ivrkit.livekit.participant_audio import ParticipantAudio
from ivrkit.voice.audio import Pcm

__all__ = ["DialledLegs"]

#: Publishing the bridge's track to the caller waits at most this long.
PUBLISH_LIMIT = 20.0


class DialledLegs:
    """The legs of one call. `far` is the last answered one (None: no dial answered yet)."""

    def __init__(self, room: rtc.Room, lk: api.LiveKitAPI, keys: RoomKeys | None, prompts: rtc.AudioSource,
                 caller: ParticipantAudio, *, muted: Callable[[], bool], clock: Clock,
                 record: Callable[[str, float, dict[str, object]], None]) -> None:
        self.room = room
        self.api = lk
        self.keys = keys
        self.prompts = prompts  # the caller's prompt source: a dialled party hears it too
        self.caller = caller
        self.clock = clock
        self.record = record
        self.far: FarLeg | None = None
        self._legs: list[FarLeg] = []
        self._holding = False
        self._bridge: Bridge | None = None
        self._bridged: FarLeg | None = None  # the leg `_bridge` connects the caller to
        # muted(): True while input is sensitive, when the far end hears silence from the caller
        # (and a hold-over after it); one per call: the hold-over outlasts a bridge
        self._muting = Muting(muted)
        self._dialled = 0  # dials so far: numbers the legs' rooms
        self._source: rtc.AudioSource | None = None  # the far end's audio, to the caller

    async def dial(self, to: str, trunk_id: str, timeout: float) -> None:
        if self.keys is None:
            raise ChannelError(f"cannot dial {to}: this channel has no server keys to join a room for the dialled leg "
                               "(a leg in the caller's room would hear the caller's keys)")
        identity = f"ivrkit-dial-{abs(hash((to, self.clock.now()))) % 10**8}"
        self._dialled += 1  # never reused: a room whose deletion failed must not take a new leg
        leg = await FarLeg.open(self.keys, leg_room_name(self.room.name, self._dialled),
                                self.room.local_participant.identity, self.prompts)
        leg.hear_prompts(not self._holding)
        self._legs.append(leg)
        request = api.CreateSIPParticipantRequest(
            sip_trunk_id=trunk_id,
            sip_call_to=to,
            room_name=leg.room.name,
            participant_identity=identity,
            participant_name=to,
            wait_until_answered=True,
        )
        # The ring window is LiveKit SIP's to enforce (it cancels the INVITE); the API client
        # then waits that long plus a margin. A client-side timeout alone would leave the far
        # phone ringing — and joining the room — after the flow moved on.
        request.ringing_timeout.seconds = max(1, math.ceil(timeout))
        try:
            await self.api.sip.create_sip_participant(request)
            leg.answered(identity, self.clock)
            self.far = leg
            self.record("dial_room", self.clock.now(), {"room": leg.room.name})
            return
        except asyncio.CancelledError:
            # The call ended while the far end rang (the caller hung up): cancelling the request
            # does not reach LiveKit SIP, so the phone would ring on for the whole ring window
            # and could answer into an abandoned room. The call's shutdown awaits this.
            await self._drop(leg)
            raise
        except asyncio.TimeoutError:
            error = ChannelError(f"dialling {to} was not answered within {timeout:g} s")
        except api.SipCallError as e:
            error = ChannelError(f"dialling {to} failed: {e}")
        except api.TwirpError as e:
            error = ChannelError(f"dialling {to} failed: {e.code}: {e.message}")
        except Exception as e:
            error = ChannelError(f"dialling {to} failed ({type(e).__name__}: {e})")
        await self._drop(leg)
        raise error

    def audio(self) -> AsyncGenerator[Pcm, None]:
        if self.far is None:
            raise ChannelError("cannot hear the dialled party: no dial was answered in this call")
        return self.far.hear()

    def hold(self, on: bool) -> None:
        """A hold prompt starts (on) or another prompt does: the legs do not hear hold audio."""
        self._holding = on
        for leg in self._legs:
            leg.hear_prompts(not on)

    async def bridge(self) -> None:
        """Audio both ways between the caller and the last answered leg: a track of ours in
        each room carries the other side. Keys stay in their rooms. Bridging the leg already
        bridged does nothing; any other bridge (to an earlier leg, or one that ended when its
        far end hung up) is closed first, so the caller hears only this leg."""
        far = self.far
        if far is None:
            raise ChannelError("cannot bridge: no dial was answered in this call")
        if self._bridge is not None and self._bridged is far and not self._bridge.ended:
            return
        await self._unbridge()
        if self._source is None:
            source = rtc.AudioSource(BRIDGE_RATE, 1, queue_size_ms=200)
            track = rtc.LocalAudioTrack.create_audio_track("ivrkit-bridge", source)
            try:
                await asyncio.wait_for(self.room.local_participant.publish_track(
                    track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)), PUBLISH_LIMIT)
            except BaseException as e:  # no track carries the source: the next bridge publishes anew
                with contextlib.suppress(Exception):
                    await source.aclose()
                if not isinstance(e, Exception):
                    raise
                raise ChannelError(f"cannot bridge: publishing the far end's audio to the caller failed ({e!r})") from e
            self._source = source
        caller = caller_frames(lambda sink: self.caller.listen(sink, sample_rate=BRIDGE_RATE), self._muting)
        self._bridge = Bridge(caller, to_source(far.source), far.hear(BRIDGE_RATE), to_source(self._source))
        self._bridged = far
        self.record("bridged", self.clock.now(), {"room": far.room.name})

    async def _unbridge(self) -> None:
        """Close the bridge, if any, and record what it carried (muted: caller frames the far
        end got as silence during sensitive input)."""
        bridge, self._bridge = self._bridge, None
        leg, self._bridged = self._bridged, None
        if bridge is None:
            return
        await bridge.close()
        self.record("unbridged", self.clock.now(), {"room": leg.room.name if leg is not None else None,
                                                    "frames_to_far": bridge.frames[0],
                                                    "frames_to_caller": bridge.frames[1],
                                                    "muted_frames": bridge.muted_frames})

    async def hang_up_far(self) -> None:
        """Hang up the last answered leg (a navigate's `hang_up: true`)."""
        if self.far is None:
            raise ChannelError("cannot hang up the dialled party: no dial was answered in this call")
        await self._unbridge()
        name = self.far.room.name
        await self._drop(self.far)
        self.record("leg_hung_up", self.clock.now(), {"room": name})

    async def _drop(self, leg: FarLeg) -> None:
        """Hang up a leg: its room is deleted (LiveKit SIP sends BYE, or CANCEL while it rings).
        A dial that failed on our side may still be ringing or just answered: this makes sure
        that leg does not go on without the call."""
        if self.far is leg:
            self.far = None
        if leg in self._legs:
            self._legs.remove(leg)
        await leg.close(self.api)

    async def aclose(self) -> None:
        """Hang up every leg (the call is over). Idempotent."""
        await self._unbridge()
        await asyncio.gather(*(self._drop(leg) for leg in list(self._legs)))  # at once: the call's end is bounded
        if self._source is not None:
            source, self._source = self._source, None
            await source.aclose()
