"""The offline recogniser: pocketsphinx (the wheel ships the en-us model) restricted to what
the call listens for — no key, no download, no cloud.

Why a grammar: an IVR asks a closed question ("billing, cards or an agent?", "your account
number?"), and a recogniser told the few phrases that answer it is far more accurate and
faster than one guessing free English (`bench/speech.py` measures both, and JSGF against a
keyphrase list). Each `Listen` becomes a JSGF grammar: the option phrases, yes / no, or
`min_digits`..`max_digits` spoken digits ("zero" / "oh" … "nine"; "double four" is left to
cloud recognisers: counting it would loosen the grammar), compiled once per call and reused.

Voice activity: pocketsphinx's own `Endpointer` (WebRTC-style VAD over a 0.3 s window) tells
when the caller starts (`SpeechStarted`, which cuts the prompt) and stops (then the utterance
is decoded and `Speech` emitted). It is in the same wheel — nothing more to install or load —
and `bench/speech.py` compares it with a plain energy gate on the same audio.

pocketsphinx is imported when a call first listens, so a key-only worker never loads it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.errors import Issue
from ivrkit.flow.model import Flow
from ivrkit.voice.audio import Pcm, resample
from ivrkit.voice.listen import HeardEmit

__all__ = ["FAR_END_DECODER", "OTHER_WORDS", "SPHINX_RATE", "SphinxRecognizer", "dictionary_issues", "grammar", "unknown_words"]

logger = logging.getLogger("ivrkit.livekit")

#: The en-us acoustic model's rate.
SPHINX_RATE = 16000
#: Words a far end's prompt is made of besides the phrases a navigate step waits for: short,
#: common and varied in sound, so that other speech is heard as them, not as a phrase.
OTHER_WORDS = ("a", "the", "to", "for", "press", "please", "your", "is", "you", "of", "and", "or", "in", "enter",
               "number", "main", "menu", "account", "our", "thank", "calling", "welcome", "not", "valid", "now",
               "hold", "call", "will", "be", "with", "this", "that", "we", "are", "at", "key", "pound", "star")
#: The far end's recogniser's pocketsphinx settings. Other speech is many short filler words:
#: a low word insertion penalty (`wip`, default 0.65) makes a run of them cost more than the
#: two words of a phrase, so a phrase said among other words is heard as itself. The filler
#: loop makes the search wide — at the default beams a 4 s prompt took up to 6 s of CPU, so a
#: leg's audio queued up behind the decoder (seconds late on the real stack); these beams cut
#: that about 7x. bench/far_words.py measures both against the defaults.
FAR_END_DECODER: Mapping[str, float] = {"wip": 0.01, "beam": 1e-30, "wbeam": 1e-20, "pbeam": 1e-30}
_DIGITS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def grammar(request: Listen) -> str | None:
    """The JSGF grammar for `request`. None: nothing to listen for."""
    items = list(request.phrases)
    rules = []
    if items:
        rules.append("<phrase>")
    if request.digits:
        rules.append("<digits>")
    if not rules:
        return None
    answer = " | ".join(rules)
    if request.other and items:  # the far end's prompt: a phrase among other words, or none
        fill = _other_words(items)
        answer = "[<other>] <phrase> [<other>] | <other>"
    out = ["#JSGF V1.0;", "grammar ivrkit;", f"public <answer> = {answer};"]
    if request.other and items:
        out.append(f"<other> = ({' | '.join(fill)})+;")
    if items:
        out.append(f"<phrase> = {' | '.join(sorted(set(items)))};")
    if request.digits:  # exactly as many digits as the entry takes: what a digits grammar is for
        out.append(f"<digit> = {' | '.join(_DIGITS)};")
        lo, hi = request.min_digits, max(request.max_digits, request.min_digits)
        out.append("<digits> = " + " ".join(["<digit>"] * lo + ["[<digit>]"] * (hi - lo)) + ";")
    return "\n".join(out) + "\n"


def _other_words(phrases: list[str]) -> list[str]:
    """The garbage model of a grammar with `Listen.other`: common words of IVR prompts, less
    any that could spell a phrase's word ("in" + "valid" would absorb "invalid")."""
    words = {w for p in phrases for w in p.split()}
    return sorted(f for f in OTHER_WORDS if not any(f in w for w in words if len(f) > 1 or f == w))


def unknown_words(phrases: list[str] | tuple[str, ...], decoder: Any) -> list[str]:
    """Words of `phrases` that the recogniser's dictionary does not have (they cannot be heard)."""
    return sorted({w for p in phrases for w in p.split() if decoder.lookup_word(w) is None})


def dictionary_issues(flow: Flow, recognizer: SphinxRecognizer) -> list[Issue]:
    """A warning for every `say:` word of `flow` the offline recogniser cannot pronounce (it
    could never be heard), at its state's file:line — what the worker prints at startup. The
    flow checker cannot say it: the dictionary is the recogniser's, and the engine knows none."""
    out: list[Issue] = []
    for state in flow.states.values():
        menu = state.menu
        if menu is None or not state.settings.speech:
            continue
        for key, phrases in menu.words.items():
            missing = unknown_words(phrases, recognizer.decoder())
            if missing:
                file, _, rest = state.where.rpartition(":")[0].rpartition(":")
                line = int(rest) if rest.isdigit() else 0
                out.append(Issue(file or flow.file, line, 1,
                                 f"the offline recogniser has no pronunciation for {', '.join(map(repr, missing))} "
                                 f"(option '{key}' of state '{state.name}'): callers saying it are not understood",
                                 "unknown-word", f"states.{state.name}.menu.options.\"{key}\".say",
                                 "use another word or spelling (cmudict, en-us), or name a cloud STT", "warning"))
    return out


class SphinxRecognizer:
    """One call's offline recogniser (`ivrkit.voice.listen.Recognizer`). The decoder is made on
    the first `start` (about 0.1 s) or ahead of time by `load()` — on a thread, at call start —
    and serves every state of the call: grammars are switched, not rebuilt."""

    sample_rate = SPHINX_RATE

    def __init__(self, *, vad_mode: int = 1, window: float = 0.3, ratio: float = 0.9, pause: float = 0.3,
                 decoder_options: Mapping[str, float] | None = None) -> None:
        # 0 (loose) … 3 (aggressive). 1: on bench/speech.py's eSpeak set, 49/50 menu words clean
        # and 43/50 with line noise, against 46 and 39 with 3 (which clips the ends of words)
        self.vad_mode = vad_mode
        self.window = window
        self.ratio = ratio
        # silence after the endpointer's end that still belongs to the utterance: "card ...
        # payments" is one answer, not "card" (a no-match) and then "payments"
        self.pause = pause
        # pocketsphinx settings beside its defaults: a far end's prompt heard against phrases +
        # other words wants a low word penalty and narrower beams (`FAR_END_DECODER`)
        self.decoder_options = dict(decoder_options or {})
        self._decoder: Any = None
        self._searches: dict[str, str] = {}  # grammar text -> search name
        self._warned: set[str] = set()

    def load(self) -> None:
        """Make the decoder now (blocking: call it on a thread)."""
        if self._decoder is None:
            from pocketsphinx import Decoder  # lazily: key-only calls never load the model

            self._decoder = Decoder(lm=None, loglevel="FATAL", samprate=SPHINX_RATE, **self.decoder_options)

    def decoder(self) -> Any:
        """The pocketsphinx decoder, made (on the calling thread) if need be."""
        self.load()
        return self._decoder

    def start(self, request: Listen, emit: HeardEmit) -> SphinxRecognition:
        self.load()
        text = grammar(request)
        missing = unknown_words(request.phrases, self._decoder)
        if missing:
            key = " ".join(missing)
            if key not in self._warned:
                self._warned.add(key)
                logger.warning("the offline recogniser has no pronunciation for %s: phrases with them cannot be heard",
                               ", ".join(repr(w) for w in missing))
            bad = set(missing)
            kept = tuple(p for p in request.phrases if not set(p.split()) & bad)
            text = grammar(dataclasses.replace(request, phrases=kept))
        search = self._search(text) if text is not None else None
        return SphinxRecognition(self._decoder, search, emit, self)

    def _search(self, text: str) -> str:
        name = self._searches.get(text)
        if name is None:
            name = f"g{len(self._searches)}"
            self._decoder.add_jsgf_string(name, text)
            self._searches[text] = name
        return name

    def endpointer(self) -> Any:
        from pocketsphinx import Endpointer

        return Endpointer(window=self.window, ratio=self.ratio, vad_mode=self.vad_mode, sample_rate=SPHINX_RATE)


class SphinxRecognition:
    """Listening for one request: frames → endpointer → (in speech) decoder → `Speech`."""

    def __init__(self, decoder: Any, search: str | None, emit: HeardEmit, owner: SphinxRecognizer) -> None:
        self._decoder = decoder
        self._search = search
        self._emit = emit
        self._ep = owner.endpointer()
        self._frame = self._ep.frame_bytes
        self._pending = b""
        self._in_utterance = False
        self._closed = False
        self._pause = owner.pause
        self._pause_until: float | None = None

    def feed(self, pcm: Pcm, at: float) -> None:
        if self._closed:
            return
        if pcm.sample_rate != SPHINX_RATE:
            pcm = resample(pcm, SPHINX_RATE)
        self._pending += pcm.samples
        while len(self._pending) >= self._frame:
            frame, self._pending = self._pending[: self._frame], self._pending[self._frame:]
            self._step(frame, at)

    def _step(self, frame: bytes, at: float) -> None:
        # The decoder gets the endpointer's speech frames (its window's worth of pre-roll
        # included), not the raw ones: bench/speech.py measured the raw audio from the
        # endpointer's start to its end decision (trailing silence and all) 14 points worse on
        # menu words, with digits no better.
        was = self._ep.in_speech
        speech = self._ep.process(frame)
        if speech is None:
            if self._pause_until is not None and at >= self._pause_until:
                self._pause_until = None
                self._finish(at)
            return
        if not was and self._pause_until is None:
            self._begin(at)
        self._pause_until = None  # speech again within the pause: the same utterance goes on
        if self._in_utterance:
            self._decoder.process_raw(speech, False, False)
        if not self._ep.in_speech:
            self._pause_until = at + self._pause  # a pause between words, or the end: wait and see

    def _begin(self, at: float) -> None:
        self._emit(SpeechStarted(at))
        if self._search is not None:
            self._decoder.activate_search(self._search)
            self._decoder.start_utt()
            self._in_utterance = True

    def _finish(self, at: float) -> None:
        text = ""
        if self._in_utterance:
            self._decoder.end_utt()
            self._in_utterance = False
            hyp = self._decoder.hyp()
            text = hyp.hypstr if hyp is not None else ""
        self._emit(Speech(text, at))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._in_utterance:
            self._decoder.end_utt()
            self._in_utterance = False
