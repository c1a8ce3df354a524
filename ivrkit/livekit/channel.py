"""`LiveKitChannel`: the Channel port on a LiveKit room — the adapter every production call uses.

In: `sip_dtmf_received` room events (LiveKit SIP turns RFC 4733 telephone-events into them; web
and SDK clients send the same event with `publish_dtmf`), DTMF tones in the caller's audio when
the flow says `dtmf: inband` or `both` (`ivrkit.livekit.inband`; with `inband` the events are
ignored, with `both` a press sent both ways counts once, `ivrkit.dtmf_merge`) and the caller
leaving. Out: prompt audio on the agent's own track (`ivrkit.livekit.player`), DTMF, SIP
transfer, outbound dial (and hearing the dialled leg for answering-machine detection), hang-up.
LiveKit and SIP errors become `ChannelError` here, at the edge.

A dial puts the dialled leg in a room of its own (`ivrkit.livekit.far_leg`): LiveKit SIP relays
every DTMF data packet in a room to every SIP leg in it, so the caller's keys would reach the far
end and the keys sent to the far end the caller. `send_dtmf` goes to the dialled leg's room once
a dial was answered, else to the caller's; `bridge` copies audio between the rooms
(`ivrkit.livekit.bridge`), never keys.

Whose keys count — only the caller's:

* an event from any other participant in the room (a second web client, a dialled-out party,
  a supervisor) is logged as a warning and dropped — otherwise anyone in the room could type
  into a PIN;
* an event with `participant=None` — LiveKit's SDK gives None when the sender is not a known
  remote participant, i.e. a server SDK published it through the API — is dropped too, with a
  warning: it cannot be shown to come from the caller. (LiveKit SIP's own DTMF always carries
  the SIP participant's identity, so no phone key is lost by this rule);
* the (code, digit) pair must agree with the RFC 4733 table (`ivrkit.livekit.dtmf`); lowercase
  a-d are accepted and normalised; anything else is logged and dropped, never guessed.

Logs never carry the caller's digits: accepted keys are not logged at all (the call trace masks
sensitive ones), and a rejected event names only its own code/digit pair — and not even that
while the call takes sensitive input (`Channel.sensitive`), nor a key sent from a sensitive value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from livekit import api, rtc

from ivrkit.channel import CallerInfo, Channel, Emit, Hangup, Key, Listen, PromptEnded, Speech, SpeechStarted
from ivrkit.clock import Clock
from ivrkit.dtmf_merge import KeyMerge, KeySource
from ivrkit.errors import ChannelError
from ivrkit.flow.model import DtmfMode
from ivrkit.livekit.attributes import PROMPT_ATTRIBUTE, AttributePublisher, listening_attributes, state_attributes
from ivrkit.livekit.dtmf import DtmfRejected, check_incoming, outgoing
from ivrkit.livekit.far_leg import RoomKeys
from ivrkit.livekit.hearing import Hearing
from ivrkit.livekit.inband import InbandKeys
from ivrkit.livekit.legs import DialledLegs
from ivrkit.livekit.participant_audio import ParticipantAudio
from ivrkit.livekit.player import QUEUE_MS, BargeIn, PromptPlayer
from ivrkit.livekit.plugin_stt import PluginRecognizer
from ivrkit.livekit.prompt_audio import OUTPUT_RATE
from ivrkit.livekit.sphinx import FAR_END_DECODER, SphinxRecognizer
from ivrkit.prompts import FilledPrompt
from ivrkit.voice.audio import Pcm
from ivrkit.voice.listen import Recognizer

__all__ = ["ChannelLog", "LiveKitChannel", "caller_info"]

logger = logging.getLogger("ivrkit.livekit")

SIP_CALLER_NUMBER = "sip.phoneNumber"
SIP_CALLED_NUMBER = "sip.trunkPhoneNumber"
SIP_CALL_ID = "sip.callID"

#: LiveKit SIP plays each key published to a phone as a tone plus a gap (measured with a SIPp
#: phone on LiveKit SIP v1.8.0: 260 ms + 281 ms): a key is on the line this long after
#: `publish_dtmf` returned, and a key published sooner is queued behind it.
SIP_DTMF_SECONDS = 0.55
#: Audio that left our track is still on its way to a phone for about this long (jitter buffer,
#: SIP media path; measured 0.05-0.15 s lost when hanging up at once): a hang-up right after a
#: prompt finished waits for it, so the caller hears the last word of "Goodbye".
AUDIO_TAIL_SECONDS = 0.3
#: Unpublishing the prompt track at the end waits at most this long for the server's answer.
UNPUBLISH_LIMIT = 1.0
#: The first prompt waits at most this long for the caller to subscribe to the prompt track
#: (callers were measured taking 0.5-1.8 s; audio sent before that is lost to them, so they
#: missed the start of the greeting). A caller that never subscribes gets the call anyway.
SUBSCRIBE_LIMIT = 5.0
#: Publishing the prompt track waits at most this long. Under load livekit's native client was
#: seen never answering (bench/soak.py: jobs stuck for good after their trace's first record,
#: their callers in silence); a call that cannot publish its prompts cannot go on.
PUBLISH_LIMIT = 20.0
#: Why a malformed key was dropped, as logged and traced while the call takes sensitive input.
SENSITIVE_REJECT = "not a valid RFC 4733 key (code and digit withheld: sensitive input)"


def caller_info(participant: rtc.RemoteParticipant) -> CallerInfo:
    """What the call's variables learn about the caller, from the SIP participant attributes."""
    attrs = dict(participant.attributes)
    return CallerInfo(
        number=attrs.get(SIP_CALLER_NUMBER) or None,
        called_number=attrs.get(SIP_CALLED_NUMBER) or None,
        call_id=attrs.get(SIP_CALL_ID) or None,
        identity=participant.identity,
        attributes=attrs,
    )


@dataclass(slots=True)
class ChannelLog:
    """What the adapter saw that the call runtime never does (for the call trace).

    `listener(kind, at, fields)` is told of each record as it happens (the worker writes it to
    the call's trace file at once); kinds: `dtmf_ignored`, `dtmf_merged` (the second half of a press
    sent both as an event and as tones), `barge_in`, `dtmf_published` (with `to`: caller or dialled),
    `caller_audio_subscribed` / `caller_audio_unsubscribed`, `dial_room` (the answered leg's room),
    `bridged`, `unbridged` (with the frames it carried each way and `muted_frames`: caller frames
    the far end got as silence during sensitive input), `leg_hung_up`, `sensitive_input_exposed`
    (another SIP leg in the caller's room).
    """

    ignored_dtmf: list[dict[str, object]] = field(default_factory=list)
    barge_ins: list[BargeIn] = field(default_factory=list)
    dtmf_sent: list[dict[str, object]] = field(default_factory=list)
    listener: Callable[[str, float, dict[str, object]], None] | None = None

    def add(self, kind: str, at: float, fields: dict[str, object]) -> None:
        if self.listener is not None:
            try:
                self.listener(kind, at, fields)
            except Exception:  # a trace problem must never break the call
                logger.exception("call trace listener failed")


class LiveKitChannel(Channel):
    """One call in one room. Create it, `await start()`, hand it to `Call`, `await aclose()`.

    Example (what the worker does per job)::

        channel = LiveKitChannel(ctx.room, caller, api=ctx.api, clock=LoopClock(), synthesize=audio.synthesize)
        await channel.start()
        result = await Call(machine, channel).run()
        await channel.aclose()
    """

    def __init__(
        self,
        room: rtc.Room,
        caller: rtc.RemoteParticipant,
        *,
        api: api.LiveKitAPI,
        clock: Clock,
        synthesize: Callable[[FilledPrompt], Awaitable[Pcm]],
        sip_trunk: str | None = None,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
        sensitive_states: frozenset[str] = frozenset(),
        dtmf: DtmfMode = "rfc4733",
        recognizer: Recognizer | None = None,
        room_keys: RoomKeys | None = None,
    ) -> None:
        super().__init__(clock=clock, caller=caller_info(caller))
        self.room = room
        self.caller_identity = caller.identity
        self.caller_is_sip = caller.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP
        self.api = api
        self.sip_trunk = sip_trunk
        self.log = log
        self.record = ChannelLog()
        self.source = rtc.AudioSource(OUTPUT_RATE, 1, queue_size_ms=QUEUE_MS)
        self.player = PromptPlayer(
            self.source, synthesize, self._prompt_ended, now=clock.now, on_barge_in=self._barge_in
        )
        self.ended: str | None = None
        self._track: rtc.LocalAudioTrack | None = None
        self._heard: asyncio.Future[None] | None = None  # the caller subscribed to the track
        self._early: list[Key] = []  # keys pressed before a call connected
        self._hung_up_by_us = False
        self._closed = False
        self._dtmf_on_line_until = 0.0
        self._audio_on_line_until = 0.0
        self._far_recognizer: SphinxRecognizer | None = None
        self.attributes = AttributePublisher(room.local_participant.set_attributes, log)
        self.sensitive_states = sensitive_states  # published as ivrkit.sensitive with the state
        self.dtmf = dtmf
        self.caller_audio = ParticipantAudio(room, caller.identity, clock=clock, log=log, records=self.record.add)
        self.inband = InbandKeys(self.caller_audio, self._on_tone) if dtmf != "rfc4733" else None
        self._merge = KeyMerge() if dtmf == "both" else None
        # speech input: only states with input: [.., speech] ask (`listen`); None: keys only
        self.hearing = Hearing(self.caller_audio, recognizer, self._on_speech, clock) if recognizer is not None else None
        # dialled legs, each in a room of its own; room_keys None: this channel cannot dial
        self.legs = DialledLegs(room, api, room_keys, self.source, self.caller_audio, muted=lambda: self.sensitive,
                                clock=clock, record=self.record.add)

    # --- wiring -----------------------------------------------------------------------------

    async def start(self, subscribe_limit: float = SUBSCRIBE_LIMIT, publish_limit: float = PUBLISH_LIMIT) -> None:
        """Publish the prompt track (a SIP call is answered only once the agent publishes audio),
        start listening for keys and for the caller leaving, and return once the caller hears
        the track (it subscribed) — or after `subscribe_limit` seconds, or when it left."""
        heard = self._heard = asyncio.get_running_loop().create_future()  # also set if the caller leaves

        def on_subscribed(track: rtc.LocalTrack) -> None:  # the only track we publish
            if not heard.done():
                heard.set_result(None)

        self.room.on("local_track_subscribed", on_subscribed)
        self._track = rtc.LocalAudioTrack.create_audio_track("ivrkit-prompts", self.source)
        try:
            try:
                await asyncio.wait_for(self.room.local_participant.publish_track(
                    self._track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
                ), publish_limit)
            except asyncio.TimeoutError:
                raise ChannelError(f"publishing the prompt track was not answered within {publish_limit:g} s "
                                   "(livekit's native client)") from None
            self.room.on("sip_dtmf_received", self._on_dtmf)
            if self.inband is not None:
                self.inband.start()
            self.room.on("participant_disconnected", self._on_participant_disconnected)
            self.room.on("disconnected", self._on_room_disconnected)
            if self.caller_identity not in self.room.remote_participants:
                # Left between being chosen as caller and now: the call is over before it began.
                asyncio.get_running_loop().call_soon(self._caller_gone, "caller left before the call started")
                return
            await self._until_heard(heard, subscribe_limit)
        finally:
            self.room.off("local_track_subscribed", on_subscribed)

    async def _until_heard(self, heard: asyncio.Future[None], limit: float) -> None:
        started = self.clock.now()
        try:
            await asyncio.wait_for(asyncio.shield(heard), limit)
        except asyncio.TimeoutError:
            self.log.warning("caller '%s' has not subscribed to the prompt track after %g s; the call "
                             "starts anyway (it may not hear the first prompt)", self.caller_identity, limit)
            return
        if self.ended is None:
            self.record.add("caller_subscribed", self.clock.now(),
                            {"after_ms": round((self.clock.now() - started) * 1000)})

    def connect(self, emit: Emit) -> None:
        super().connect(emit)
        early, self._early = self._early, []
        for key in early:  # keys pressed before the call started, in order
            emit(key)
        if self.ended is not None and not self._hung_up_by_us:  # the caller left while we waited for it
            reason = self.ended
            asyncio.get_running_loop().call_soon(emit, Hangup(self.clock.now(), reason))

    # --- sensitive input --------------------------------------------------------------------

    @property
    def sensitive(self) -> bool:
        return self._sensitive

    @sensitive.setter
    def sensitive(self, value: bool) -> None:
        """Set by the call; as sensitive input starts, any SIP leg in the caller's room other
        than the caller (none of ours: a dial has a room of its own) would hear its keys —
        LiveKit SIP relays them. The worker cannot stop that: it says so, loudly."""
        was, self._sensitive = getattr(self, "_sensitive", False), value
        if value and not was and getattr(self, "room", None) is not None:
            others = [p.identity for p in self.room.remote_participants.values()
                      if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP and p.identity != self.caller_identity]
            if others:
                self.log.error("sensitive input while SIP participant(s) %s share the caller's room: LiveKit SIP "
                               "plays the caller's keys to them", ", ".join(others))
                self.record.add("sensitive_input_exposed", self.clock.now(), {"sip_legs": others})

    # --- speech -----------------------------------------------------------------------------

    def listen(self, request: Listen | None) -> None:
        if self.hearing is None:
            if request is None:
                return
            raise ChannelError("this worker has no speech recogniser: the caller can only press keys")
        if self.ended is None or request is None:
            self.hearing.listen(request)
            self.attributes.update(listening_attributes(request))  # the dial pad says when to speak

    def _on_speech(self, event: SpeechStarted | Speech) -> None:
        """What the recogniser heard. Never logged with its text: it may be a PIN said aloud
        (the call masks it in its trace; the adapter does not know which state is sensitive)."""
        if self.ended is None and self._emit is not None:
            self.emit(event)

    def _detach(self) -> None:
        if self.inband is not None:
            self.inband.stop()
        self.room.off("sip_dtmf_received", self._on_dtmf)
        self.room.off("participant_disconnected", self._on_participant_disconnected)
        self.room.off("disconnected", self._on_room_disconnected)

    # --- events in --------------------------------------------------------------------------

    def _on_dtmf(self, ev: rtc.SipDTMF) -> None:
        sender = ev.participant
        if self.ended is not None:
            # LiveKit sends keys (data packets) and "participant left" (signalling) on separate
            # paths: a key pressed just before a hang-up can arrive after it. Nothing can act on
            # it any more, but it is accounted for, never dropped unsaid (no digit: it may be a PIN's).
            late: dict[str, object] = {"from": None if sender is None else sender.identity,
                                       "why": f"arrived after the call ended ({self.ended})"}
            self.log.info("DTMF %s: ignored", late["why"])
            self.record.ignored_dtmf.append(late)
            self.record.add("dtmf_ignored", self.clock.now(), late)
            return
        if sender is None or sender.identity != self.caller_identity:
            who = "a server-side sender (no participant)" if sender is None else f"participant '{sender.identity}'"
            self.log.warning("DTMF from %s, not the caller '%s': ignored", who, self.caller_identity)
            fields: dict[str, object] = {"from": None if sender is None else sender.identity, "why": "not the caller"}
            self.record.ignored_dtmf.append(fields)
            self.record.add("dtmf_ignored", self.clock.now(), fields)
            return
        try:
            key = check_incoming(ev.code, ev.digit)
        except DtmfRejected as e:
            # during sensitive input even a malformed key may be a digit of the PIN: a client
            # sending every key malformed must not leave the PIN in the log, one line a digit
            why = SENSITIVE_REJECT if self.sensitive else str(e)
            self.log.warning("DTMF from the caller dropped: %s", why)
            rejected: dict[str, object] = {"from": sender.identity, "why": why}
            self.record.ignored_dtmf.append(rejected)
            self.record.add("dtmf_ignored", self.clock.now(), rejected)
            return
        if self.dtmf == "inband":  # the flow hears tones only; the event may be their twin
            self.record.add("dtmf_ignored", self.clock.now(), {"from": sender.identity, "why": "dtmf: inband"})
            return
        self._key_in(key, "rfc4733")

    def _on_tone(self, key: str, at: float) -> None:
        if self.ended is None:
            self._key_in(key, "inband")

    def _key_in(self, key: str, source: KeySource) -> None:
        now = self.clock.now()
        twin = self._merge.pair(key, source, now) if self._merge is not None else None
        if twin is not None:  # the second half of a press; its first half was counted
            self.record.add("dtmf_merged", now, {"source": source, "after_ms": round(twin * 1000)})
            return
        self.player.last_key_at = now
        if self._emit is None:  # pressed while the call waits for the caller to hear it: kept
            self._early.append(Key(key, at=now))
            return
        self.emit(Key(key, at=now))

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self.caller_identity:
            self._caller_gone("caller left")

    def _on_room_disconnected(self, reason: object = None) -> None:
        self._caller_gone(f"room disconnected ({reason})" if reason is not None else "room disconnected")

    def _caller_gone(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        if self._heard is not None and not self._heard.done():
            self._heard.set_result(None)  # no one left to wait for
        self.player.close()
        if self._emit is not None and not self._hung_up_by_us:
            self.emit(Hangup(self.clock.now(), reason))

    def _prompt_ended(self, prompt: FilledPrompt, interrupted: bool) -> None:
        if not interrupted:
            self._audio_on_line_until = self.clock.now() + AUDIO_TAIL_SECONDS
        if self.ended is None and self._emit is not None:
            self.emit(PromptEnded(prompt.id, interrupted=interrupted, at=self.clock.now()))

    def _barge_in(self, cut: BargeIn) -> None:
        self.record.barge_ins.append(cut)
        self.record.add(
            "barge_in", self.clock.now(),
            {"prompt": cut.prompt_id, "state": cut.state, "cut_ms": cut.cut_ms, "played_ms": cut.played_ms},
        )
        if cut.cut_ms is not None:
            self.log.debug("prompt %d cut %.3f ms after the key (%.0f ms played)", cut.prompt_id, cut.cut_ms, cut.played_ms)

    # --- the port ---------------------------------------------------------------------------

    def play(self, prompt: FilledPrompt) -> None:
        if self.ended is not None:
            return
        self.log.info("prompt %d [%s]: %s", prompt.id, prompt.state, prompt.log_text)
        self.legs.hold(prompt.hold)  # a dialled party hears the prompts, not the caller's hold audio
        self.player.play(prompt)
        self.attributes.update({**state_attributes(prompt.state, self.sensitive_states), PROMPT_ATTRIBUTE: prompt.log_text})

    def show(self, attributes: dict[str, str]) -> None:
        """Publish where the call is (`ivrkit.livekit.attributes.progress_hooks`), prompt or not."""
        if self.ended is None:
            self.attributes.update(attributes)

    def stop(self) -> None:
        self.player.stop()

    async def send_dtmf(self, digit: str) -> None:
        try:
            out = outgoing(digit)
        except ValueError as e:
            raise ChannelError(str(e)) from None
        if self.ended is not None:
            raise ChannelError(f"cannot send DTMF: the call is over ({self.ended})")
        await self._let_dtmf_reach_the_phone()  # one key on the line at a time: the pace is the gateway's
        far = self.legs.far  # a dialled leg: keys go into its room only, never the caller's
        room = self.room if far is None else far.room
        try:
            await room.local_participant.publish_dtmf(code=out.code, digit=out.digit)
        except Exception as e:
            raise ChannelError(f"sending DTMF failed ({type(e).__name__}: {e}); is the agent still in the room?") from e
        if any(p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP for p in room.remote_participants.values()):
            self._dtmf_on_line_until = self.clock.now() + SIP_DTMF_SECONDS
        sent: dict[str, object] = {"code": "*", "digit": "*"} if self.sensitive else {"code": out.code, "digit": out.digit}
        sent["to"] = "caller" if far is None else "dialled"
        self.record.dtmf_sent.append(sent)
        self.record.add("dtmf_published", self.clock.now(), sent)

    async def _let_dtmf_reach_the_phone(self) -> None:
        """Wait until the key last sent to a SIP phone has been played out by LiveKit SIP.

        Sending the next key, hanging up or transferring sooner cuts keys: with a SIPp phone,
        of "42#" followed by a hang-up only "4" arrived. Waiting before each key (rather than
        only at hang-up) keeps at most one key queued, so the wait at hang-up stays short
        however long the string was."""
        wait = self._dtmf_on_line_until - self.clock.now()
        if wait > 0:
            await self.clock.sleep(min(wait, SIP_DTMF_SECONDS))

    async def transfer(self, to: str, *, play_dialtone: bool = False) -> None:
        await self._let_dtmf_reach_the_phone()
        if not self.caller_is_sip:
            raise ChannelError(
                f"cannot transfer to {to}: the caller '{self.caller_identity}' is not a SIP call "
                "(a web or test participant has no phone line to refer)"
            )
        try:
            await self.api.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=self.room.name,
                    participant_identity=self.caller_identity,
                    transfer_to=to,
                    play_dialtone=play_dialtone,
                )
            )
        except api.SipCallError as e:
            raise ChannelError(f"transfer to {to} failed: {e}; check the SIP trunk allows REFER and the target") from e
        except api.TwirpError as e:
            raise ChannelError(f"transfer to {to} failed: {e.code}: {e.message}") from e
        except Exception as e:
            raise ChannelError(f"transfer to {to} failed ({type(e).__name__}: {e})") from e

    async def dial(self, to: str, *, trunk: str | None = None, timeout: float = 30.0) -> None:
        trunk_id = trunk or self.sip_trunk
        if not trunk_id:
            raise ChannelError(
                f"cannot dial {to}: no outbound SIP trunk; set `trunk:` on the dial state or "
                "IVRKIT_SIP_TRUNK to the id of an outbound trunk (lk sip outbound list)"
            )
        if self.ended is not None:
            raise ChannelError(f"cannot dial {to}: the call is over ({self.ended})")
        await self.legs.dial(to, trunk_id, timeout)

    def dialled_audio(self) -> AsyncGenerator[Pcm, None]:
        """The last answered dial leg's audio, subscribed to only while something listens
        (`ivrkit.livekit.participant_audio`, in the leg's room; shared with the bridge)."""
        return self.legs.audio()

    def dialled_recognizer(self) -> Recognizer:
        """What hears the dialled leg's words: the call's STT plugin as it is, or an offline
        recogniser of its own (a far end's prompt is phrases among other words, which wants
        other decoder settings than a caller's answer: `ivrkit.livekit.sphinx.FAR_END_DECODER`)."""
        if self.hearing is None:
            raise ChannelError("this worker has no speech recogniser: a navigate step cannot hear the far end's words")
        if not isinstance(self.hearing.recognizer, SphinxRecognizer):
            return self.hearing.recognizer  # a cloud STT hears free text: any prompt as it is
        if self._far_recognizer is None:
            self._far_recognizer = SphinxRecognizer(decoder_options=FAR_END_DECODER)
        return self._far_recognizer

    async def bridge(self) -> None:
        await self.legs.bridge()

    async def hang_up_dialled(self) -> None:
        await self._let_dtmf_reach_the_phone()  # the last key sent to it is played out first
        await self.legs.hang_up_far()

    async def hangup(self) -> None:
        """End the call for everyone: the room is deleted, which hangs up a SIP caller."""
        if self._hung_up_by_us:
            return
        self._hung_up_by_us = True
        await self._let_dtmf_reach_the_phone()
        tail = self._audio_on_line_until - self.clock.now()
        if tail > 0:
            await self.clock.sleep(tail)
        self.player.close()
        await self.attributes.aclose()
        if self.ended is None:
            self.ended = "the flow hung up"
        # Leave the room before deleting it: deleting it under our own connection made the
        # SDK log three ERROR lines ("publisher data channel ... closed unexpectedly") on every
        # flow hang-up — noise an operator would chase.
        self._detach()
        await self.legs.aclose()
        try:
            await asyncio.wait_for(self.room.disconnect(), UNPUBLISH_LIMIT)
        except Exception as e:  # still delete the room: that is what hangs up the caller
            self.log.debug("leaving room '%s' before deleting it failed: %r", self.room.name, e)
        try:
            await self.api.room.delete_room(api.DeleteRoomRequest(room=self.room.name))
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:
                raise ChannelError(f"hanging up failed: cannot delete room '{self.room.name}': {e.message}") from e
        except Exception as e:
            raise ChannelError(f"hanging up failed: cannot delete room '{self.room.name}' ({type(e).__name__}: {e})") from e

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.ended is None:
            self.ended = "closed"
        self.player.close()
        await self.attributes.aclose()
        self._detach()
        # First, within the call's bounded end: the caller hung up (or was transferred), and each
        # dialled leg's room would live on, its far party connected to nobody. A flow hang-up
        # dropped them already.
        await self.legs.aclose()
        if self.hearing is not None:
            self.hearing.close()
            if isinstance(self.hearing.recognizer, PluginRecognizer):
                await self.hearing.recognizer.aclose()  # its streams' closes: none outlives the call
        await self.caller_audio.aclose()
        if self._track is not None:
            # After our own hang-up the room is deleted: an unpublish request may then never be
            # answered (seen in 1 of 4 flow hang-ups, stalling the job's end by 5 s), so skip it;
            # otherwise bound it — the job disconnects from the room right after anyway.
            if not self._hung_up_by_us and self.room.isconnected():
                try:
                    await asyncio.wait_for(
                        self.room.local_participant.unpublish_track(self._track.sid), UNPUBLISH_LIMIT
                    )
                except Exception:  # the room may be gone already; closing must not fail the job
                    pass
            self._track = None
        await self.source.aclose()
