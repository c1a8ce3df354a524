"""The prompt cache: a folder of WAV files keyed by what was said and by which voice.

Why: a call should play a fixed prompt ("For balances press 1...") without waiting for a TTS
or paying for one on every call. `ivrkit prompts bake flow.yaml` synthesizes every fixed
prompt text of a flow once ("bakes" it); at call time the player looks the text up here and
plays the file.

The key is sha256 over the voice's `cache_key` and the text, so changing a prompt's wording,
the voice, its rate or the library version gives a new file, and identical prompts across
flows share one file. Texts with `{var}` templates vary per call and are not baked.

Engine-side: no LiveKit import, no clock.
"""

from __future__ import annotations

import hashlib
import os
import string
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from ivrkit.errors import AudioFileError
from ivrkit.prompts import PromptPart
from ivrkit.voice.audio import Pcm, concat, read_wav, silence, write_wav
from ivrkit.voice.speech import spoken_digits

__all__ = ["PromptCache", "Voice", "is_fixed_text", "prompt_pcm", "bake_texts"]


class Voice(Protocol):
    """What the cache needs from a voice: a stable key for its output, and synthesis.

    `ivrkit.voice.speech.EspeakVoice` is one; any object with these two members works.
    """

    @property
    def cache_key(self) -> str: ...

    def synthesize(self, text: str) -> Pcm: ...


def is_fixed_text(text: str) -> bool:
    """True when `text` has no `{var}` template field, so it sounds the same on every call.

    Blank text is not fixed either: there is nothing to synthesize.

    `{{` and `}}` are literal braces. A text with malformed braces is treated as not fixed:
    the flow checker reports it, and baking it would put the braces into the audio.
    """
    if not text.strip():
        return False
    try:
        return all(name is None for _, name, _, _ in string.Formatter().parse(text))
    except ValueError:
        return False


class PromptCache:
    """WAV files in `directory`, one per (voice, text), named by their sha256 key.

    Safe for several processes baking at once: files are written to a temporary name and
    renamed into place, so a reader never sees half a file.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @staticmethod
    def key(text: str, voice: Voice | str) -> str:
        """`voice` is a Voice or its cache key (a livekit TTS plugin has a key, not a Voice)."""
        digest = hashlib.sha256()
        digest.update((voice if isinstance(voice, str) else voice.cache_key).encode())
        digest.update(b"\0")
        digest.update(text.encode())
        return digest.hexdigest()

    def path_for(self, text: str, voice: Voice | str) -> Path:
        """Where the prompt's file is or would be; does not synthesize."""
        return self.directory / f"{self.key(text, voice)}.wav"

    def get(self, text: str, voice: Voice | str) -> Path | None:
        """The baked file if it exists, else None (the caller then uses live TTS)."""
        path = self.path_for(text, voice)
        return path if path.is_file() else None

    def bake(self, text: str, voice: Voice) -> Path:
        """The baked file, synthesizing and storing it first on a miss."""
        path = self.path_for(text, voice)
        if path.is_file():
            return path
        return self.put(text, voice, voice.synthesize(text))

    def put(self, text: str, voice: Voice | str, pcm: Pcm) -> Path:
        """Store `pcm` as `text` spoken by `voice`."""
        path = self.path_for(text, voice)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".bake-", suffix=".wav", dir=self.directory)
        except OSError as e:
            raise AudioFileError(
                f"{self.directory}: cannot create the prompt cache folder: {e.strerror or e}"
            ) from None
        os.close(fd)
        try:
            write_wav(tmp, pcm)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def bake_texts(
    texts: Iterable[str], voice: Voice, directory: str | os.PathLike[str]
) -> list[Path]:
    """Bake every fixed text (see `is_fixed_text`) into the cache in `directory`.

    Returns one path per distinct fixed text, in first-seen order; templated texts are
    skipped (`[t for t in texts if not is_fixed_text(t)]` lists them for a report).
    """
    cache = PromptCache(directory)
    seen: set[str] = set()
    paths: list[Path] = []
    for text in texts:
        if text in seen or not is_fixed_text(text):
            continue
        seen.add(text)
        paths.append(cache.bake(text, voice))
    return paths


def prompt_pcm(
    parts: Iterable[PromptPart],
    voice: Voice,
    *,
    sample_rate: int,
    cache: PromptCache | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Pcm:
    """One playable buffer for a filled-in prompt (`FilledPrompt.parts`), at `sample_rate`.

    Text comes from the cache when it was baked, else is synthesized now and *not*
    stored: a filled-in text may carry a caller's digits, which must not land on disk.
    Digits are spoken key by key, audio files are read relative to `base_dir` (the flow
    file's folder), silence values are seconds. CPU-bound: async callers run it in a thread.
    """
    base = Path(base_dir) if base_dir is not None else Path()
    pieces: list[Pcm] = []
    for part in parts:
        if part.kind == "text":
            if not part.value.strip():
                continue
            hit = cache.get(part.value, voice) if cache is not None else None
            pieces.append(read_wav(hit) if hit is not None else voice.synthesize(part.value))
        elif part.kind == "digits":
            if part.value:
                pieces.append(voice.synthesize(spoken_digits(part.value)))
        elif part.kind == "audio":
            pieces.append(read_wav(base / part.value))
        elif part.kind == "silence":
            pieces.append(silence(float(part.value), sample_rate=sample_rate))
        else:
            raise ValueError(f"unknown prompt part kind {part.kind!r}")
    return concat(pieces, sample_rate=sample_rate)
