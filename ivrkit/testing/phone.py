"""`FakeChannel`: the scripted phone a `FlowTester` call runs over.

It records what the call did (prompts played and how long they lasted on the virtual clock,
DTMF sent, transfers, dials, hang-ups) and emits what a real adapter would (`PromptEnded` when
playout would have finished, a far end's audio in 20 ms frames), with no server or audio."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivrkit.channel import CallerInfo, Channel, Hangup, Key, Listen, PromptEnded, Speech, SpeechStarted
from ivrkit.errors import ChannelError
from ivrkit.far_end import ScriptedIvr, ScriptedRecognizer
from ivrkit.prompts import FilledPrompt
from ivrkit.testing.clock import VirtualClock

if TYPE_CHECKING:
    from ivrkit.voice.audio import Pcm


@dataclass(slots=True)
class PlayedPrompt:
    """One prompt as the fake phone played it. `text` is the masked `log_text`."""

    id: int
    state: str
    text: str
    started: float
    duration: float
    barge_in: bool
    ended: float | None = None
    interrupted: bool = False
    hold: bool = False  # hold audio (a dialled party would not hear it)


@dataclass(frozen=True, slots=True)
class SentDtmf:
    digit: str
    at: float


class FakeChannel(Channel):
    """The testing adapter. `fail_transfer`/`fail_dial`/`fail_dtmf`: raise `ChannelError`.
    A prompt plays `seconds_per_char` per character (plus its pauses and audio files), or as
    long as `prompt_seconds(prompt, that estimate)` says."""

    def __init__(
        self,
        clock: VirtualClock | None = None,
        caller: CallerInfo | None = None,
        *,
        seconds_per_char: float = 0.06,
        audio_seconds: float = 1.0,
        fail_transfer: bool = False,
        fail_dial: bool = False,
        fail_dtmf: bool = False,
        prompt_seconds: Callable[[FilledPrompt, float], float] | None = None,
        far_end: Pcm | ScriptedIvr | None = None,
        far_end_hangs_up: bool = False,
    ) -> None:
        self.vclock = clock or VirtualClock()
        super().__init__(clock=self.vclock, caller=caller or CallerInfo())
        self.seconds_per_char = seconds_per_char
        self.audio_seconds = audio_seconds
        self.fail_transfer = fail_transfer
        self.fail_dial = fail_dial
        self.fail_dtmf = fail_dtmf
        #: (prompt, estimate) -> how long it plays; a replay passes the recorded call's durations
        self.prompt_seconds = prompt_seconds
        #: what a dialled party plays once it answers; then silence, or it hangs up
        self.far_end = far_end
        self.far_end_hangs_up = far_end_hangs_up
        self.hearing_far_end = False  # a dialled_audio iterator is open
        self.played: list[PlayedPrompt] = []
        self.sent: list[SentDtmf] = []
        self.transfers: list[str] = []
        self.dials: list[str] = []
        self.bridged: list[float] = []  # when the call bridged the caller to the dialled party
        self.legs_hung_up: list[float] = []  # when the call hung up the dialled party (navigate hang_up)
        self.hung_up = False
        self.closed = False
        self.caller_gone = False
        self._playing: tuple[PlayedPrompt, Any] | None = None
        #: what the call asks to hear now (None: not listening), and every request in order
        self.listening: Listen | None = None
        self.listens: list[Listen | None] = []
        self.unheard: list[str] = []  # what the caller said while the call was not listening
        self._speaking = False

    def duration(self, prompt: FilledPrompt) -> float:
        total = len(prompt.text) * self.seconds_per_char
        for part in prompt.parts:
            if part.kind == "silence":
                total += float(part.value)
            elif part.kind == "audio":
                total += self.audio_seconds
        return total if self.prompt_seconds is None else self.prompt_seconds(prompt, total)

    # --- the port ----------------------------------------------------------------------------

    def play(self, prompt: FilledPrompt) -> None:
        if self._playing is not None:
            self.stop()  # a well-behaved call never overlaps prompts; be safe anyway
        rec = PlayedPrompt(
            prompt.id, prompt.state, prompt.log_text, self.vclock.now(), self.duration(prompt), prompt.barge_in,
            hold=prompt.hold,
        )
        self.played.append(rec)
        timer = self.vclock.call_later(rec.duration, lambda: self._ended(rec, False))
        self._playing = (rec, timer)

    def stop(self) -> None:
        if self._playing is None:
            return
        rec, timer = self._playing
        timer.cancel()
        self._ended(rec, True)

    def _ended(self, rec: PlayedPrompt, interrupted: bool) -> None:
        self._playing = None
        rec.ended = self.vclock.now()
        rec.interrupted = interrupted
        if not self.caller_gone:
            self.emit(PromptEnded(rec.id, interrupted, self.vclock.now()))

    def listen(self, request: Listen | None) -> None:
        self.listening = request
        self.listens.append(request)

    async def send_dtmf(self, digit: str) -> None:
        if self.fail_dtmf:
            raise ChannelError("fake channel: sending DTMF failed (fail_dtmf=True)")
        self.sent.append(SentDtmf(digit, self.vclock.now()))
        if isinstance(self.far_end, ScriptedIvr) and self.dials:
            self.far_end.key(digit, self.vclock.now())

    async def transfer(self, to: str, *, play_dialtone: bool = False) -> None:
        if self.fail_transfer:
            raise ChannelError(f"fake channel: transfer to {to} failed (fail_transfer=True)")
        self.transfers.append(to)

    async def dial(self, to: str, *, trunk: str | None = None, timeout: float = 30.0) -> None:
        if self.fail_dial:
            raise ChannelError(f"fake channel: dialling {to} failed (fail_dial=True)")
        self.dials.append(to)

    async def dialled_audio(self) -> AsyncGenerator[Pcm, None]:
        """The dialled party's audio in 20 ms frames on the virtual clock, from the answer on:
        `far_end` (a `Pcm`, then silence, or the end with `far_end_hangs_up`; or a `ScriptedIvr`
        that answers keys). Frames keep their own timeline: a reader that pauses gets the frames
        it missed at once when it reads again, as from a real media stream's buffer."""
        from ivrkit.voice.audio import Pcm

        if not self.dials:
            raise ChannelError("fake channel: nothing was dialled")
        far = self.far_end
        rate = far.sample_rate if far is not None else 8000
        step = rate // 50
        start = self.vclock.now()
        self.hearing_far_end = True
        try:
            if isinstance(far, ScriptedIvr):
                async with contextlib.aclosing(far.audio(self.vclock)) as frames:
                    async for pcm in frames:
                        yield pcm
                return
            n = 0
            while True:
                due = start + (n + 1) * 0.02
                if due > self.vclock.now():
                    await self.vclock.sleep(due - self.vclock.now())
                chunk = far.samples[n * step * 2:(n + 1) * step * 2] if far is not None else b""
                if not chunk and self.far_end_hangs_up:
                    return
                yield Pcm(chunk + b"\0" * (step * 2 - len(chunk)), rate)
                n += 1
        finally:
            self.hearing_far_end = False

    def dialled_recognizer(self) -> ScriptedRecognizer:
        """A `ScriptedIvr` far end's words, as a recogniser would hear them (`ScriptedRecognizer`)."""
        if not isinstance(self.far_end, ScriptedIvr):
            return super().dialled_recognizer()  # type: ignore[return-value]
        return ScriptedRecognizer(self.far_end)

    async def bridge(self) -> None:
        if not self.dials:
            raise ChannelError("fake channel: nothing was dialled to bridge to")
        self.bridged.append(self.vclock.now())

    async def hang_up_dialled(self) -> None:
        if not self.dials:
            raise ChannelError("fake channel: nothing was dialled to hang up")
        self.legs_hung_up.append(self.vclock.now())

    async def hangup(self) -> None:
        self.hung_up = True
        self.stop()

    async def aclose(self) -> None:
        self.closed = True

    # --- the scripted caller -----------------------------------------------------------------

    def press(self, digit: str) -> None:
        """The caller presses one key now (normalised like a real adapter: A-D upper case)."""
        self.emit(Key(digit.upper(), self.vclock.now()))

    def start_speaking(self) -> bool:
        """The caller starts speaking now. Heard (True: `SpeechStarted` emitted) only while the
        call listens, as a real adapter's voice activity detector is fed only then."""
        self._speaking = self.listening is not None
        if self._speaking:
            self.emit(SpeechStarted(self.vclock.now()))
        return self._speaking

    def finish_speaking(self, text: str) -> bool:
        """The caller stops speaking; the recogniser heard `text` (as given: the fake does not
        restrict it to the grammar, so out-of-grammar words reach the call as a no-match)."""
        heard, self._speaking = self._speaking or self.listening is not None, False
        if heard:
            self.emit(Speech(text, self.vclock.now()))
        else:
            self.unheard.append(text)
        return heard

    def caller_hangup(self, reason: str = "caller") -> None:
        """The caller hangs up now: `Hangup` is emitted once, and no prompt end after it.
        (`ConsoleChannel.caller_hangup` is the same call; the call then ends as "caller_hangup".)"""
        if not self.caller_gone:
            self.emit(Hangup(self.vclock.now(), reason))
            self.caller_gone = True

    @property
    def sent_digits(self) -> str:
        return "".join(s.digit for s in self.sent)
