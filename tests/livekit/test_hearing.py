"""Hearing: the call's listen requests turned into recognitions over the caller's audio, the
audio kept between listening states and given back after them — on a VirtualClock.

`ParticipantAudio` needs a LiveKit room (tests/e2e/test_speech.py runs it for real); here a stand-in
with its one method, `listen(sink, sample_rate) -> stop`, counts subscriptions. The recogniser
is a real adapter of the port (`ivrkit.voice.listen`): it hears a frame of non-silence as the
start of speech and the next silent frame as the word "billing"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.livekit.hearing import RELEASE_AFTER, Hearing
from ivrkit.testing import VirtualClock
from ivrkit.voice.audio import Pcm, silence, tone
from ivrkit.voice.listen import HeardEmit


class Audio:
    def __init__(self) -> None:
        self.sinks: list[Callable[[Pcm, float], None]] = []
        self.subscriptions = 0

    def listen(self, sink: Callable[[Pcm, float], None], *, sample_rate: int = 16000) -> Callable[[], None]:
        self.sinks.append(sink)
        self.subscriptions += 1
        return lambda: self.sinks.remove(sink)

    def frame(self, pcm: Pcm, at: float) -> None:
        for sink in list(self.sinks):
            sink(pcm, at)


class Loudness:
    sample_rate = 16000

    def __init__(self) -> None:
        self.started: list[Listen] = []

    def start(self, request: Listen, emit: HeardEmit) -> Any:
        self.started.append(request)
        return _Recognition(emit)


class _Recognition:
    def __init__(self, emit: HeardEmit) -> None:
        self.emit, self.speaking, self.closed = emit, False, False

    def feed(self, pcm: Pcm, at: float) -> None:
        loud = max(abs(int(x)) for x in pcm.array()) > 1000
        if loud and not self.speaking:
            self.speaking = True
            self.emit(SpeechStarted(at))
        elif not loud and self.speaking:
            self.speaking = False
            self.emit(Speech("billing", at))

    def close(self) -> None:
        self.closed = True


LOUD, QUIET = tone(440, 0.02, sample_rate=16000, amplitude=0.5), silence(0.02, sample_rate=16000)
MENU, DIGITS = Listen(phrases=("billing",)), Listen(digits=True)


def make() -> tuple[Hearing, Audio, Loudness, VirtualClock, list[SpeechStarted | Speech]]:
    audio, recognizer, clock, heard = Audio(), Loudness(), VirtualClock(), []
    return Hearing(audio, recognizer, heard.append, clock), audio, recognizer, clock, heard  # type: ignore[arg-type]


def test_a_request_hears_the_callers_audio_until_it_ends() -> None:
    hearing, audio, recognizer, clock, heard = make()
    assert audio.subscriptions == 0 and not hearing.listening  # nothing asked: nothing subscribed
    hearing.listen(MENU)
    audio.frame(LOUD, 1.0)
    audio.frame(QUIET, 1.02)
    assert heard == [SpeechStarted(1.0), Speech("billing", 1.02)] and recognizer.started == [MENU]
    hearing.listen(None)
    audio.frame(LOUD, 1.5)
    assert len(heard) == 2 and not hearing.listening


def test_the_audio_stays_between_listening_states_and_is_given_back_after() -> None:
    hearing, audio, recognizer, clock, heard = make()
    hearing.listen(MENU)
    hearing.listen(None)
    clock.advance(RELEASE_AFTER / 2)
    hearing.listen(DIGITS)  # the next state listens: the same subscription
    assert audio.subscriptions == 1 and len(audio.sinks) == 1 and recognizer.started == [MENU, DIGITS]
    hearing.listen(None)
    clock.advance(RELEASE_AFTER)
    assert audio.sinks == [] and clock.pending() == 0


def test_a_recognition_replaced_mid_utterance_says_nothing_more() -> None:
    hearing, audio, recognizer, clock, heard = make()
    hearing.listen(MENU)
    audio.frame(LOUD, 1.0)
    hearing.listen(DIGITS)  # the state changed while the caller spoke
    audio.frame(QUIET, 1.02)
    assert heard == [SpeechStarted(1.0)]
    hearing.close()
    assert audio.sinks == [] and clock.pending() == 0
