"""Driving the far end's IVR: the steps of a `navigate:` state, on the dialled leg's audio.

Why energy and not words: a legacy IVR's prompt ends in silence, and keys pressed before that
silence are the usual failure of navigators (pressed too early, talked over). `listen` waits
for the prompt to have been spoken and then to have ended: `MIN_SPEECH` of voice in a row, then
`silence` without voice. A frame is voice as in AMD: its mean absolute 16-bit sample is at
least `THRESHOLD`. `expect` waits for speech or a steady tone (the voicemail-beep detector) to
begin. Timeouts are clock time; silence and speech are audio time, counted in 20 ms frames.

The leg's audio is one iteration for the whole state (one subscription), read only while a
step listens. Frames that came in while keys were being sent are read by the next step, in
order, so a prompt that started during the keys is heard from its start.

Words (`expect: {say: [...], unexpected: [...]}`), when the channel has a recogniser for the
dialled leg: the same frames go to a recognition whose grammar is the step's phrases plus
"other words" (`Listen.other`), so a prompt that says something else is heard as something
else rather than forced onto a phrase. An utterance holding a `say` phrase passes the step;
one holding an `unexpected` phrase fails it at once; any other utterance ("Welcome to Acme")
is traced and waited past, until `timeout`. What was heard goes to `navigate_heard`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.clock import Clock
from ivrkit.errors import HookTimeout
from ivrkit.flow.model import Navigate, NavStep
from ivrkit.hooks import run_limited
from ivrkit.spoken import choose

if TYPE_CHECKING:
    from ivrkit.channel import Recognizer
    from ivrkit.voice.audio import Pcm
    from ivrkit.voice.beep import BeepDetector

#: Voice in a row that counts as the far end speaking (AMD's min_word_length).
MIN_SPEECH = 0.1
#: Mean absolute sample value at and above which a 20 ms frame is voice (AMD's silence_threshold).
THRESHOLD = 256

Record = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Navigated:
    """How the steps went: all done, or the 1-based step that failed and why; `heard`: the
    last phrase (or other words) a words step heard, None when none listened for words."""

    failed_step: int = 0
    reason: str = ""
    heard: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_step == 0


async def navigate(spec: Navigate, audio: AsyncGenerator[Pcm, None], send: Callable[[NavStep], Awaitable[None]],
                   clock: Clock, record: Record, recognizer: Recognizer | None = None) -> Navigated:
    """Run the steps in order; stop at the first that fails. Closes `audio` when done.
    `recognizer` hears the words steps (the caller checks there is one when a step needs it)."""
    heard: str | None = None
    async with aclosing(audio) as frames:
        ear = _Ear(frames, clock)

        def failed(number: int, step: NavStep, reason: str) -> Navigated:
            record("navigate_step", {"step": number, "do": step.kind, "ok": False, "why": reason, "where": step.where})
            return Navigated(number, reason, heard)

        for number, step in enumerate(spec.steps, 1):
            started = clock.now()
            if step.kind == "send":
                await send(step)
                continue
            if step.kind == "pause":
                await clock.sleep(step.seconds)
                continue
            if step.kind == "expect" and step.expect == "words":
                if recognizer is None:
                    raise ValueError("a words step needs a recogniser")
                said = _Said(step)
                try:
                    await run_limited(ear.words(said, recognizer, record, number), clock=clock, timeout=step.timeout)
                except HookTimeout:
                    pass
                heard = said.heard if said.heard is not None else heard
                if said.reason:
                    return failed(number, step, said.reason)
                record("navigate_step", {"step": number, "do": "expect", "ok": True, "said": said.heard,
                                         "took_ms": round((clock.now() - started) * 1000)})
                continue
            wait = ear.prompt_ended(step.silence) if step.kind == "listen" else ear.begins(step.expect)
            try:
                got = await run_limited(wait, clock=clock, timeout=step.timeout)
            except HookTimeout:
                what = "prompt ended" if step.kind == "listen" else f"{step.expect} began"
                return failed(number, step, f"no {what} within {step.timeout:g} s")
            if got is None:
                return failed(number, step, "the far end hung up")
            record("navigate_step", {"step": number, "do": step.kind, "ok": True, "heard_ms": got,
                                     "took_ms": round((clock.now() - started) * 1000)})
    return Navigated(heard=heard)


class _Said:
    """What a words step heard: a `say` phrase (passed), an `unexpected` one, other words, or
    nothing; `reason` says why it failed ("" when it passed)."""

    def __init__(self, step: NavStep) -> None:
        self.step = step
        self.heard: str | None = None  # the phrase, or the last other words heard
        self.decided = False
        self.hung_up = False

    def utterance(self, text: str) -> bool:
        """One utterance recognised; True when it decides the step."""
        phrase = choose({p: (p,) for p in self.step.say + self.step.unexpected}, text)
        self.heard = phrase if phrase is not None else text
        self.decided = phrase is not None
        return self.decided

    @property
    def reason(self) -> str:
        if self.decided:
            return "" if self.heard in self.step.say else f"heard {self.heard!r}"
        if self.hung_up:
            return "the far end hung up"
        waited = f"no {' / '.join(repr(p) for p in self.step.say)} heard within {self.step.timeout:g} s"
        if self.heard is None:
            return waited
        return waited + (f" (heard {self.heard!r})" if self.heard else " (heard other words)")


class _Ear:
    """Classifies the leg's frames as they are read: voice or not, and a tone or not."""

    def __init__(self, frames: AsyncIterator[Pcm], clock: Clock) -> None:
        self._frames = frames
        self._clock = clock
        self._tone: BeepDetector | None = None

    async def _next(self) -> tuple[int, Pcm] | None:
        """The next frame and its mean absolute sample value (None: the far end hung up)."""
        from array import array

        try:
            pcm = await self._frames.__anext__()
        except StopAsyncIteration:
            return None
        samples = array("h")
        samples.frombytes(pcm.samples[:len(pcm.samples) // 2 * 2])
        return (sum(map(abs, samples)) // max(len(samples), 1)), pcm

    async def prompt_ended(self, silence: float) -> int | None:
        """After speech, `silence` seconds without voice; returns the speech heard, in ms."""
        speech = run = quiet = 0.0
        while True:
            got = await self._next()
            if got is None:
                return None
            level, pcm = got
            ms = pcm.duration
            if level >= THRESHOLD:
                run += ms
                quiet = 0.0
                if run >= MIN_SPEECH:
                    speech += ms if speech else run
            else:
                run = 0.0
                quiet += ms
                if speech and quiet >= silence - 1e-9:
                    return round(speech * 1000)

    async def begins(self, what: str) -> int | None:
        """Until speech (`MIN_SPEECH` of voice) or a steady tone begins; returns ms waited in audio."""
        from ivrkit.voice.beep import BeepDetector

        tone = self._tone = BeepDetector()
        waited = run = 0.0
        while True:
            got = await self._next()
            if got is None:
                return None
            level, pcm = got
            waited += pcm.duration
            if what == "tone":
                tone.feed(pcm.samples, pcm.sample_rate)
                if tone.heard is not None:
                    return round(waited * 1000)
                continue
            run = run + pcm.duration if level >= THRESHOLD else 0.0
            if run >= MIN_SPEECH - 1e-9:
                return round(waited * 1000)

    async def words(self, said: _Said, recognizer: Recognizer, record: Record, number: int) -> None:
        """Feed frames to a recognition of the step's phrases until an utterance decides it
        (or the far end hangs up: then `said.reason` says so)."""
        step = said.step
        events: list[SpeechStarted | Speech] = []
        recognition = recognizer.start(Listen(phrases=step.say + step.unexpected, other=True), events.append)
        try:
            while True:
                got = await self._next()
                if got is None:
                    said.hung_up = True
                    return
                recognition.feed(got[1], self._clock.now())
                for event in events:
                    if isinstance(event, Speech):
                        if said.utterance(event.text):
                            return
                        record("navigate_heard", {"step": number, "text": event.text, "matched": False})
                events.clear()
        finally:
            recognition.close()
