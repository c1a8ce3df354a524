"""The per-call runtime: one caller walking through one flow.

A `Call` is the `transitions` model of its flow's shared `FlowMachine` and the only consumer of
one event queue. Into the queue go the channel's events (`Key`, `PromptEnded`, `Hangup`, via
`channel.connect`), timer deliveries from the `Clock`, and the completion of the one background
task a call may have (a hook, a transfer, a dial, DTMF sending). Handlers never await playout or
user code: they start something and return, so a key or a hang-up is handled the moment it is
read, in the order the adapter emitted it (see LIVEKIT_NOTES, transitions).

A state runs in a fixed order: `run` hook → `say` → its action (menu, collect, goto, transfer,
send_dtmf, dial, hangup) → `next` (or hang up when there is none).

The runtime is one object built in layers, one concept per module (see `ivrkit.call_core`):
`call_core` (fields, trace, timers, prompts, the error path), `call_tasks` (hooks and channel
actions), `call_input` (keys, menu / collect / confirm), and here `Call`: the loop, the order a
state runs in, moving between states, and the end of the call. Keypad decisions are described in
`ivrkit.call_input`, hooks in `ivrkit.call_tasks`.

Errors never end the call abruptly: a hook that raises, runs past its limit or returns garbage,
a failed transfer/dial/DTMF send, or a runtime guard (more than `MAX_HOPS` states in a row
without waiting for the caller) logs flow/state/file:line, traces an `error`, and goes to the
state's `on_error`, else the flow's `error_state`, else the built-in "Sorry, something went
wrong." + hang up. An error again before the caller was next waited on (or inside the error
state) goes straight to the built-in one, so error paths cannot loop.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from ivrkit.call_core import (
    _ANNOUNCE, _ENDED, _HOOK, _PROMPT, _SAY, _SORRY, EndedBy, _Done, _Event, _Run, log,
)
from ivrkit.call_input import CallInput
from ivrkit.call_tasks import hook_error
from ivrkit.channel import Hangup, Key, PromptEnded
from ivrkit.digits import EndReason
from ivrkit.errors import CallError, HookError
from ivrkit.flow.model import State
from ivrkit.hooks import HookTimeout, run_limited
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.prompts import Prompt
from ivrkit.trace import Trace

__all__ = ["END_ACTION_LIMIT", "MAX_HOPS", "SORRY", "Call", "CallResult", "EndedBy"]

#: States entered in a row without waiting for the caller before the call takes the error path.
MAX_HOPS = 50
#: Upper bound for our own channel actions at the end of a call (hang-up, close), clock seconds.
END_ACTION_LIMIT = 5.0
SORRY = Prompt.text("Sorry, something went wrong. Please call again later.", "<built-in>")


@dataclass(frozen=True, slots=True)
class CallResult:
    ended_by: EndedBy
    state: str
    trace: Trace


class Call(CallInput):
    """One call on one flow. `await call.run()` returns a `CallResult` once the call is over and
    every timer and task it started is gone. It never raises for flow, hook or channel problems
    (those take the error path); cancelling `run()` cleans up, then re-raises."""

    __slots__ = ()

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> CallResult:
        if self._started:
            raise CallError("a Call runs once; create a new Call for the next caller")
        self._started = True
        self.channel.connect(self._post)
        self.machine.attach(self)
        try:
            await self._begin()
            await self._settle()
            while self._ended_by is None:
                event = await self._queue.get()
                self._activity += 1
                await self._dispatch(event)
                await self._settle()
        except asyncio.CancelledError:
            self._ended_by = self._ended_by or "cancelled"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # let the bounded clean-up below run; re-raised after it
            await self._shutdown()
            raise
        except Exception as exc:  # an engine bug: still end the call cleanly and say so
            text = self._mask("".join(traceback.format_exception(exc)))  # masked: no PIN in any log
            log.error("flow %s state %s: internal error\n%s", self.flow.name, self.state, text)
            self._record("error", {"message": self._mask(f"internal error: {type(exc).__name__}: {exc}"), "where": ""})
            self._ended_by = "error"
        await self._shutdown()
        assert self._ended_by is not None
        return CallResult(self._ended_by, self.state, self.trace)

    async def _dispatch(self, event: _Event) -> None:
        kind = type(event)
        if kind is Key:
            await self._on_key(event)  # type: ignore[arg-type]
        elif kind is PromptEnded:
            await self._on_prompt_ended(event)  # type: ignore[arg-type]
        elif kind is _Run:
            out = event.fn()  # type: ignore[union-attr]
            if out is not None:
                await out
            result, self._pending_result = self._pending_result, None
            if result is not None:
                await self._collect_done(result)
        elif kind is _Done:
            assert isinstance(event, _Done)
            if event.gen == self._task_gen and self._on_done is not None:
                self._task = None
                self._thread = None
                on_done, self._on_done = self._on_done, None
                await on_done(event)
        elif kind is Hangup:
            self._caller_hung_up()

    async def _settle(self) -> None:
        """Perform pending moves (a trampoline: no recursion through chains of states) and
        deliver observer notifications."""
        while True:
            if self._notify:
                await self._deliver()
            if self._next is None or self._ended_by is not None:
                if not self._notify:
                    return
                continue
            dest, why = self._next
            self._next = None
            await self._move_now(dest, why)

    async def _begin(self) -> None:
        self._record("call_start", {"caller_number": self.variables["caller_number"],
                                    "called_number": self.variables["called_number"],
                                    "call_id": self.variables["call_id"]})
        if self.flow.call_start:
            self._phase = _HOOK
            self._start_task(self._call_start_hooks, self._call_start_done)
        else:
            self._move(self.flow.start, "start")

    async def _call_start_hooks(self) -> list[Any]:
        start = self.flow.states[self.flow.start]
        return [await self._run_hook(ref, start) for ref in self.flow.call_start]

    async def _call_start_done(self, done: _Done) -> None:
        if done.error is not None:
            return self._fail(done.error)
        for ref, result in zip(self.flow.call_start, done.result):
            if isinstance(result, Mapping):
                self._merge(ref, result)
            elif result is not None:
                log.warning("flow %s: call_start hook %s returned %s; only a mapping is used",
                            self.flow.name, ref, type(result).__name__)
        self._move(self.flow.start, "start")

    # --- moving between states -----------------------------------------------------------------

    async def _move_now(self, dest: str, why: str) -> None:
        self._leave_state()
        source = self.state
        try:
            await self.machine.go(self, dest)
        except CallError as exc:
            if dest == BUILTIN_ERROR:
                raise
            self._fail(exc)
            return
        self._record("transition", {"from": source, "to": dest, "why": why})
        self._enter()

    def _leave_state(self) -> None:
        self._cancel_timer()
        if self._collector is not None:
            if not self._collector.done:
                self._record_collect(self._collector.cancel())
            self._collector = None
        self._stop_prompt()
        self._cancel_task()
        self._prompts = []
        self._confirming = False
        self._secret = ""

    def _enter(self) -> None:
        state = self._current()
        self._no_input = self._no_match = 0
        self._hops += 1
        self._record("state", {"where": state.where})
        if state.name == BUILTIN_ERROR:
            self._phase = _SORRY
            self._play(SORRY, barge_in=False)
            return
        if self._hops > MAX_HOPS:
            return self._fail(CallError(
                f"{MAX_HOPS} states in a row without waiting for the caller (does the flow loop?)"))
        if state.run is not None:
            self._phase = _HOOK
            run = state.run
            self._start_task(lambda: self._run_hook(run, state), self._hook_done)
            return
        self._after_hook(state)

    async def _hook_done(self, done: _Done) -> None:
        state = self._current()
        if done.error is not None:
            return self._fail(done.error)
        result = done.result
        assert state.run is not None
        ref = state.run
        if result is None:
            self._record("hook", {"hook": str(ref), "result": "none"})
        elif isinstance(result, Mapping):
            if not all(isinstance(k, str) for k in result):
                return self._fail(hook_error("returned a mapping with non-string keys", ref, state))
            self._merge(ref, result)
        elif isinstance(result, str):
            if result not in self.flow.states:
                return self._fail(hook_error(f"returned state '{result}', which the flow does not define", ref, state))
            self._record("hook", {"hook": str(ref), "result": "state", "next": result})
            return self._move(result, f"hook {ref}")
        else:
            return self._fail(hook_error(f"returned {type(result).__name__}; return None, a dict of variables "
                                         "or a state name", ref, state))
        self._after_hook(state)

    def _after_hook(self, state: State) -> None:
        if state.say is not None:
            self._phase = _SAY
            self._play(state.say, barge_in=state.settings.barge_in)
            return
        self._action(state)

    def _action(self, state: State) -> None:
        kind = state.kind
        if kind in ("menu", "collect"):
            if not self._history or self._history[-1] != state.name:
                self._history.append(state.name)
                del self._history[:-16]
            self._start_input(state)
        elif kind == "goto":
            for branch in state.goto:
                try:
                    ok = branch.condition is None or branch.condition.evaluate(self.variables)
                except Exception as exc:
                    return self._fail(CallError(f"{branch.where or state.where}: condition failed: {exc}"))
                if ok:
                    return self._move(branch.target, "goto")
            if state.next:
                return self._move(state.next, "goto: no branch matched")
            self._fail(CallError(f"{state.where}: no goto branch matched and there is no next"))
        elif kind == "transfer":
            assert state.transfer is not None
            if state.transfer.announce is not None:
                self._phase = _ANNOUNCE
                self._play(state.transfer.announce, barge_in=state.settings.barge_in)
            else:
                self._start_action(state)
        elif kind in ("send_dtmf", "dial"):
            self._start_action(state)
        elif kind == "hangup" or state.next is None:
            self._end_call("hangup")
        else:
            self._move(state.next, "next")

    async def _on_prompt_ended(self, event: PromptEnded) -> None:
        if event.id != self._prompt:
            return  # a prompt we already stopped (barge-in) or left behind
        self._prompt = None
        self._record("prompt_end", {"id": event.id, "interrupted": event.interrupted})
        self._prompt_done()

    def _prompt_done(self) -> None:
        phase = self._phase
        state = self._current()
        if phase == _SAY:
            self._action(state)
        elif phase == _PROMPT:
            self._next_prompt()
        elif phase == _ANNOUNCE:
            self._start_action(state)
        elif phase == _SORRY:
            self._end_call("error")

    # --- the end -------------------------------------------------------------------------------

    def _caller_hung_up(self) -> None:
        if self._collector is not None and not self._collector.done:
            self._record_collect(self._collector.hangup())
            self._collector = None
        self._end_call("caller_hangup")

    async def _shutdown(self) -> None:
        ended_by = self._ended_by or "cancelled"
        if self._collector is not None and not self._collector.done:
            self._record_collect(self._collector.cancel(EndReason.HANGUP if ended_by == "caller_hangup" else EndReason.CANCELLED))
        self._collector = None
        self._cancel_timer()
        self._stop_prompt("call ended")
        task = self._task
        self._cancel_task()
        self._phase = _ENDED
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if ended_by in ("hangup", "error"):
            await self._bounded(self.channel.hangup(), "hangup")
        self._discard_buffer("call ended")
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if isinstance(event, Key):
                self._discard(event, "call ended", pending=True)
        self._record("call_end", {"ended_by": ended_by})
        for ref in self.flow.call_end:
            state = self.flow.states.get(self.state) or self.flow.states[self.flow.start]
            try:
                await self._run_hook(ref, state)
            except HookError as exc:
                log.error("flow %s: call_end hook: %s", self.flow.name, self._mask(str(exc)))
                self._record("error", {"message": self._mask(str(exc)), "where": exc.where})
        await self._deliver()
        self.trace.close()
        self.machine.detach(self)
        await self._bounded(self.channel.aclose(), "aclose")

    async def _bounded(self, aw: Awaitable[Any], what: str) -> None:
        try:
            await run_limited(aw, clock=self.clock, timeout=END_ACTION_LIMIT)
        except (Exception, HookTimeout) as exc:
            log.warning("flow %s: channel %s failed: %s", self.flow.name, what, exc)

    # --- for harnesses -------------------------------------------------------------------------

    @property
    def prompt_playing(self) -> bool:
        """A prompt was started and has not ended (nor been stopped) yet."""
        return self._prompt is not None

    @property
    def ended(self) -> bool:
        return self._phase == _ENDED

    @property
    def idle_info(self) -> tuple[int, int, bool]:
        """(activity counter, queued events, hook thread running) — for test harnesses."""
        return self._activity, self._queue.qsize(), self._thread is not None and not self._thread.done()

    def thread_future(self) -> asyncio.Future[Any] | None:
        return self._thread if self._thread is not None and not self._thread.done() else None
