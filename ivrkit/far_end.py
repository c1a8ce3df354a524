"""A scripted legacy IVR at the far end of a dial, for flows that `navigate:` one offline.

Why one model for tests and the console: a navigation flow is developed against the menus it
will meet (`ivrkit console flow.yaml --far-end far.yaml`) and then tested against the very same
menus on the virtual clock (`FakeChannel(far_end=...)`), so what was tried by hand is what the
test holds. `ScriptedIvr` plays a menu's prompt, collects the keys sent to it, and answers
with the next menu (or "invalid entry" and the same menu again). `ScriptedRecognizer` is the
recogniser a navigate step's words go through: it hears the text of each prompt when that
prompt has been played out, exactly as written (no grammar, no errors).

The far end file (`ivrkit.far_end_file.load_far_end`), every problem reported at its file:line::

    start: main
    invalid: "Invalid entry."         # optional: said after keys no entry starts with
    reply_after: 300ms                # optional: from the last key to the next prompt
    voice: en-us                      # optional: the eSpeak NG voice of its prompts
    menus:
      main:
        say: "Welcome to Acme. For billing press 2."
        keys: {"2": billing}          # keys entered -> the next menu ("4321#" works too)
      billing:
        say: "Your balance is twelve dollars."
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.clock import Clock

if TYPE_CHECKING:
    from ivrkit.channel import HeardEmit
    from ivrkit.voice.audio import Pcm

__all__ = ["ScriptedIvr", "ScriptedRecognizer", "far_end_speech", "silent_audio"]

#: Frames of the far end's audio, as a media stream delivers them.
FRAME = 0.02


class _Play(NamedTuple):
    start: float
    pcm: Pcm
    text: str  # "" when only the audio is known

    @property
    def end(self) -> float:
        return self.start + self.pcm.duration


class ScriptedIvr:
    """A legacy IVR at the far end of a dial, for `FakeChannel(far_end=...)` and the console:
    menus, each a prompt (text, spoken by eSpeak NG, or a `Pcm`) and what the keys entered after
    it lead to. Keys accumulate until they spell an entry of the menu ("1", or "4321#"); then
    the next menu's prompt plays `reply_after` seconds later. A sequence no entry starts with
    plays `invalid` (if given) and the menu's prompt again. `keys` records every key: (digit,
    time, menu, prompt still playing); `said` every prompt begun, (time, text). `on_say` is
    told each prompt's text as it begins (the console prints it).

        ivr = ScriptedIvr({"main": ("For billing press 1.", {"1": "billing"}),
                           "billing": ("Enter your account number.", {})}, "main")
    """

    def __init__(self, menus: Mapping[str, tuple[Pcm | str, Mapping[str, str]]], start: str, *,
                 invalid: Pcm | str | None = None, reply_after: float = 0.3, voice: str = "en-us",
                 sample_rate: int = 8000) -> None:
        if start not in menus:
            raise ValueError(f"no menu {start!r}")
        for name, (_, entries) in menus.items():
            for target in entries.values():
                if target not in menus:
                    raise ValueError(f"menu {name!r} leads to {target!r}, which is not a menu")

        def audio(prompt: Pcm | str) -> tuple[Pcm, str]:
            if isinstance(prompt, str):
                return far_end_speech(prompt, voice=voice, sample_rate=sample_rate), prompt
            return prompt, ""

        self.menus = {name: (*audio(prompt), entries) for name, (prompt, entries) in menus.items()}
        self.menu = start
        self.invalid = audio(invalid) if invalid is not None else None
        self.reply_after = reply_after
        self.sample_rate = self.menus[start][0].sample_rate
        self.keys: list[tuple[str, float, str, bool]] = []
        self.said: list[tuple[float, str]] = []
        self.on_say: Callable[[str], None] | None = None
        #: where the audio heard so far ends (the recogniser hears prompts played out by then)
        self.heard_to = 0.0
        self._plays: list[_Play] = []  # in time order
        self._typed = ""

    def answered(self, at: float) -> None:
        pcm, text, _ = self.menus[self.menu]
        self._plays = [_Play(at, pcm, text)]
        self.heard_to = at

    def playing(self, at: float) -> bool:
        return any(p.start <= at < p.end for p in self._plays)

    def prompts_ended(self, after: float, until: float) -> list[tuple[float, str]]:
        """(end, text) of the prompts whose audio ended in (after, until]."""
        return [(p.end, p.text) for p in self._plays if after < p.end <= until]

    def key(self, digit: str, at: float) -> None:
        self.keys.append((digit, at, self.menu, self.playing(at)))
        self._typed += digit
        entries = self.menus[self.menu][2]
        if self._typed in entries:
            self.menu, self._typed = entries[self._typed], ""
            pcm, text, _ = self.menus[self.menu]
            self._plays.append(_Play(at + self.reply_after, pcm, text))
        elif not any(entry.startswith(self._typed) for entry in entries):
            self._typed = ""
            then = at + self.reply_after
            if self.invalid is not None:
                self._plays.append(_Play(then, *self.invalid))
                then += self.invalid[0].duration
            pcm, text, _ = self.menus[self.menu]
            self._plays.append(_Play(then, pcm, text))

    def frame(self, at: float) -> Pcm:
        """The 20 ms of audio that starts at `at`: the latest prompt begun by then, or silence."""
        from ivrkit.voice.audio import Pcm

        step = self.sample_rate // 50
        self.heard_to = max(self.heard_to, at + FRAME)
        for play in reversed(self._plays):
            if play.start <= at + 1e-9:
                if not any(start == play.start for start, _ in self.said):
                    self.said.append((play.start, play.text))
                    if self.on_say is not None:
                        self.on_say(play.text or "(a recorded prompt)")
                offset = round((at - play.start) * self.sample_rate)
                chunk = play.pcm.samples[offset * 2:(offset + step) * 2]
                return Pcm(chunk + b"\0" * (step * 2 - len(chunk)), self.sample_rate)
        return Pcm(b"\0\0" * step, self.sample_rate)

    async def audio(self, clock: Clock) -> AsyncGenerator[Pcm, None]:
        """Its audio from the answer on, in 20 ms frames paced by `clock`. Frames keep their own
        timeline: a reader that pauses gets the frames it missed at once when it reads again,
        as from a real media stream's buffer."""
        start = clock.now()
        if not self._plays:  # heard again (a second navigate state): the same call goes on
            self.answered(start)
        n = 0
        while True:
            due = start + (n + 1) * FRAME
            if due > clock.now():
                await clock.sleep(due - clock.now())
            yield self.frame(start + n * FRAME)
            n += 1


async def silent_audio(clock: Clock, sample_rate: int = 8000) -> AsyncGenerator[Pcm, None]:
    """A party that answers and says nothing: silent 20 ms frames paced by `clock`."""
    from ivrkit.voice.audio import Pcm

    start, n = clock.now(), 0
    while True:
        due = start + (n + 1) * FRAME
        if due > clock.now():
            await clock.sleep(due - clock.now())
        yield Pcm(b"\0\0" * (sample_rate // 50), sample_rate)
        n += 1


class ScriptedRecognizer:
    """The recogniser of a `ScriptedIvr`'s words (`ivrkit.voice.listen.Recognizer`): each
    prompt is heard, as written, once the frames fed have reached its end."""

    def __init__(self, ivr: ScriptedIvr) -> None:
        self.ivr = ivr
        self.sample_rate = ivr.sample_rate

    def start(self, request: Listen, emit: HeardEmit) -> _ScriptedRecognition:
        return _ScriptedRecognition(self.ivr, emit)


class _ScriptedRecognition:
    def __init__(self, ivr: ScriptedIvr, emit: HeardEmit) -> None:
        self._ivr = ivr
        self._emit: HeardEmit | None = emit
        self._done_to = ivr.heard_to  # prompts that ended before listening began are not heard

    def feed(self, pcm: Pcm, at: float) -> None:
        until = self._ivr.heard_to
        for _, text in self._ivr.prompts_ended(self._done_to, until):
            if self._emit is None:
                return
            self._emit(SpeechStarted(at))
            self._emit(Speech(text, at))
        self._done_to = until

    def close(self) -> None:
        self._emit = None


def far_end_speech(text: str, *, voice: str = "en-us", before: float = 0.4, beep_after: float | None = None,
                   sample_rate: int = 8000) -> Pcm:
    """Audio for a dialled party (`FlowTester(far_end=...)`): `before` seconds of silence, then
    `text` spoken by the offline eSpeak NG voice, then (`beep_after`: seconds later) a 1 kHz,
    0.5 s voicemail beep. "Hello?" answers as a person; a long greeting as a machine."""
    from ivrkit.voice.audio import concat, resample, silence, tone
    from ivrkit.voice.speech import EspeakVoice

    parts = [silence(before, sample_rate=sample_rate), resample(EspeakVoice(voice).synthesize(text), sample_rate)]
    if beep_after is not None:
        parts += [silence(beep_after, sample_rate=sample_rate), tone(1000, 0.5, sample_rate=sample_rate, amplitude=0.3)]
    return concat(parts, sample_rate=sample_rate)
