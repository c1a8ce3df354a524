"""Speech input on a LiveKit call: the call's `Listen` requests, the caller's audio, a recogniser.

Why here: the call says *what* it listens for and when (`ivrkit.call.speech`), `ParticipantAudio`
owns the caller's track (subscribed only while someone listens), and a recogniser
(`ivrkit.voice.listen.Recognizer`; offline pocketsphinx by default, `ivrkit.livekit.sphinx`)
turns frames into `SpeechStarted` / `Speech`. `Hearing` joins the three for one call.

A state that takes speech starts a recognition with its grammar; leaving it ends it. The audio
is given back `RELEASE_AFTER` seconds after the last request ends, unless another comes first —
so a caller walking through several speech menus is not unsubscribed and re-subscribed between
them, and a key-only stretch of the call stops decoding soon after.
"""

from __future__ import annotations

from collections.abc import Callable

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.clock import Clock, TimerHandle
from ivrkit.livekit.participant_audio import ParticipantAudio
from ivrkit.voice.audio import Pcm
from ivrkit.voice.listen import HeardEmit, Recognition, Recognizer

__all__ = ["RELEASE_AFTER", "Hearing"]

#: Seconds the caller's audio stays subscribed after the last listening state, for the next one.
RELEASE_AFTER = 2.0


class Hearing:
    """One call's ears: `listen(request)` / `listen(None)` as the call asks, `close()` at the end."""

    def __init__(self, audio: ParticipantAudio, recognizer: Recognizer, emit: HeardEmit, clock: Clock) -> None:
        self.audio = audio
        self.clock = clock
        self.recognizer = recognizer
        self._emit = emit
        self._recognition: Recognition | None = None
        self._stop_audio: Callable[[], None] | None = None
        self._release: TimerHandle | None = None

    @property
    def listening(self) -> bool:
        return self._recognition is not None

    def listen(self, request: Listen | None) -> None:
        self._end_recognition()
        if request is None:
            if self._stop_audio is not None and self._release is None:
                self._release = self.clock.call_later(RELEASE_AFTER, self._release_audio)
            return
        if self._release is not None:
            self._release.cancel()
            self._release = None
        recognition = self.recognizer.start(request, lambda event: self._heard(recognition, event))
        self._recognition = recognition
        if self._stop_audio is None:
            self._stop_audio = self.audio.listen(self._frame, sample_rate=self.recognizer.sample_rate)

    def close(self) -> None:
        self._end_recognition()
        if self._release is not None:
            self._release.cancel()
            self._release = None
        self._release_audio()

    def _frame(self, pcm: Pcm, at: float) -> None:
        if self._recognition is not None:
            self._recognition.feed(pcm, at)

    def _heard(self, recognition: Recognition, event: SpeechStarted | Speech) -> None:
        if recognition is self._recognition:  # a recognition already ended says nothing more
            self._emit(event)

    def _end_recognition(self) -> None:
        recognition, self._recognition = self._recognition, None
        if recognition is not None:
            recognition.close()

    def _release_audio(self) -> None:
        self._release = None
        stop, self._stop_audio = self._stop_audio, None
        if stop is not None:
            stop()
