"""Test a flow without a phone, a server or a real second going by.

Shipped in the package (as Starlette ships `testclient.py`) so teams unit-test their own flows:

    async def test_balance() -> None:
        async with FlowTester("flows/acme.yaml", caller=CallerInfo(number="+15550100")) as t:
            t.expect_prompt("For balances press 1")
            await t.press("1")
            await t.press("1234#")
            t.expect_state("balance")
            await t.advance(5)
            t.expect_ended("hangup")

- `VirtualClock` only moves when told; `advance(s)` fires due timers in time order, ties in the
  order they were scheduled — deterministic, so a 5 s timeout costs microseconds.
- `FakeChannel` is the scripted phone: it records what was played (each prompt lasts
  `seconds_per_char` per character of its text on the virtual clock), sent DTMF, transfers,
  dials and hang-ups, and emits `PromptEnded` when playout would have finished. A dial is
  answered at once; `far_end` is the audio the answering party plays (e.g. `far_end_speech(
  "Hello?")`), heard in 20 ms frames in virtual time by a dial with `amd:`.
- `t.say("billing")` is the caller speaking: what a recogniser would hand the call (the
  recognised text, on the virtual clock), heard only in states that take speech.
- `FlowTester` drives one `Call` over both, and after every `press`/`advance` waits until the
  call is idle (no runnable task, no queued event, no hook thread running) — no real sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ivrkit.channel import CallerInfo, Channel, Hangup, Key, Listen, PromptEnded, Speech, SpeechStarted
from ivrkit.errors import ChannelError
from ivrkit.far_end import ScriptedIvr as ScriptedIvr
from ivrkit.far_end import ScriptedRecognizer
from ivrkit.far_end import far_end_speech as far_end_speech  # re-exported: tests build far ends here
from ivrkit.prompts import FilledPrompt
from ivrkit.trace import Trace

if TYPE_CHECKING:
    from ivrkit.call import CallResult
    from ivrkit.flow.model import Flow
    from ivrkit.machine import FlowMachine
    from ivrkit.replay import ReplayResult
    from ivrkit.voice.audio import Pcm

#: Called with (flow, trace) when a `FlowTester` call has finished — how `pytest --ivr-cov`
#: (`ivrkit.coverage.plugin`) sees every call without the tester knowing about coverage.
FINISHED_CALLS: list[Callable[[Flow, Trace], None]] = []

# --- the virtual clock ---------------------------------------------------------------------------


class _VTimer:
    __slots__ = ("when", "seq", "callback", "cancelled", "_clock")

    def __init__(self, when: float, seq: int, callback: Callable[[], object], clock: VirtualClock) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False
        self._clock = clock

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._clock._live -= 1

    def __lt__(self, other: _VTimer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class VirtualClock:
    """A `Clock` whose time moves only in `advance()`. Starts at 0.0."""

    __slots__ = ("_now", "_heap", "_seq", "_live")

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[_VTimer] = []
        self._seq = 0
        self._live = 0

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], object]) -> _VTimer:
        self._seq += 1
        timer = _VTimer(self._now + max(delay, 0.0), self._seq, callback, self)
        heapq.heappush(self._heap, timer)
        self._live += 1
        return timer

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def pending(self) -> int:
        """Timers scheduled and neither fired nor cancelled (a leak check after a call)."""
        return self._live

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def fire_next(self, until: float) -> bool:
        """Fire the earliest timer due at or before `until` (moving time to it). False if none."""
        due = self.next_due()
        if due is None or due > until:
            return False
        timer = heapq.heappop(self._heap)
        self._now = max(self._now, timer.when)
        timer.cancelled = True
        self._live -= 1
        timer.callback()
        return True

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, in time order (synchronously)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self._now + seconds
        while self.fire_next(target):
            pass
        self._now = target


# --- the scripted phone --------------------------------------------------------------------------


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


# --- the user-facing tester ----------------------------------------------------------------------


class FlowTester:
    """Run one call of a flow against a scripted caller, on virtual time. See the module docstring.

    `flow_or_path` is a `Flow`, a `FlowMachine` (to share a compiled flow between tests), or a
    path to a flow file (loaded with `ivrkit.flow.loader.load_flow`). Everything the call did
    is in `t.trace`; `t.channel` is the `FakeChannel` (played prompts, sent DTMF, transfers).
    `metrics` is the call's metrics sink, e.g. `IvrMetrics(CollectorRegistry()).call(flow)` from
    `ivrkit.metrics`, to test what a flow's calls add to the worker's Prometheus series.

    Idle means: no queued event, nothing runnable on the event loop, and no sync hook still
    running on its thread (the tester waits for such a thread to return, up to
    `thread_wait` real seconds — a sync hook that blocks longer is a bug in the hook). Async
    code awaiting something only real time would bring (a real socket, `asyncio.sleep`) counts
    as idle: advance the virtual clock past the hook's time limit to see the error path.
    """

    def __init__(
        self,
        flow_or_path: Any,
        *,
        variables: Mapping[str, Any] | None = None,
        caller: CallerInfo | None = None,
        hooks: Any = None,
        seconds_per_char: float = 0.06,
        channel: Channel | None = None,
        thread_wait: float = 10.0,
        far_end: Pcm | ScriptedIvr | None = None,
        metrics: Any = None,
    ) -> None:
        from ivrkit.call import Call

        machine = _machine(flow_or_path)
        self.machine = machine
        if channel is not None and not isinstance(channel.clock, VirtualClock):
            raise TypeError("FlowTester needs a channel on a VirtualClock (no real time in tests)")
        self.clock: VirtualClock = channel.clock if channel is not None else VirtualClock()  # type: ignore[assignment]
        self.channel: Any = channel or FakeChannel(self.clock, caller, seconds_per_char=seconds_per_char,
                                                   far_end=far_end)
        self.call = Call(machine, self.channel, hooks=hooks, variables=variables, metrics=metrics)
        self.thread_wait = thread_wait
        self._task: asyncio.Task[Any] | None = None
        self._seen = 0  # prompts already matched by expect_prompt

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FlowTester:
        self._task = asyncio.get_running_loop().create_task(self.call.run())
        await self._settle()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        if not self._task.done():
            self._caller_hangup()
            await self._settle()
        if not self._task.done():  # something refused to end: do not leak it
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for listener in list(FINISHED_CALLS):
            listener(self.machine.flow, self.call.trace)
        if exc_type is None:
            self._task.result()  # surface an engine crash
            if self.clock.pending():
                raise AssertionError(f"the call left {self.clock.pending()} timer(s) behind\n{self._recent()}")

    @classmethod
    async def replay(cls, trace: Any, flow_or_path: Any, /, *, keys_for: Mapping[str, str] | None = None,
                     sets: Mapping[str, str] | None = None, seconds_per_char: float = 0.06,
                     horizon: float | None = None, **secrets: str) -> ReplayResult:
        """Replay a recorded call against a flow; `.diverged` / `.report()` say how it went.

        `trace`: a trace file (the worker's, or `ivrkit console --trace`), a `Trace`, or its
        records. Sensitive keys are masked in a trace and never unmasked: give them as
        `secrets` — `pin="4321"` fills each masked entry into `pin` — or as `keys_for`
        (`{"pin": "4321#"}`: every masked key of a state, in order); any other secret is a
        call variable to start with; `sets` is the same as a mapping (what `--set` gives).
        `horizon`: virtual seconds the call may go on after the last recorded input (300).
        See docs/testing.md, "Replay a real call".

            result = await FlowTester.replay("calls/lost-card.jsonl", "flows/bank.yaml", pin="4321")
            assert not result.diverged, result.report()
        """
        from ivrkit.replay import HORIZON, compare, feed, plan, read_recording

        machine = _machine(flow_or_path)
        recording = read_recording(trace)
        todo = plan(recording, machine.flow, {**(sets or {}), **secrets}, keys_for or {})
        channel = FakeChannel(VirtualClock(), recording.caller, seconds_per_char=seconds_per_char,
                              prompt_seconds=todo.prompt_times, far_end=todo.far_end,
                              far_end_hangs_up=todo.far_end_hangs_up)
        notes = list(todo.notes)
        async with cls(machine, channel=channel, variables=todo.variables) as t:
            limit = HORIZON if horizon is None else horizon
            if not await feed(t, todo.inputs, recording.records, limit):
                notes.append(f"the replayed call had not ended {limit:g} s after the caller's last input: "
                             "the replay hung up")
        name = flow_or_path if isinstance(flow_or_path, (str, Path)) else (machine.flow.file or machine.flow.name)
        return compare(recording, str(name), read_recording(t.trace).records, notes)

    @property
    def running(self) -> bool:
        """The call has started and not yet ended."""
        return self._task is not None and not self._task.done()

    # --- the caller --------------------------------------------------------------------------

    async def press(self, keys: str, *, gap: float = 0.0) -> None:
        """Press each key in `keys` (`gap` virtual seconds apart), letting the call react after each."""
        for i, key in enumerate(keys):
            if i and gap:
                await self.advance(gap)
            self._require_running(f"press {key!r}")
            press = getattr(self.channel, "press", None)
            if press is not None:
                press(key)
            else:
                self.channel.emit(Key(key.upper(), self.clock.now()))
            await self._settle()

    async def say(self, text: str, *, seconds: float = 0.5) -> None:
        """The caller says `text`, speaking for `seconds` of virtual time: `SpeechStarted` now
        (cutting an interruptible prompt), the recognised `text` when they stop. Heard only
        where the flow takes speech (`input: [dtmf, speech]`); elsewhere nothing happens, as on
        a phone (`t.channel.unheard` keeps it). For a key pressed mid-sentence, drive
        `t.channel.start_speaking()` / `finish_speaking(text)` around `t.press`."""
        self._require_running(f"say {text!r}")
        self.channel.start_speaking()
        await self._settle()
        if seconds:
            await self.advance(seconds)
        if self.running:
            self.channel.finish_speaking(text)
            await self._settle()

    async def advance(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass; timers fire in order and the call reacts to each."""
        target = self.clock.now() + seconds
        await self._settle()
        while self.clock.fire_next(target):
            await self._settle()
        self.clock.advance(max(0.0, target - self.clock.now()))
        await self._settle()

    async def until_input(self, limit: float = 600.0) -> None:
        """Advance just until the current prompts have finished (handy before testing timeouts)."""
        end = self.clock.now() + limit
        while self.call.prompt_playing and self.clock.fire_next(end):
            await self._settle()

    async def hangup(self) -> None:
        """The caller hangs up now."""
        self._caller_hangup()
        await self._settle()

    async def stop(self, reason: str = "the worker stopped") -> None:
        """The worker stops the call now (`Call.stop`: `ivrkit start` past its drain, `ivrkit
        dev` stopped): the call hangs up and ends `stopped`."""
        self.call.stop(reason)
        await self._settle()

    def _caller_hangup(self) -> None:
        hang = getattr(self.channel, "caller_hangup", None)
        if hang is not None:
            hang()
        else:
            self.channel.emit(Hangup(self.clock.now()))

    # --- what happened -----------------------------------------------------------------------

    @property
    def trace(self) -> Trace:
        return self.call.trace

    @property
    def state(self) -> str:
        return self.call.state

    @property
    def variables(self) -> dict[str, Any]:
        return self.call.variables

    @property
    def prompts(self) -> list[str]:
        """The (masked) text of every prompt played so far, in order."""
        return [p.text for p in self.channel.played]

    @property
    def result(self) -> CallResult | None:
        """The `CallResult` once the call has ended (None while it runs)."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        result: CallResult = self._task.result()
        return result

    def expect_prompt(self, contains: str) -> str:
        """A prompt containing `contains` was played since the last matched one; returns its text.

        Prompts are matched in order: each call consumes the prompts up to the one it matched.
        """
        played = self.prompts
        for i in range(self._seen, len(played)):
            if contains in played[i]:
                self._seen = i + 1
                return played[i]
        recent = "\n".join(f"  - {p}" for p in played[self._seen:]) or "  (none)"
        raise AssertionError(f"no prompt containing {contains!r} since the last match; played:\n{recent}\n{self._recent()}")

    def expect_no_prompt(self) -> None:
        """No prompt was played since the last matched one."""
        extra = self.prompts[self._seen:]
        if extra:
            raise AssertionError(f"unexpected prompt(s): {extra}\n{self._recent()}")

    def expect_state(self, name: str) -> None:
        if self.call.state != name:
            raise AssertionError(f"expected state {name!r}, the call is in {self.call.state!r}\n{self._recent()}")

    def expect_ended(self, ended_by: str | None = None) -> None:
        result = self.result
        if result is None:
            raise AssertionError(f"expected the call to have ended, it is in {self.call.state!r}\n{self._recent()}")
        if ended_by is not None and result.ended_by != ended_by:
            raise AssertionError(f"expected the call to end by {ended_by!r}, it ended by {result.ended_by!r}\n{self._recent()}")

    def expect_running(self) -> None:
        if self.result is not None:
            raise AssertionError(f"the call ended ({self.result.ended_by}) but should still run\n{self._recent()}")

    def expect_variable(self, name: str, value: Any) -> None:
        actual = self.call.variables.get(name, _MISSING)
        if actual != value:
            shown = "<unset>" if actual is _MISSING else repr(actual)
            raise AssertionError(f"expected variable {name!r} == {value!r}, it is {shown}\n{self._recent()}")

    def _recent(self, n: int = 25) -> str:
        return f"last trace records (state {self.call.state!r}, t={self.clock.now():g}):\n{self.call.trace.tail(n)}"

    def _require_running(self, what: str) -> None:
        if self._task is None or self._task.done():
            raise AssertionError(f"cannot {what}: the call has ended\n{self._recent()}")

    # --- idling ------------------------------------------------------------------------------

    async def _settle(self) -> None:
        """Return once the call is idle at the current virtual time (timers due now included)."""
        while True:
            await self._quiesce()
            if not self.clock.fire_next(self.clock.now()):
                return

    async def _quiesce(self) -> None:
        loop = asyncio.get_running_loop()
        quiet = 0
        last: Any = None
        given_up: set[int] = set()  # hook threads waited for `thread_wait` already: treat as idle
        for _ in range(100_000):
            thread = self.call.thread_future()
            if thread is not None and id(thread) not in given_up:
                await asyncio.wait({thread}, timeout=self.thread_wait)
                if not thread.done():
                    given_up.add(id(thread))
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            snapshot = (self.call.idle_info, self._task.done() if self._task else True)
            runnable = len(ready) if ready is not None else 0
            thread = self.call.thread_future()
            if runnable == 0 and snapshot == last and (thread is None or id(thread) in given_up):
                quiet += 1
                if quiet >= (2 if ready is not None else 20):
                    return
            else:
                quiet = 0
            last = snapshot
        raise AssertionError(f"the call never became idle (a busy loop?)\n{self._recent()}")


_MISSING = object()


def _machine(flow_or_path: Any) -> FlowMachine:
    """A `FlowMachine` from a machine, a `Flow`, or a flow file's path."""
    from ivrkit.machine import FlowMachine

    if isinstance(flow_or_path, FlowMachine):
        return flow_or_path
    if isinstance(flow_or_path, (str, Path)):
        from ivrkit.flow.loader import load_flow

        return FlowMachine(load_flow(flow_or_path))
    return FlowMachine(flow_or_path)
