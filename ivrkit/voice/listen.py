"""The recognition port: what turns the caller's audio into `SpeechStarted` / `Speech` for a
`Listen` request (the call's grammar of the moment).

Why a port of its own: the call decides *what* may be said (`ivrkit.call.speech`), an adapter
owns the audio (the LiveKit worker's `ParticipantAudio`), and a recogniser sits between them —
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

# The protocols live beside `Listen` in the port module, which names them too (a dialled
# leg's recogniser, `Channel.dialled_recognizer`); this module is where adapters find them.
from ivrkit.channel import HeardEmit, Recognition, Recognizer

__all__ = ["HeardEmit", "Recognition", "Recognizer"]
