"""The console phone's adapter: the Channel port with the keyboard as keypad and the terminal as speaker.

`ConsoleChannel` is an adapter like the LiveKit one: the same `Call` runtime drives it, so what
a flow does here it does on a phone. It takes its clock and output stream from outside — the
CLI gives it the event loop's clock and stdout, the tests a `VirtualClock` and a StringIO — so
the very same adapter code runs in the contract tests without a real second passing.

A prompt is printed (its `log_text`: sensitive values masked) and, when a voice is given,
synthesized for the sound card and/or the call recording. It "plays" for as long as the
audio lasts, or, with no audio, for a simulated speaking time (0.06 s per character by
default; 0 makes prompts instant) — so type-ahead and barge-in behave as on a phone.

`ivrkit.console.cli.run_console(ConsoleOptions)` wires this to a flow, the keyboard, a key
script and the sound card for `ivrkit console`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TextIO

from ivrkit.channel import (
    DTMF_KEYS,
    CallerInfo,
    Channel,
    Emit,
    Hangup,
    HeardEmit,
    Key,
    Listen,
    PromptEnded,
    Recognizer,
    Speech,
    SpeechStarted,
)
from ivrkit.clock import Clock, TimerHandle
from ivrkit.console.audio import CallRecorder, PromptSynthesizer, Speaker, simulated_duration
from ivrkit.console.view import ConsoleView
from ivrkit.errors import AudioFileError, ChannelError, SpeechError
from ivrkit.far_end import ScriptedIvr, ScriptedRecognizer, silent_audio
from ivrkit.prompts import MASK, FilledPrompt
from ivrkit.voice.audio import Pcm

__all__ = ["CONSOLE_CALLER", "ConsoleChannel", "HANGUP_CHARS"]

#: What the console caller looks like to hooks: a fixed, obviously fake identity.
CONSOLE_CALLER = CallerInfo(number="console", called_number="ivrkit", call_id="console", identity="console")

#: Keyboard input that hangs up: q, Ctrl-C (when it arrives as a character), Ctrl-D.
HANGUP_CHARS: Mapping[str, str] = {"q": "caller", "Q": "caller", "\x03": "Ctrl-C", "\x04": "Ctrl-D"}
_IGNORED_CHARS = frozenset({" ", "\t", "\r", "\n"})


class ConsoleChannel(Channel):
    """A phone in the terminal. Drive it with `press(char)` (keyboard) and `caller_hangup()`.

    Example (tests use a VirtualClock and io.StringIO the same way)::

        channel = ConsoleChannel(clock=LoopClock(), out=sys.stdout)
        call = Call(FlowMachine(flow), channel)
        ...  # keyboard reader calls channel.press(ch) for every typed character
    """

    def __init__(
        self,
        *,
        clock: Clock,
        out: TextIO,
        view: ConsoleView | None = None,
        caller: CallerInfo = CONSOLE_CALLER,
        synthesizer: PromptSynthesizer | None = None,
        speaker: Speaker | None = None,
        recorder: CallRecorder | None = None,
        seconds_per_char: float = 0.06,
        on_end: Callable[[str], None] | None = None,
        far_end: ScriptedIvr | None = None,
    ) -> None:
        super().__init__(clock=clock, caller=caller)
        self.view = view or ConsoleView(out, clock)
        self.synthesizer = synthesizer
        self.speaker = speaker
        self.recorder = recorder
        self.seconds_per_char = seconds_per_char
        self.on_end = on_end
        self.ended: str | None = None  # why the call is over, once it is
        self.keys_sent: list[str] = []  # DTMF the flow sent to the far end (send_dtmf)
        self._playing: FilledPrompt | None = None
        self._timer: TimerHandle | None = None
        self._voice_failed = False
        self._connected_callbacks: list[Callable[[], None]] = []
        self._early: list[str] = []  # typed before a call connected: delivered on connect
        self.listening: Listen | None = None  # what the call listens for now (None: keys only)
        #: the party a dial reaches (`--far-end`): its prompts are shown as it says them and the
        #: keys the flow sends reach it; None: a dial is answered by silence
        self.far_end = far_end
        self._dialled = False
        if far_end is not None:
            far_end.on_say = lambda text: self.view.notice(f"far end says: {text}")

    # --- wiring -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._emit is not None

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Run `callback` once a call has connected (at once if it already has): when the key
        script may start pressing keys."""
        if self.connected:
            callback()
        else:
            self._connected_callbacks.append(callback)

    def connect(self, emit: Emit) -> None:
        super().connect(emit)
        callbacks, self._connected_callbacks = self._connected_callbacks, []
        for cb in callbacks:
            cb()
        early, self._early = self._early, []
        for char in early:
            self.press(char)

    # --- caller side: keyboard and script ---------------------------------------------------

    def press(self, char: str) -> bool:
        """One character typed by the caller. Phone keys become DTMF; q / Ctrl-C / Ctrl-D hang
        up; whitespace is ignored; anything else gets a message and is NOT sent. Returns True
        when a key was sent."""
        if self.ended is not None:
            return False
        if not self.connected:
            self._early.append(char)  # never lose a key typed a moment too early
            return False
        if char in HANGUP_CHARS:
            self.caller_hangup(HANGUP_CHARS[char])
            return False
        if char in _IGNORED_CHARS:
            return False
        digit = char.upper()
        if len(digit) != 1 or digit not in DTMF_KEYS:
            self.view.invalid_key(char)
            return False
        self.view.key(digit)
        self.emit(Key(digit, self.clock.now()))
        return True

    def say(self, text: str) -> bool:
        """The caller says `text` (typed speech). Heard only while the call listens — a state
        that takes speech — as on a phone; otherwise a notice says why nothing happened."""
        if self.ended is not None or not self.connected:
            return False
        if self.listening is None:
            self.view.notice("not heard: this state takes keys only (no input: [dtmf, speech])")
            return False
        now = self.clock.now()
        self.emit(SpeechStarted(now))
        self.emit(Speech(text, now))
        return True

    def listen(self, request: Listen | None) -> None:
        self.listening = request  # the view shows it from the call's `listen` record

    def caller_hangup(self, reason: str = "caller") -> None:
        """The caller hangs up: audio stops, `Hangup` is emitted, and nothing after it."""
        if self.ended is not None or not self.connected:
            return
        self._silence()
        self._end(f"caller hung up ({reason})" if reason != "caller" else "caller hung up")
        self.emit(Hangup(self.clock.now(), reason))

    # --- the port ---------------------------------------------------------------------------

    def play(self, prompt: FilledPrompt) -> None:
        if self.ended is not None:
            # Nothing can be heard any more; keep the one-PromptEnded rule without emitting
            # after Hangup: the call is over and does not wait for it.
            return
        if self._playing is not None:
            self.stop()
        self.view.prompt_for(prompt.state)
        pcm = self._synthesize(prompt)
        if pcm is not None:
            duration = pcm.duration
            if self.speaker is not None:
                self.speaker.play(pcm)
            if self.recorder is not None:
                self.recorder.play(pcm, self.clock.now(), bleep=MASK in prompt.log_text)
        else:
            duration = simulated_duration(prompt, self.seconds_per_char)
        self.view.prompt(prompt.log_text, barge_in=prompt.barge_in, duration=duration, id=prompt.id)
        self._playing = prompt
        self._timer = self.clock.call_later(duration, lambda: self._finished(prompt.id))

    def stop(self) -> None:
        prompt = self._playing
        if prompt is None:
            return
        self._silence()
        if self.ended is not None:
            return
        self.view.prompt_cut()
        self.emit(PromptEnded(prompt.id, interrupted=True, at=self.clock.now()))

    async def send_dtmf(self, digit: str) -> None:
        if len(digit) != 1 or digit.upper() not in DTMF_KEYS:
            raise ChannelError(f"cannot send DTMF {digit!r}: only one of 0-9, *, #, A-D at a time")
        self.keys_sent.append(digit.upper())
        self.view.notice("sent DTMF *" if self.sensitive else f"sent DTMF {digit.upper()}")
        if self.far_end is not None and self._dialled:
            self.far_end.key(digit.upper(), self.clock.now())

    async def transfer(self, to: str, *, play_dialtone: bool = False) -> None:
        # The console has no second line to hand the caller to: it shows where the call would
        # go, and the call ends as a transferred call does.
        self.view.notice(f"transfer to {to} (the console phone cannot bridge; the call ends here)")
        self._silence()
        self._end(f"transferred to {to}")

    async def dial(self, to: str, *, trunk: str | None = None, timeout: float = 30.0) -> None:
        who = "the scripted far end (--far-end)" if self.far_end is not None else "silence (no --far-end)"
        self.view.notice(f"dial {to}: answered at once by {who}")
        self._dialled = True

    def dialled_audio(self) -> AsyncGenerator[Pcm, None]:
        """The scripted far end's audio on this call's clock, or silence with no `--far-end`
        (AMD then hears `silence`, a navigate step times out to its `on_fail`)."""
        if not self._dialled:
            raise ChannelError("cannot hear the dialled party: nothing was dialled")
        return self.far_end.audio(self.clock) if self.far_end is not None else silent_audio(self.clock)

    def dialled_recognizer(self) -> Recognizer:
        """The far end's prompts as written; a silent party says no words."""
        return ScriptedRecognizer(self.far_end) if self.far_end is not None else _NoWords()

    async def hangup(self) -> None:
        if self.ended is None:
            self._silence()
            self._end("the flow hung up")

    async def aclose(self) -> None:
        self._silence()
        if self.speaker is not None:
            self.speaker.close()

    # --- internals --------------------------------------------------------------------------

    def _synthesize(self, prompt: FilledPrompt) -> Pcm | None:
        if self.synthesizer is None or self._voice_failed:
            return None
        try:
            return self.synthesizer.synthesize(prompt)
        except AudioFileError as e:
            # One prompt's file is bad: this prompt is shown as text, the next ones still sound.
            self.view.notice(f"prompt audio failed: {e}; this prompt is printed only")
        except (SpeechError, ValueError) as e:
            # The voice itself is broken: said once, the call goes on with simulated timing.
            # Never the prompt text in the message: it may hold sensitive digits.
            self._voice_failed = True
            self.view.notice(f"audio is off: the voice failed ({e}); prompts are printed only")
        return None

    def _finished(self, prompt_id: int) -> None:
        prompt = self._playing
        if prompt is None or prompt.id != prompt_id:
            return
        self._playing = None
        self._timer = None
        self.view.prompt_done()
        if self.ended is None:
            self.emit(PromptEnded(prompt_id, interrupted=False, at=self.clock.now()))

    def _silence(self) -> None:
        """Cut whatever plays, without emitting anything."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._playing is not None:
            self._playing = None
            self.view.prompt_abort()
            if self.speaker is not None:
                self.speaker.stop()
            if self.recorder is not None:
                self.recorder.cut(self.clock.now())

    def _end(self, why: str) -> None:
        self.ended = why
        self.view.notice(f"call ended: {why}")
        if self.on_end is not None:
            self.on_end(why)


class _NoWords:
    """The recogniser of a silent party (no `--far-end`): it hears nothing, so a navigate step
    waiting for words times out to its `on_fail`, as against a far end that never speaks."""

    sample_rate = 8000

    def start(self, request: Listen, emit: HeardEmit) -> _NoWords:
        return self

    def feed(self, pcm: Pcm, at: float) -> None:
        pass

    def close(self) -> None:
        pass
