"""The prompts of the real-server benchmarks: short sine tones, written as WAV files.

Why tones and not speech: a tone starts at its first sample (speech from a TTS starts with a
variable stretch of silence, which would be measured as latency), and its frequency tells the
caller WHICH prompt it hears. ivrkit plays them as `audio:` prompt parts; the hand-written
baseline agent plays the very same samples.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 48000
TONES = (600.0, 900.0)
SECONDS = 0.3
AMPLITUDE = 0.3


def tone_pcm(freq: float, seconds: float = SECONDS, rate: int = RATE) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (AMPLITUDE * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16).tobytes()


def write_tones(folder: Path, seconds: float = SECONDS) -> list[Path]:
    paths = []
    for i, freq in enumerate(TONES):
        path = folder / f"tone{i}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(tone_pcm(freq, seconds))
        paths.append(path)
    return paths


def flow_yaml() -> str:
    """Two menus that hand over to each other on key 1; each prompt is one tone."""
    return """\
flow: bench-tones
start: m0
defaults: {timeout: 60s, retries: 3, terminator: null}
states:
  m0:
    menu:
      prompt: {audio: tone0.wav}
      options: {"1": m1}
      on_max_retries: m0
  m1:
    menu:
      prompt: {audio: tone1.wav}
      options: {"1": m0}
      on_max_retries: m1
"""
