"""Hearing the caller: their audio track, subscribed only while something listens to it.

Why on demand: the worker joins every room with `AutoSubscribe.SUBSCRIBE_NONE` (`job.py`), so
a key-only call never receives, decodes or resamples the caller's audio — today's cost per call.
In-band DTMF (`dtmf: inband | both`, `ivrkit.livekit.inband`) and speech input both need the
audio; each asks for it with `listen()` and gives it back by calling what `listen()` returned.
The first listener subscribes to the caller's track; the last one gone unsubscribes it, so the
call pays for decoding only while a consumer is attached.

Use, from the call's event loop::

    audio = CallerAudio(room, caller.identity, clock=clock)
    stop = audio.listen(lambda pcm, at: detector.feed(pcm, at), sample_rate=8000)
    ...            # the sink gets every 20 ms frame: mono 16-bit `Pcm`, and the clock time it arrived
    stop()         # this listener is done; unsubscribes when it was the last one
    await audio.aclose()

What a sink gets and when: `sink(pcm, at)` is called on the event loop for each frame, in order,
with `pcm` at the `sample_rate` the listener asked for (LiveKit resamples natively, per
listener) and `at` = `clock.now()` when the frame was handed over, i.e. the end of that frame.
A sink must return quickly (it runs between frames of every call on this loop) and must not
raise; an exception is logged once and the listener is dropped. Sinks never see audio from
before they listened, and nothing from anyone but the caller (the agent's own prompts are not
in the caller's track; a dialled leg is another participant).

If the caller has not published audio yet (a web client that joins muted), the subscription
starts when they do; if they unpublish and publish again, listeners carry on with the new track.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit import rtc

from ivrkit.clock import Clock
from ivrkit.voice.audio import Pcm

__all__ = ["AudioSink", "CallerAudio"]

logger = logging.getLogger("ivrkit.livekit")

#: A consumer of the caller's audio: one frame (`Pcm`) and the clock time it arrived.
AudioSink = Callable[[Pcm, float], None]
#: Frame length asked of LiveKit's decoder: 20 ms is the RTP packet size of a phone call, so a
#: frame is one packet's audio and a sink is called 50 times a second.
FRAME_MS = 20


@dataclass(eq=False)
class _Listener:
    sink: AudioSink
    sample_rate: int
    stream: rtc.AudioStream | None = None
    task: asyncio.Task[None] | None = None
    frames: int = field(default=0)


class CallerAudio:
    """The caller's microphone audio for whoever asks, subscribed only while someone does.

    Owned by one call and used on its event loop. `records` (optional) is told of subscription
    changes as `(kind, at, fields)` — `caller_audio_subscribed` / `caller_audio_unsubscribed` —
    the same shape as the channel's trace records, so the trace shows when a call listened.
    """

    def __init__(
        self,
        room: rtc.Room,
        caller_identity: str,
        *,
        clock: Clock,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
        records: Callable[[str, float, dict[str, object]], None] | None = None,
    ) -> None:
        self.room = room
        self.caller_identity = caller_identity
        self.clock = clock
        self.log = log
        self.records = records
        self._listeners: list[_Listener] = []
        self._publication: rtc.RemoteTrackPublication | None = None
        self._track: rtc.RemoteAudioTrack | None = None
        self._watching = False
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()  # streams being released

    @property
    def listening(self) -> bool:
        """True while at least one listener is attached (and so the track is wanted)."""
        return bool(self._listeners)

    @property
    def subscribed(self) -> bool:
        """True while we hold a subscription to the caller's audio track."""
        return self._publication is not None

    def listen(self, sink: AudioSink, *, sample_rate: int = 16000) -> Callable[[], None]:
        """Start sending the caller's audio to `sink` at `sample_rate`; returns the stop function.

        The stop function is idempotent. The first listener subscribes to the caller's track,
        stopping the last unsubscribes it."""
        if self._closed:
            raise RuntimeError("CallerAudio is closed")
        listener = _Listener(sink, sample_rate)
        self._listeners.append(listener)
        if not self._watching:
            self._watch(True)
        if self._track is not None:
            self._start(listener, self._track)
        elif self._publication is None:
            self._subscribe()
        return lambda: self._stop(listener)

    async def aclose(self) -> None:
        """Stop every listener and unsubscribe. Idempotent."""
        self._closed = True
        for listener in list(self._listeners):
            self._stop(listener)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # --- subscription --------------------------------------------------------------------

    def _watch(self, on: bool) -> None:
        method = self.room.on if on else self.room.off
        method("track_published", self._on_published)
        method("track_subscribed", self._on_subscribed)
        method("track_unsubscribed", self._on_unsubscribed)
        self._watching = on

    def _caller_audio(self) -> rtc.RemoteTrackPublication | None:
        caller = self.room.remote_participants.get(self.caller_identity)
        if caller is None:
            return None
        audio = [p for p in caller.track_publications.values() if p.kind == rtc.TrackKind.KIND_AUDIO]
        mics = [p for p in audio if p.source == rtc.TrackSource.SOURCE_MICROPHONE]
        chosen = mics or audio
        return chosen[0] if chosen else None

    def _subscribe(self) -> None:
        publication = self._caller_audio()
        if publication is None:
            self.log.debug("caller '%s' has no audio track yet: subscribing when they publish one", self.caller_identity)
            return
        self._publication = publication
        if publication.track is not None:  # already subscribed (by someone else's request)
            self._on_subscribed(publication.track, publication, None)
        else:
            publication.set_subscribed(True)

    def _unsubscribe(self) -> None:
        publication, self._publication, self._track = self._publication, None, None
        if self._watching:
            self._watch(False)
        if publication is None:
            return
        try:
            publication.set_subscribed(False)
        except Exception as e:  # the room may be gone already: nothing left to release
            self.log.debug("unsubscribing the caller's audio failed: %r", e)
        self._record("caller_audio_unsubscribed", {})

    def _on_published(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if (participant.identity == self.caller_identity and publication.kind == rtc.TrackKind.KIND_AUDIO
                and self._listeners and self._publication is None):
            self._subscribe()

    def _on_subscribed(self, track: rtc.Track, publication: rtc.RemoteTrackPublication,
                       participant: rtc.RemoteParticipant | None) -> None:
        ours = self._publication
        if ours is None or publication.sid != ours.sid or not self._listeners:
            return
        if participant is not None and participant.identity != self.caller_identity:
            return
        if not isinstance(track, rtc.RemoteAudioTrack):
            return
        self._track = track
        self._record("caller_audio_subscribed", {"track": publication.sid})
        for listener in self._listeners:
            if listener.task is None:
                self._start(listener, track)

    def _on_unsubscribed(self, track: rtc.Track, publication: rtc.RemoteTrackPublication,
                         participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self.caller_identity or track is not self._track:
            return
        # The caller unpublished (or the server dropped it): the pumps end with their streams;
        # keep the listeners and take the next audio track the caller publishes.
        self._publication = self._track = None
        for listener in self._listeners:
            self._end_stream(listener)
        self._subscribe()

    # --- per listener --------------------------------------------------------------------

    def _start(self, listener: _Listener, track: rtc.RemoteAudioTrack) -> None:
        listener.stream = rtc.AudioStream(track, sample_rate=listener.sample_rate, num_channels=1, frame_size_ms=FRAME_MS)
        listener.task = asyncio.get_running_loop().create_task(self._pump(listener, listener.stream),
                                                              name="ivrkit-caller-audio")

    async def _pump(self, listener: _Listener, stream: rtc.AudioStream) -> None:
        async for event in stream:
            frame = event.frame
            pcm = Pcm(bytes(frame.data), frame.sample_rate)
            listener.frames += 1
            try:
                listener.sink(pcm, self.clock.now())
            except Exception:
                self.log.exception("a consumer of the caller's audio failed; it gets no more audio")
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


async def _close(stream: rtc.AudioStream, log: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
    try:
        await stream.aclose()
    except Exception as e:  # the track or room may be gone: the stream is released either way
        log.debug("closing a caller audio stream failed: %r", e)
