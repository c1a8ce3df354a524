"""The offline default voice: eSpeak NG through ctypes, plus digit-by-digit prompt text.

Why eSpeak NG: a fresh machine with no API key must still speak prompts. The
`espeakng-loader` wheel ships libespeak-ng and its voice data, so there is no apt step; this
module loads that library with ctypes and synthesizes text to 16-bit mono PCM in-process.

libespeak-ng keeps all its state in globals (one current voice, one callback, one output
buffer), so every voice object in the process shares one `_Engine`, initialised lazily on
first use and guarded by one lock. Synthesis is CPU-bound and synchronous; async callers run
it in a thread (see `ivrkit.livekit.tts`).

This module is engine-side: it imports nothing from LiveKit and never reads the clock.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ivrkit.errors import SpeechError
from ivrkit.voice.audio import Pcm

__all__ = ["DEFAULT_VOICE", "ESPEAK_SAMPLE_RATE", "EspeakVoice", "SpeechError", "spoken_digits"]

DEFAULT_VOICE = "en-us"
ESPEAK_SAMPLE_RATE = 22050
"""What libespeak-ng produces; checked against `espeak_Initialize`'s answer at load time."""

_INSTALL_HINT = "install it with `pip install espeakng-loader==0.2.4` (it bundles the library)"

# From espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit() inside the library
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_RATE_NORMAL = 175
_RATE_MIN, _RATE_MAX = 80, 450
_EE_OK, _EE_NOT_FOUND = 0, 2

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _VoiceProperties(ctypes.Structure):
    """espeak_VOICE from speak_lib.h, used to select a voice by language ('en-gb')."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Engine:
    """The process-wide libespeak-ng handle. Use only while holding `_LOCK`."""

    def __init__(self) -> None:
        try:
            import espeakng_loader  # type: ignore[import-untyped]
        except ImportError:
            raise SpeechError(
                f"the offline voice needs the espeakng-loader package; {_INSTALL_HINT}"
            ) from None
        lib_path = espeakng_loader.get_library_path()
        try:
            lib = ctypes.CDLL(lib_path)
            data_dir = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as e:
            raise SpeechError(
                f"cannot load libespeak-ng from {lib_path}: {e}; reinstall it with "
                "`pip install --force-reinstall espeakng-loader==0.2.4`"
            ) from None
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
        ]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_VoiceProperties)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p

        # The path is the folder holding `espeak-ng-data` (the library appends that name).
        parent = str(Path(data_dir).parent).encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, parent, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise SpeechError(
                f"libespeak-ng failed to initialise with its voice data in {data_dir} "
                f"(espeak_Initialize returned {rate}); reinstall with "
                "`pip install --force-reinstall espeakng-loader==0.2.4`"
            )
        if rate != ESPEAK_SAMPLE_RATE:
            raise SpeechError(
                f"libespeak-ng reports {rate} Hz output, ivrkit expects {ESPEAK_SAMPLE_RATE} Hz"
            )
        self.lib = lib
        self.version = (lib.espeak_Info(None) or b"?").decode(errors="replace")
        self._chunks: list[bytes] = []
        # Kept on the instance: ctypes callbacks must stay referenced while C may call them.
        self._callback = _SYNTH_CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], n: int, _events: int | None) -> int:
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0  # 0 = continue synthesis

    def synthesize(self, text: str, voice: str, rate: int) -> bytes:
        if voice != self._voice:
            # A voice file name ('en-us', 'de') first, then a language code ('en-gb', 'fr-fr').
            err = self.lib.espeak_SetVoiceByName(voice.encode())
            if err != _EE_OK:
                wanted = _VoiceProperties(languages=voice.encode())
                err = self.lib.espeak_SetVoiceByProperties(ctypes.byref(wanted))
            if err != _EE_OK:
                why = "unknown voice" if err == _EE_NOT_FOUND else f"error {err}"
                raise SpeechError(
                    f"eSpeak NG voice {voice!r}: {why}; use a language code such as "
                    "'en-us', 'en-gb', 'de', 'fr', 'es' (all: the 'Identifier' column of "
                    "https://github.com/espeak-ng/espeak-ng/blob/master/docs/languages.md)"
                )
            self._voice = voice
        self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        encoded = text.encode("utf-8")
        self._chunks = []
        err = self.lib.espeak_Synth(
            encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        chunks, self._chunks = self._chunks, []
        if err != _EE_OK:
            # No text in the message: a prompt may read back sensitive digits.
            raise SpeechError(
                f"eSpeak NG failed to synthesise a {len(text)}-character text (error {err})"
            )
        return b"".join(chunks)


@functools.cache
def _loader_version() -> str:
    try:
        return metadata.version("espeakng-loader")
    except metadata.PackageNotFoundError:
        return "unknown"


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    """The shared engine; call with `_LOCK` held. Loads the library on first use."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


@dataclass(frozen=True, slots=True)
class EspeakVoice:
    """One eSpeak NG voice setting: `voice` is a language/voice name, `rate` words per minute.

    Cheap to create; the library is loaded on the first `synthesize` (or `load`). Safe to use
    from several threads: calls are serialised, as libespeak-ng is one global engine.
    """

    voice: str = DEFAULT_VOICE
    rate: int | None = None
    sample_rate: int = field(default=ESPEAK_SAMPLE_RATE, init=False)

    def __post_init__(self) -> None:
        if not self.voice or not self.voice.replace("-", "").replace("+", "").isalnum():
            raise SpeechError(f"eSpeak NG voice name {self.voice!r} is not valid (e.g. 'en-us')")
        if self.rate is not None and not _RATE_MIN <= self.rate <= _RATE_MAX:
            raise SpeechError(
                f"eSpeak NG rate {self.rate} words/min is out of range {_RATE_MIN}-{_RATE_MAX}"
            )

    @property
    def cache_key(self) -> str:
        """Identifies the audio this voice produces, for `ivrkit.voice.cache.PromptCache`.

        Includes the espeakng-loader version so an upgrade of the library re-bakes prompts,
        and needs no library load (a cache hit stays cheap).
        """
        version = _loader_version()
        return f"espeak-ng/{version}/{self.voice}/rate={self.rate or _RATE_NORMAL}"

    def load(self) -> str:
        """Load the library now (e.g. at worker start, to fail early); returns its version."""
        with _LOCK:
            return _engine().version

    def synthesize(self, text: str) -> Pcm:
        """Synthesize `text` to mono 16-bit PCM at 22,050 Hz. Raises `SpeechError` on failure."""
        with _LOCK:
            samples = _engine().synthesize(text, self.voice, self.rate or _RATE_NORMAL)
        return Pcm(samples, ESPEAK_SAMPLE_RATE)


_KEY_NAMES = {"*": "star", "#": "pound"}
_SEPARATORS = frozenset(" -.()/")


def spoken_digits(s: str) -> str:
    """Text that makes any TTS read `s` key by key: "1234#" -> "1, 2, 3, 4, pound".

    For account numbers, PINs read back and phone numbers, where "1234" must not be read as
    "one thousand two hundred...". Keys A-D are spoken as letters; spaces, dashes, dots,
    slashes and brackets are formatting and are skipped; anything else is refused rather than
    guessed, so no digit is invented or lost.
    """
    words: list[str] = []
    for i, ch in enumerate(s):
        if ch.isascii() and ch.isdigit():
            words.append(ch)
        elif ch in _KEY_NAMES:
            words.append(_KEY_NAMES[ch])
        elif ch.upper() in "ABCD" and ch.isalpha():
            words.append(ch.upper())
        elif ch == "+" and not words:
            words.append("plus")
        elif ch in _SEPARATORS:
            continue
        else:
            # The string itself stays out of the message: it may be a PIN.
            raise SpeechError(
                f"cannot read character {ch!r} (position {i + 1}) key by key: "
                "only 0-9, *, #, A-D, a leading + and separators ' -.()/' are allowed"
            )
    return ", ".join(words)
