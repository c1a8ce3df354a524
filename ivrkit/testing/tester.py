"""`FlowTester`: one call of a flow driven by a scripted caller on virtual time.

After every `press` / `advance` it waits until the call is idle (no runnable task, no queued
event, no hook thread running), so a test reads the call's state without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ivrkit.channel import CallerInfo, Channel, Hangup, Key
from ivrkit.far_end import ScriptedIvr
from ivrkit.testing.clock import VirtualClock
from ivrkit.testing.phone import FakeChannel
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
        tester = cls(machine, channel=channel, variables=todo.variables)
        if todo.stopped_before_start is not None:
            tester.call.stop(todo.stopped_before_start)
        async with tester as t:
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
