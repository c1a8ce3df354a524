"""Sound for the console phone: prompts synthesized with the offline voice, played on the sound
card and/or laid onto a call recording (`--record call.wav`).

Why a timeline recorder and not "append each prompt": the recording is meant to be what the
caller *heard*, so a prompt cut by barge-in is cut in the file too, and the silence while the
caller thinks is there as silence. Every segment is placed at its clock time.

The sound card is optional: PortAudio may be missing (headless servers, containers) or there
may be no output device. `open_soundcard()` raises `AudioUnavailable` with the reason, and the
console says once that audio is off and goes on with text.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ivrkit.errors import IvrkitError
from ivrkit.prompts import FilledPrompt
from ivrkit.voice.audio import Pcm, resample, tone
from ivrkit.voice.cache import PromptCache, Voice, prompt_pcm
from ivrkit.voice.speech import EspeakVoice

__all__ = [
    "AudioUnavailable",
    "CallRecorder",
    "PromptSynthesizer",
    "SoundcardSpeaker",
    "Speaker",
    "open_soundcard",
    "simulated_duration",
]

OUTPUT_RATE = 16000
"""The console's one audio rate: wideband telephony, and what the recording is written in."""


class AudioUnavailable(IvrkitError):
    """No sound card output is possible; the message says why and how to get it.

    Raised by `open_soundcard()` when PortAudio or the sounddevice package is missing or there
    is no output device; `ivrkit console` says so once and goes on with printed prompts.
    """


class Speaker(Protocol):
    """Somewhere to play a prompt now. `play` returns at once; `stop` cuts it."""

    def play(self, pcm: Pcm) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def simulated_duration(prompt: FilledPrompt, seconds_per_char: float) -> float:
    """How long a prompt would take to speak, when there is no audio to measure.

    Text is counted per character (0.06 s/char is close to eSpeak's default rate); silence
    parts count as written; an audio file counts 1 s (its length is unknown without reading it).
    """
    total = len(prompt.text) * seconds_per_char
    for part in prompt.parts:
        if part.kind == "silence":
            try:
                total += max(float(part.value), 0.0)
            except ValueError:
                pass
        elif part.kind == "audio":
            total += 1.0
    return total


class _MemoVoice:
    """A voice that remembers its last few syntheses (in memory only), so a repeated menu or a
    re-prompt costs nothing the second time."""

    def __init__(self, voice: Voice, size: int) -> None:
        self._voice = voice
        self._size = size
        self._memo: OrderedDict[str, Pcm] = OrderedDict()

    @property
    def cache_key(self) -> str:
        return self._voice.cache_key

    def synthesize(self, text: str) -> Pcm:
        hit = self._memo.get(text)
        if hit is not None:
            self._memo.move_to_end(text)
            return hit
        pcm = self._voice.synthesize(text)
        self._memo[text] = pcm
        if len(self._memo) > self._size:
            self._memo.popitem(last=False)
        return pcm


class PromptSynthesizer:
    """Filled prompt → one Pcm at `OUTPUT_RATE`, with the offline voice (`voice.cache.prompt_pcm`:
    text spoken, digits read key by key, audio files read against `base_dir`, silences)."""

    def __init__(
        self,
        voice: Voice | None = None,
        *,
        base_dir: Path | None = None,
        cache: PromptCache | None = None,
        memo_size: int = 64,
    ) -> None:
        self.voice = _MemoVoice(voice or EspeakVoice(), memo_size)
        self.base_dir = base_dir
        self.cache = cache

    def synthesize(self, prompt: FilledPrompt) -> Pcm:
        """Raises `SpeechError` or `AudioFileError` (the caller logs it and falls back to text)."""
        return prompt_pcm(
            prompt.parts, self.voice, sample_rate=OUTPUT_RATE, cache=self.cache, base_dir=self.base_dir
        )


class SoundcardSpeaker:
    """The default output device through `sounddevice` (PortAudio). Non-blocking."""

    def __init__(self, sd: Any) -> None:
        self._sd = sd

    def play(self, pcm: Pcm) -> None:
        self._sd.play(pcm.array(), pcm.sample_rate, blocking=False)

    def stop(self) -> None:
        self._sd.stop()

    def close(self) -> None:
        try:
            self._sd.stop()
        except Exception:  # closing must never fail the call's exit path
            pass


def open_soundcard() -> SoundcardSpeaker:
    """The sound card, or `AudioUnavailable` saying why (no PortAudio, no output device)."""
    try:
        import sounddevice as sd  # type: ignore[import-untyped]
    except OSError as e:  # sounddevice raises OSError when libportaudio is not installed
        raise AudioUnavailable(
            f"{e} (install it, e.g. `apt-get install libportaudio2`, to hear prompts)"
        ) from None
    except ImportError:
        raise AudioUnavailable("the sounddevice package is not installed (`pip install sounddevice`)") from None
    try:
        sd.query_devices(kind="output")
    except Exception as e:  # sounddevice.PortAudioError or ValueError: no default output device
        raise AudioUnavailable(f"no sound output device ({e})") from None
    return SoundcardSpeaker(sd)


@dataclass(slots=True)
class _Segment:
    start: float
    pcm: Pcm
    end: float | None = None  # cut time (barge-in); None: played to its end


class CallRecorder:
    """The call's audio timeline: each prompt placed at the clock time it started, cut where it
    was stopped, silence everywhere else. `finish(at)` writes it out up to the end of the call."""

    def __init__(self, start: float, sample_rate: int = OUTPUT_RATE) -> None:
        self.start = start
        self.sample_rate = sample_rate
        self._segments: list[_Segment] = []

    def play(self, pcm: Pcm, at: float, *, bleep: bool = False) -> None:
        """Place `pcm` at clock time `at`. `bleep=True` records a quiet 1 kHz tone of the same
        length instead: for prompts that read back sensitive values (a PIN), so a recording
        file — which outlives the call — never holds them. Timing stays exact."""
        if bleep:
            pcm = tone(1000.0, pcm.duration, sample_rate=self.sample_rate, amplitude=0.1)
        self._segments.append(_Segment(at, resample(pcm, self.sample_rate)))

    def cut(self, at: float) -> None:
        """The playing prompt stopped at `at` (only the latest one can be playing)."""
        if self._segments and self._segments[-1].end is None:
            self._segments[-1].end = at

    def finish(self, at: float) -> Pcm:
        total = max(round((at - self.start) * self.sample_rate), 0)
        out = np.zeros(total, dtype=np.int32)
        for seg in self._segments:
            offset = max(round((seg.start - self.start) * self.sample_rate), 0)
            data = seg.pcm.array()
            if seg.end is not None:
                data = data[: max(round((seg.end - seg.start) * self.sample_rate), 0)]
            data = data[: max(total - offset, 0)]
            out[offset : offset + len(data)] += data
        return Pcm(np.clip(out, -32768, 32767).astype("<i2").tobytes(), self.sample_rate)
