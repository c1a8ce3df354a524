"""The recognition port: what turns the caller's audio into `SpeechStarted` / `Speech` for a
`Listen` request (the call's grammar of the moment).

Why a port of its own: the call decides *what* may be said (`ivrkit.call.speech`), an adapter
owns the audio (the LiveKit worker's `CallerAudio`), and a recogniser sits between them —
offline pocketsphinx restricted to the request's words by default (`ivrkit.livekit.sphinx`),
or a livekit-agents STT plugin. Each gets mono 16-bit frames at its `sample_rate`, in order,
with the clock time each arrived, and reports through `emit`; it decides itself when speech
starts and ends (its voice activity detection).

A recogniser adapter::

    class Echo:                        # hears every frame as the word "billing"
        sample_rate = 16000
        def start(self, request: Listen, emit: HeardEmit) -> Recognition:
            return EchoRecognition(emit)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.voice.audio import Pcm

#: Where a recognition reports: `SpeechStarted` when the caller starts, one `Speech` after it.
HeardEmit = Callable[[SpeechStarted | Speech], None]


class Recognition(Protocol):
    """Listening for one request. `feed` is called on the event loop for every frame and must
    return quickly; `close` ends it (an utterance in progress is dropped, nothing is emitted)."""

    def feed(self, pcm: Pcm, at: float) -> None: ...

    def close(self) -> None: ...


class Recognizer(Protocol):
    """Makes a `Recognition` for each `Listen` request of one call."""

    @property
    def sample_rate(self) -> int: ...

    def start(self, request: Listen, emit: HeardEmit) -> Recognition: ...
