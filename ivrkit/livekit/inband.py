"""In-band DTMF on a LiveKit call: the caller's audio, through the detector, out as keys.

Why here: LiveKit SIP turns only RFC 4733 telephone-events into `sip_dtmf_received`; a flow
with `dtmf: inband` or `both` (`ivrkit.flow.model.DtmfMode`) also hears the tones in the
caller's audio. This listens with `ParticipantAudio` at 8 kHz — the phone line's own rate, and the
cheapest for the detector — for the whole call (a key may come at any time: type-ahead, barge-in),
feeds `ivrkit.voice.dtmf_tones.DtmfDetector` and hands each key to the channel, which takes it
exactly like an RFC 4733 key (and, with `both`, drops the second half of a press:
`ivrkit.dtmf_merge`). A flow with `dtmf: rfc4733` (the default) never creates one, so it never
subscribes to audio.

The key's time is the clock reading when the frame that completed it arrived.
"""

from __future__ import annotations

from collections.abc import Callable

from ivrkit.livekit.participant_audio import ParticipantAudio
from ivrkit.voice.audio import Pcm
from ivrkit.voice.dtmf_tones import DtmfDetector

__all__ = ["DETECTOR_RATE", "InbandKeys"]

#: The rate the detector hears: a phone line's (G.711) — more would only cost more.
DETECTOR_RATE = 8000
#: Audio is handed over in frames this long: each frame is one trip through LiveKit's event
#: plumbing in Python, which costs far more than the detector (bench/inband_cost.py, row 10 of
#: bench/README.md: listening cost +4.0 % of a core per call at 20 ms frames, +2.0 % at 100 ms);
#: a key is heard at most one frame later (on LiveKit SIP the tone half of a press came 120 or
#: 220 ms after its RFC 4733 event, by where the frame boundaries fell; 140 ms at 20 ms frames).
FRAME_MS = 100


class InbandKeys:
    """`start()` listens to the caller for DTMF tones and calls `on_key(digit, at)` once per
    press; `stop()` gives the audio back (unsubscribing when nothing else listens)."""

    def __init__(self, audio: ParticipantAudio, on_key: Callable[[str, float], None]) -> None:
        self.audio = audio
        self.on_key = on_key
        self.detector = DtmfDetector(DETECTOR_RATE)
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        if self._stop is None:
            self._stop = self.audio.listen(self._heard, sample_rate=DETECTOR_RATE, frame_ms=FRAME_MS)

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def _heard(self, pcm: Pcm, at: float) -> None:
        for key in self.detector.feed(pcm):
            self.on_key(key.digit, at)
