"""In-band DTMF on a LiveKit call: the caller's audio, through the detector, out as keys.

Why here: LiveKit SIP turns only RFC 4733 telephone-events into `sip_dtmf_received`; a flow
with `dtmf: inband` or `both` (`ivrkit.flow.model.DtmfMode`) also hears the tones in the
caller's audio. This listens with `CallerAudio` at 8 kHz — the phone line's own rate, and the
cheapest for the detector — for the whole call (a key may come at any time: type-ahead, barge-in),
feeds `ivrkit.voice.dtmf_tones.DtmfDetector` and hands each key to the channel, which takes it
exactly like an RFC 4733 key (and, with `both`, drops the second half of a press:
`ivrkit.dtmf_merge`). A flow with `dtmf: rfc4733` (the default) never creates one, so it never
subscribes to audio.

The key's time is the clock reading when the frame that completed it arrived.
"""

from __future__ import annotations

from collections.abc import Callable

from ivrkit.livekit.caller_audio import CallerAudio
from ivrkit.voice.audio import Pcm
from ivrkit.voice.dtmf_tones import DtmfDetector

__all__ = ["DETECTOR_RATE", "InbandKeys"]

#: The rate the detector hears: a phone line's (G.711) — more would only cost more.
DETECTOR_RATE = 8000


class InbandKeys:
    """`start()` listens to the caller for DTMF tones and calls `on_key(digit, at)` once per
    press; `stop()` gives the audio back (unsubscribing when nothing else listens)."""

    def __init__(self, audio: CallerAudio, on_key: Callable[[str, float], None]) -> None:
        self.audio = audio
        self.on_key = on_key
        self.detector = DtmfDetector(DETECTOR_RATE)
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        if self._stop is None:
            self._stop = self.audio.listen(self._heard, sample_rate=DETECTOR_RATE)

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def _heard(self, pcm: Pcm, at: float) -> None:
        for key in self.detector.feed(pcm):
            self.on_key(key.digit, at)
