"""Prompt audio for the LiveKit worker: a filled-in prompt to one PCM buffer at the track's rate.

Why not `AgentSession.say(text)`: an IVR prompt is known before the call needs it, so it is
synthesized to PCM up front (a baked WAV from the prompt cache, the offline eSpeak NG voice,
or a livekit-agents TTS plugin) and then played by `ivrkit.livekit.player` frame by frame.
Synthesis is separate from playing so that barge-in is only "drop the queued audio".

One `PromptAudio` per flow, shared by every call on it (and, with the thread executor, by every
job thread of the worker process): fixed prompts — ones whose parts are written in the flow
without `{templates}` — are kept in a bounded in-memory LRU after their first synthesis. Prompts
filled with call variables are synthesized per call and never kept (they may read back a PIN).

TTS failure mid-call: a plugin TTS that raises is logged with the prompt's `log_text` (masked,
never the raw text) and the prompt is spoken by the offline voice instead; the call goes on.
The plugin gets one attempt (no livekit-agents retries: measured 4.1 s of silence per prompt
with its default of 3) within `PLUGIN_LIMIT`, and after a failure it is not asked again for
`PLUGIN_RETRY_AFTER` seconds by any call on this flow — a dead cloud voice must not add its
timeout to every prompt of every call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from livekit.agents import tts
from livekit.agents.types import APIConnectOptions

from ivrkit.flow.model import HookRef
from ivrkit.prompts import FilledPrompt, Prompt, PromptPart
from ivrkit.voice.audio import Pcm, read_wav, resample
from ivrkit.voice.cache import PromptCache, is_fixed_text, prompt_pcm
from ivrkit.voice.speech import DEFAULT_VOICE, EspeakVoice, spoken_digits

__all__ = ["OUTPUT_RATE", "PromptAudio", "fixed_prompt_parts", "plugin_cache_key", "bake_with_plugin"]

logger = logging.getLogger("ivrkit.livekit")

#: The sample rate of the agent's audio track. 48 kHz is WebRTC's native rate (Opus), so no
#: resampling happens after ours; LiveKit SIP converts to the phone's 8/16 kHz.
OUTPUT_RATE = 48000
_MEMO_BYTES = 64 * 1024 * 1024
#: One plugin attempt per text part, bounded: connection and whole synthesis.
_PLUGIN_ONCE = APIConnectOptions(max_retry=0, timeout=5.0)
PLUGIN_LIMIT = 10.0
PLUGIN_RETRY_AFTER = 30.0

PartsKey = tuple[PromptPart, ...]
T = TypeVar("T")


def _walk(value: Any, kind: type[T], seen: set[int]) -> Iterator[T]:
    """Every `kind` instance reachable through dataclass fields, tuples, lists and mappings."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, kind):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), kind, seen)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _walk(item, kind, seen)
    elif hasattr(value, "values") and callable(value.values):
        for item in value.values():
            yield from _walk(item, kind, seen)


def _walk_hooks(flow: Any) -> list[HookRef]:
    """Every hook reference of a flow (for dev-mode reload watching)."""
    return list(_walk(flow, HookRef, set()))


def fixed_prompt_parts(flow: Any) -> frozenset[PartsKey]:
    """The parts of every prompt in `flow` that has no templates: safe to keep in memory.

    Walks the flow model generically (any dataclass field, tuple or mapping holding a
    `Prompt`), so a new prompt slot in the model is covered without changes here.
    """
    return frozenset(p.parts for p in _walk(flow, Prompt, set()) if p.is_fixed)


class PromptAudio:
    """Synthesizes `FilledPrompt`s of one flow. Thread-safe; `synthesize` is a coroutine."""

    def __init__(
        self,
        *,
        base_dir: Path | None,
        fixed: frozenset[PartsKey] = frozenset(),
        cache: PromptCache | None = None,
        default_voice: str = DEFAULT_VOICE,
        sample_rate: int = OUTPUT_RATE,
        memo_bytes: int = _MEMO_BYTES,
    ) -> None:
        self.base_dir = base_dir
        self.fixed = fixed
        self.cache = cache
        self.default_voice = default_voice
        self.sample_rate = sample_rate
        self._memo: OrderedDict[tuple[str, str, PartsKey], Pcm] = OrderedDict()
        self._memo_bytes = 0
        self._memo_limit = memo_bytes
        self._lock = threading.Lock()
        self._plugin_down_until: dict[str, float] = {}  # plugin label -> time.monotonic()

    def _voice(self, prompt: FilledPrompt) -> EspeakVoice:
        return EspeakVoice(prompt.voice or self.default_voice)

    async def synthesize(self, prompt: FilledPrompt, plugin: tts.TTS[Any] | None = None,
                     plugin_key: str | None = None) -> Pcm:
        """The prompt as one buffer at `sample_rate`. Raises `SpeechError`/`AudioFileError`
        when even the offline voice cannot produce it (the player logs and skips the prompt).

        `plugin` is the call's livekit-agents TTS, if the flow or the worker names one; it is
        per call because plugins hold HTTP sessions bound to the job's event loop. `plugin_key`
        (its `module:factory`) finds texts `ivrkit prompts bake --tts` baked with it."""
        key = (plugin.label if plugin is not None else "", prompt.voice or "", prompt.parts)
        keep = prompt.parts in self.fixed
        if keep:
            with self._lock:
                hit = self._memo.get(key)
                if hit is not None:
                    self._memo.move_to_end(key)
                    return hit
        pcm, as_asked = await self._synthesize(prompt, plugin, plugin_key)
        if keep and as_asked:  # not the offline stand-in for a plugin that failed this time
            self._remember(key, pcm)
        return pcm

    def _remember(self, key: tuple[str, str, PartsKey], pcm: Pcm) -> None:
        size = len(pcm.samples)
        if size > self._memo_limit:
            return
        with self._lock:
            if key in self._memo:
                return
            self._memo[key] = pcm
            self._memo_bytes += size
            while self._memo_bytes > self._memo_limit:
                _, old = self._memo.popitem(last=False)
                self._memo_bytes -= len(old.samples)

    async def _synthesize(self, prompt: FilledPrompt, plugin: tts.TTS[Any] | None,
                      plugin_key: str | None = None) -> tuple[Pcm, bool]:
        """The audio, and whether it is in the voice asked for (False: the offline fallback)."""
        voice = self._voice(prompt)
        as_asked = True
        if plugin is not None and any(p.kind in ("text", "digits") for p in prompt.parts):
            as_asked = False
            down_until = self._plugin_down_until.get(plugin.label, 0.0)
            if time.monotonic() >= down_until:
                try:
                    pcm = await asyncio.wait_for(self._synthesize_with_plugin(prompt, plugin, plugin_key), PLUGIN_LIMIT)
                    self._plugin_down_until.pop(plugin.label, None)
                    return pcm, True
                except Exception as e:  # any third-party TTS failure must not end the call
                    self._plugin_down_until[plugin.label] = time.monotonic() + PLUGIN_RETRY_AFTER
                    logger.warning(
                        "TTS %s failed on prompt %d in state '%s' (%s: %s): %r; speaking it with the offline "
                        "voice, and the next %g s of prompts too",
                        plugin.label, prompt.id, prompt.state, type(e).__name__,
                        str(e) or f"no audio within {PLUGIN_LIMIT:g} s", prompt.log_text, PLUGIN_RETRY_AFTER,
                    )
        pcm = await asyncio.to_thread(
            prompt_pcm, prompt.parts, voice, sample_rate=self.sample_rate, cache=self.cache, base_dir=self.base_dir
        )
        return pcm, as_asked

    async def _synthesize_with_plugin(self, prompt: FilledPrompt, plugin: tts.TTS[Any], plugin_key: str | None) -> Pcm:
        pieces: list[Pcm] = []
        for part in prompt.parts:
            if part.kind in ("text", "digits"):
                text = part.value if part.kind == "text" else spoken_digits(part.value)
                hit = None
                if part.kind == "text" and self.cache is not None and plugin_key:
                    hit = self.cache.get(text, plugin_cache_key(plugin_key))
                if hit is not None:
                    pieces.append(await asyncio.to_thread(read_wav, hit))
                elif text.strip():
                    pieces.append(await _plugin_pcm(plugin, text))
            else:
                pieces.append(
                    await asyncio.to_thread(
                        prompt_pcm, (part,), EspeakVoice(self.default_voice), sample_rate=self.sample_rate,
                        base_dir=self.base_dir,
                    )
                )
        return Pcm(b"".join(resample(p, self.sample_rate).samples for p in pieces), self.sample_rate)


def plugin_cache_key(spec: str) -> str:
    """The prompt cache's voice key for texts a plugin spoke: its `module:factory` (the factory
    fixes the plugin's voice and options; a different voice wants a different factory)."""
    return f"tts-plugin:{spec}"


async def bake_with_plugin(texts: Iterable[str], plugin: tts.TTS[Any], spec: str, cache: PromptCache) -> list[Path]:
    """`ivrkit prompts bake --tts`: every distinct fixed text, spoken once by `plugin`, into
    `cache` — calls then play them with no TTS request, latency or cost."""
    paths: list[Path] = []
    seen: set[str] = set()
    for text in texts:
        if text in seen or not is_fixed_text(text):
            continue
        seen.add(text)
        hit = cache.get(text, plugin_cache_key(spec))
        paths.append(hit or cache.put(text, plugin_cache_key(spec), await _plugin_pcm(plugin, text)))
    return paths


async def _plugin_pcm(plugin: tts.TTS[Any], text: str) -> Pcm:
    chunks: list[bytes] = []
    rate = plugin.sample_rate
    channels = plugin.num_channels
    async with plugin.synthesize(text, conn_options=_PLUGIN_ONCE) as stream:
        async for ev in stream:
            rate, channels = ev.frame.sample_rate, ev.frame.num_channels
            chunks.append(bytes(ev.frame.data.cast("B")))
    if not chunks:
        raise RuntimeError("the TTS returned no audio")
    pcm = Pcm(b"".join(chunks), rate)
    if channels > 1:
        arr = pcm.array().reshape(-1, channels).mean(axis=1)
        pcm = Pcm.from_array(arr.round().astype("<i2"), rate)
    return pcm
