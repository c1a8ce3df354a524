"""Hearing one participant of a room — the caller, or a dialled leg — with ONE subscription to
its audio track shared by every listener, held only while someone listens.

Why one subscription, many listeners: the worker joins every room with
`AutoSubscribe.SUBSCRIBE_NONE` (`job.py`), so a key-only call never receives, decodes or
resamples audio. Several consumers may want the same participant at once: the caller's audio
feeds in-band DTMF (`ivrkit.livekit.inband`), speech input (`ivrkit.livekit.hearing`) and the
bridge to a dialled leg; a dialled leg's audio feeds answering-machine detection, a `navigate:`
step and the bridge back to the caller. A subscription per consumer would let one consumer's
end unsubscribe the track under the others (a navigate step finishing silenced the bridge), so
each participant has one `ParticipantAudio`: the first listener subscribes, the last one gone
unsubscribes, and each listener gets its own decoded stream at its own rate.

Use, from the call's event loop::

    audio = ParticipantAudio(room, caller.identity, clock=clock)
    stop = audio.listen(lambda pcm, at: detector.feed(pcm, at), sample_rate=8000)
    ...            # the sink gets every 20 ms frame: mono 16-bit `Pcm`, and the clock time it arrived
    stop()         # this listener is done; unsubscribes when it was the last one
    await audio.aclose()

or, as an async iteration that ends when the participant leaves (`Channel.dialled_audio`)::

    async for pcm in frames(audio, sample_rate=8000): ...

What a sink gets and when: `sink(pcm, at)` is called on the event loop for each frame (20 ms
unless the listener asks for other ones), in order, with `pcm` at the `sample_rate` the
listener asked for (LiveKit resamples natively, per listener) and `at` = `clock.now()` when the
frame was handed over, i.e. the end of that frame. A sink must return quickly (it runs between
frames of every call on this loop) and must not raise; an exception is logged once and the
listener is dropped. Sinks never see audio from before they listened, and nothing from anyone
but that participant (the agent's own tracks are not in it).

If the participant has not published audio yet (a web client that joins muted), the
subscription starts when they do. If they unpublish and publish again — a phone's re-INVITE, a
web client switching microphone, in either order — the dying publication (unsubscribed by the
server, or unpublished) is never chosen again and listeners carry on with the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field

from livekit import rtc

from ivrkit.clock import Clock
from ivrkit.errors import ChannelError
from ivrkit.livekit.ffi_events import narrow_stream
from ivrkit.voice.audio import Pcm

__all__ = ["FRAME_MS", "TRACK_WAIT", "AudioSink", "ParticipantAudio", "choose", "frames"]

logger = logging.getLogger("ivrkit.livekit")

#: A consumer of a participant's audio: one frame (`Pcm`) and the clock time it arrived.
AudioSink = Callable[[Pcm, float], None]
#: Frame length asked of LiveKit's decoder: 20 ms is the RTP packet size of a phone call, so a
#: frame is one packet's audio and a sink is called 50 times a second.
FRAME_MS = 20
#: How long `frames` waits for the participant's audio track to be published and subscribed to.
#: LiveKit SIP publishes a dialled leg's track as the call is answered; seen within 0.5 s.
TRACK_WAIT = 5.0


@dataclass(eq=False)
class _Listener:
    sink: AudioSink
    sample_rate: int
    frame_ms: int | None
    on_gone: Callable[[], None] | None
    stream: rtc.AudioStream | None = None
    task: asyncio.Task[None] | None = None
    frames: int = field(default=0)


def choose(publications: Iterable[rtc.RemoteTrackPublication], skip: set[str]) -> rtc.RemoteTrackPublication | None:
    """The audio publication to hear among a participant's: a microphone if there is one, else
    any audio; the newest (published last) of those; never one whose sid is in `skip` (dying:
    unsubscribed by the server, its unpublish on the way)."""
    audio = [p for p in publications if p.kind == rtc.TrackKind.KIND_AUDIO and p.sid not in skip]
    mics = [p for p in audio if p.source == rtc.TrackSource.SOURCE_MICROPHONE]
    chosen = mics or audio
    return chosen[-1] if chosen else None


class ParticipantAudio:
    """One participant's audio for whoever asks, subscribed only while someone does.

    Owned by one call and used on its event loop. `who` names the participant in log lines and
    in the records: `records` (optional) is told of subscription changes as `(kind, at, fields)`
    — `<who>_audio_subscribed` / `<who>_audio_unsubscribed` — the same shape as the channel's
    trace records, so the trace shows when a call listened.
    """

    def __init__(
        self,
        room: rtc.Room,
        identity: str,
        *,
        clock: Clock,
        who: str = "caller",
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
        records: Callable[[str, float, dict[str, object]], None] | None = None,
    ) -> None:
        self.room = room
        self.identity = identity
        self.clock = clock
        self.who = who
        self.log = log
        self.records = records
        self._listeners: list[_Listener] = []
        self._publication: rtc.RemoteTrackPublication | None = None
        self._track: rtc.RemoteAudioTrack | None = None
        self._delivered = asyncio.Event()  # set while `_track` is
        self._dying: set[str] = set()  # sids unsubscribed by the server, not yet unpublished
        self._released: set[str] = set()  # sids we unsubscribed from, their event to come
        self._watching = False
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()  # streams being released

    @property
    def present(self) -> bool:
        """True while the participant is in the room."""
        return self.identity in self.room.remote_participants

    @property
    def listening(self) -> bool:
        """True while at least one listener is attached (and so the track is wanted)."""
        return bool(self._listeners)

    @property
    def subscribed(self) -> bool:
        """True while we hold (or have asked for) a subscription to the participant's audio."""
        return self._publication is not None

    def listen(self, sink: AudioSink, *, sample_rate: int = 16000, frame_ms: int | None = FRAME_MS,
               on_gone: Callable[[], None] | None = None) -> Callable[[], None]:
        """Start sending the participant's audio to `sink` at `sample_rate`, in frames of
        `frame_ms` (None: as LiveKit delivers them, 10 ms); returns the stop function.

        Longer frames cost less (each frame is one trip through LiveKit's event plumbing in
        Python) and arrive later. `on_gone`, if given, is called once when the participant
        leaves or we leave the room, and the listener is stopped; without it a listener waits
        for the participant's next track. The stop function is idempotent. The first listener
        subscribes to the participant's track, stopping the last unsubscribes it."""
        if self._closed:
            raise RuntimeError("ParticipantAudio is closed")
        listener = _Listener(sink, sample_rate, frame_ms, on_gone)
        self._listeners.append(listener)
        if not self._watching:
            self._watch(True)
        if self._track is not None:
            self._start(listener, self._track)
        elif self._publication is None:
            self._subscribe()
        return lambda: self._stop(listener)

    async def delivered(self, limit: float) -> bool:
        """Wait up to `limit` seconds for the track to be subscribed to; whether it was."""
        try:
            await asyncio.wait_for(self._delivered.wait(), limit)
        except asyncio.TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        """Stop every listener and unsubscribe; to a listener with `on_gone` the participant is
        gone (a leg hung up while navigate listens: its iteration ends). Idempotent."""
        self._closed = True
        for listener in list(self._listeners):
            self._stop(listener)
            self._tell_gone(listener)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # --- subscription --------------------------------------------------------------------

    def _watch(self, on: bool) -> None:
        method = self.room.on if on else self.room.off
        method("track_published", self._on_published)
        method("track_subscribed", self._on_subscribed)
        method("track_unsubscribed", self._on_unsubscribed)
        method("track_unpublished", self._on_unpublished)
        method("participant_disconnected", self._on_left)
        method("disconnected", self._on_disconnected)
        self._watching = on

    def _subscribe(self) -> None:
        participant = self.room.remote_participants.get(self.identity)
        publication = None if participant is None else choose(participant.track_publications.values(), self._dying)
        if publication is None:
            self.log.debug("%s '%s' has no audio track yet: subscribing when they publish one", self.who, self.identity)
            return
        self._publication = publication
        if publication.track is not None:  # already subscribed (by someone else's request)
            self._on_subscribed(publication.track, publication, None)
        else:
            publication.set_subscribed(True)

    def _unsubscribe(self) -> None:
        publication, delivered = self._publication, self._track is not None
        self._lose_track()
        if self._watching:
            self._watch(False)
        self._dying.clear()
        if publication is None:
            return
        self._released.add(publication.sid)  # its `track_unsubscribed` is our own doing
        try:
            publication.set_subscribed(False)
        except Exception as e:  # the room may be gone already: nothing left to release
            self.log.debug("unsubscribing the %s's audio failed: %r", self.who, e)
        if not delivered:  # asked for, never delivered: given back all the same
            self._record(f"{self.who}_audio_unsubscribed", {})

    def _lose_track(self) -> None:
        if self._track is not None:
            self._record(f"{self.who}_audio_unsubscribed", {})
        self._publication = self._track = None
        self._delivered.clear()

    def _on_published(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if (participant.identity == self.identity and publication.kind == rtc.TrackKind.KIND_AUDIO
                and self._listeners and self._publication is None):
            self._subscribe()

    def _on_subscribed(self, track: rtc.Track, publication: rtc.RemoteTrackPublication,
                       participant: rtc.RemoteParticipant | None) -> None:
        ours = self._publication
        if ours is None or publication.sid != ours.sid or not self._listeners:
            return
        if participant is not None and participant.identity != self.identity:
            return
        if not isinstance(track, rtc.RemoteAudioTrack):
            return
        self._track = track
        self._delivered.set()
        self._record(f"{self.who}_audio_subscribed", {"track": publication.sid})
        for listener in self._listeners:
            if listener.task is None:
                self._start(listener, track)

    def _on_unsubscribed(self, track: rtc.Track | None, publication: rtc.RemoteTrackPublication,
                         participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self.identity:
            return
        if publication.sid in self._released:  # the echo of our own unsubscribing: not dying
            self._released.discard(publication.sid)
        else:
            # The server took it away: it is being unpublished (`track_unpublished` follows), so
            # never choose it again, whatever the order the new track and this news come in.
            self._dying.add(publication.sid)
        if track is not None and track is self._track:
            self._move_on()

    def _on_unpublished(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self.identity:
            return
        self._dying.discard(publication.sid)  # gone from the participant's publications now
        self._released.discard(publication.sid)
        if self._publication is not None and publication.sid == self._publication.sid:
            self._move_on()  # unpublished before its track was delivered (no `track_unsubscribed`)

    def _move_on(self) -> None:
        """Our publication is dying: the pumps end with their streams; keep the listeners and
        take the participant's next audio track, one already published or the next one."""
        self._lose_track()
        for listener in self._listeners:
            self._end_stream(listener)
        if self._listeners:
            self._subscribe()

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self.identity:
            self._gone()

    def _on_disconnected(self, reason: object) -> None:
        self._gone()

    def _gone(self) -> None:
        """The participant left (or we did): listeners that asked to know are told and stopped;
        the others wait for the participant's next track."""
        self._lose_track()
        self._dying.clear()
        for listener in list(self._listeners):
            self._end_stream(listener)
            if listener.on_gone is not None:
                self._stop(listener)
                self._tell_gone(listener)

    def _tell_gone(self, listener: _Listener) -> None:
        if listener.on_gone is not None:
            try:
                listener.on_gone()
            except Exception:
                self.log.exception("a consumer of the %s's audio failed when it left", self.who)

    # --- per listener --------------------------------------------------------------------

    def _start(self, listener: _Listener, track: rtc.RemoteAudioTrack) -> None:
        listener.stream = rtc.AudioStream(track, sample_rate=listener.sample_rate, num_channels=1,
                                          frame_size_ms=listener.frame_ms)
        narrow_stream(listener.stream)  # its loop wakes for its own frames only (ivrkit.livekit.ffi_events)
        listener.task = asyncio.get_running_loop().create_task(self._pump(listener, listener.stream),
                                                              name=f"ivrkit-{self.who}-audio")

    async def _pump(self, listener: _Listener, stream: rtc.AudioStream) -> None:
        async for event in stream:
            frame = event.frame
            pcm = Pcm(bytes(frame.data), frame.sample_rate)
            listener.frames += 1
            try:
                listener.sink(pcm, self.clock.now())
            except Exception:
                self.log.exception("a consumer of the %s's audio failed; it gets no more audio", self.who)
                self._stop(listener)
                return

    def _end_stream(self, listener: _Listener) -> None:
        task, stream = listener.task, listener.stream
        listener.task = listener.stream = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if stream is not None:
            closing = asyncio.get_running_loop().create_task(_close(stream, self.log))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    def _stop(self, listener: _Listener) -> None:
        if listener not in self._listeners:
            return
        self._listeners.remove(listener)
        self._end_stream(listener)
        if not self._listeners:
            self._unsubscribe()

    def _record(self, kind: str, fields: dict[str, object]) -> None:
        if self.records is not None:
            try:
                self.records(kind, self.clock.now(), fields)
            except Exception:  # a trace problem must never break the call
                self.log.exception("recording %s failed", kind)


async def frames(audio: ParticipantAudio, *, sample_rate: int = 8000, frame_ms: int | None = None,
                 track_wait: float = TRACK_WAIT) -> AsyncGenerator[Pcm, None]:
    """What the participant says, from now until it leaves (or we leave its room) or the
    consumer closes the generator — as one more listener of `audio`, so closing it leaves the
    other listeners' audio alone. Frames are as LiveKit delivers them (10 ms) unless `frame_ms`
    says otherwise. Raises `ChannelError` when the participant is not in the room, or its audio
    track is not delivered within `track_wait` seconds."""
    if not audio.present:
        raise ChannelError(f"cannot hear '{audio.identity}': it is not in room '{audio.room.name}' "
                           "(it left, or never joined)")
    queue: asyncio.Queue[Pcm | None] = asyncio.Queue()  # None: the participant is gone
    gone = asyncio.Event()

    def left() -> None:
        gone.set()
        queue.put_nowait(None)

    stop = audio.listen(lambda pcm, at: queue.put_nowait(pcm), sample_rate=sample_rate, frame_ms=frame_ms,
                        on_gone=left)
    waits = [asyncio.ensure_future(audio.delivered(track_wait)), asyncio.ensure_future(gone.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)  # delivered, timed out, or left
        if not gone.is_set() and not waits[0].result():
            what = "published no audio track" if not audio.subscribed else "its audio track was not delivered"
            raise ChannelError(f"cannot hear '{audio.identity}': it {what} within {track_wait:g} s")
        while (pcm := await queue.get()) is not None:
            yield pcm
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        stop()


async def _close(stream: rtc.AudioStream, log: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
    try:
        await stream.aclose()
    except Exception as e:  # the track or room may be gone: the stream is released either way
        log.debug("closing an audio stream failed: %r", e)
