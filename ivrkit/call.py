"""The per-call runtime: one caller walking through one flow.

A `Call` is the `transitions` model of its flow's shared `FlowMachine` and the only consumer of
one event queue. Into the queue go the channel's events (`Key`, `PromptEnded`, `Hangup`, via
`channel.connect`), timer deliveries from the `Clock`, and the completion of the one background
task a call may have (a hook, a transfer, a dial, DTMF sending). Handlers never await playout or
user code: they start something and return, so a key or a hang-up is handled the moment it is
read, in the order the adapter emitted it (see LIVEKIT_NOTES, transitions).

A state runs in a fixed order: `run` hook → `say` → its action (menu, collect, goto, transfer,
send_dtmf, dial, hangup) → `next` (or hang up when there is none).

Keypad decisions (how a serious IVR behaves):
- *Type-ahead*: keys pressed while a prompt plays, a hook runs or a `say` speaks are kept in
  order in the call's buffer and consumed by the next input state. If keys are already buffered
  when an input state starts and barge-in is on, its prompt is skipped (traced `prompt_skip`).
- *Barge-in*: a key stops an interruptible prompt at once (`channel.stop()`), and is used. With
  `barge_in: false` (legal text) the prompt plays to its end; keys wait in the buffer.
- *Menu*: an option moves on; the repeat key replays the menu prompt (not a retry); the back key
  returns to the previous menu/collect state (no previous: a no-match); any other key is a
  no-match. The no-input timer (`timeout`) starts when the prompt ends.
- *Collect*: see `ivrkit.digits`. Too few digits, a pattern mismatch or a `validate` hook saying
  False is a no-match; nothing typed is a no-input. `<into>_reason` holds the end reason. With
  `confirm`, the confirm prompt plays; 1 accepts, 2 re-enters the state, anything else or
  silence counts as a no-match / no-input of the same state.
- no-input and no-match are counted separately per visit of a state; the n-th one plays the
  n-th (or last) of its escalating prompts, then the state's prompt again. The `retries`-th one
  leaves for `on_max_retries` (none: the error path). Keys still buffered at a no-input or
  no-match are discarded (and traced as such): the caller is being re-prompted.
- Every key ends up in exactly one trace record, `consumed` or `discarded` with a reason, in the
  order pressed. Keys consumed by a sensitive collect are traced and logged as `*`.

Hooks (`run:`; `validate:` gets `(ctx, digits)` and returns a bool) receive a `HookContext` and
may return None, a mapping (merged into the variables) or a state name (the call goes there at
once, skipping `say` and the action). The flow's `call_start` hooks run before the start state
(mappings merged; a failure takes the error path); `call_end` hooks run after the call ended,
each under its limit. Sync hooks run on a worker thread: one that overruns its limit is
abandoned, not killed (Python cannot kill threads) — its late result is ignored.

Errors never end the call abruptly: a hook that raises, runs past its limit or returns garbage,
a failed transfer/dial/DTMF send, or a runtime guard (more than `MAX_HOPS` states in a row
without waiting for the caller) logs flow/state/file:line, traces an `error`, and goes to the
state's `on_error`, else the flow's `error_state`, else the built-in "Sorry, something went
wrong." + hang up. An error again before the caller was next waited on (or inside the error
state) goes straight to the built-in one, so error paths cannot loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ivrkit.channel import DTMF_KEYS, Channel, Hangup, Key, PromptEnded
from ivrkit.digits import CollectResult, DigitCollector, EndReason, KeyOutcome
from ivrkit.errors import CallError, ChannelError, HookError
from ivrkit.flow.model import Collect, HookRef, Menu, Settings, State
from ivrkit.hooks import HookContext, Hooks, HookTimeout, invoke, run_limited
from ivrkit.machine import BUILTIN_ERROR, INITIAL, FlowMachine
from ivrkit.prompts import MASK, Prompt, render
from ivrkit.trace import Trace, TraceEvent

log = logging.getLogger("ivrkit.call")

EndedBy = Literal["caller_hangup", "hangup", "transfer", "error", "cancelled"]

#: States entered in a row without waiting for the caller before the call takes the error path.
MAX_HOPS = 50
#: Upper bound for our own channel actions at the end of a call (hang-up, close), clock seconds.
END_ACTION_LIMIT = 5.0
SORRY = Prompt.text("Sorry, something went wrong. Please call again later.", "<built-in>")
_BUILTIN_STATE = State(name=BUILTIN_ERROR, where="<built-in>", settings=Settings(barge_in=False), hangup=True)
_POINTS = {"call_start": "call_start", "state": "state_enter", "key": "digits", "collect": "digits",
           "transition": "transition", "call_end": "call_end"}
_NO_HOOKS = Hooks()

# phases: what the call is waiting for
_IDLE, _HOOK, _SAY, _PROMPT, _INPUT, _VALIDATE, _ACTION, _ANNOUNCE, _SORRY, _ENDED = range(10)


@dataclass(frozen=True, slots=True)
class CallResult:
    ended_by: EndedBy
    state: str
    trace: Trace


@dataclass(frozen=True, slots=True)
class _Run:
    """A timer delivery: run `fn` in the consumer, in queue order."""

    fn: Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class _Done:
    gen: int
    result: Any
    error: BaseException | None


_Event = Key | PromptEnded | Hangup | _Run | _Done


class Call:
    """One call on one flow. `await call.run()` returns a `CallResult` once the call is over and
    every timer and task it started is gone. It never raises for flow, hook or channel problems
    (those take the error path); cancelling `run()` cleans up, then re-raises."""

    __slots__ = (
        "machine", "flow", "channel", "clock", "hooks", "variables", "trace", "state",
        "_queue", "_buffer", "_phase", "_prompt", "_prompts", "_collector", "_confirming",
        "_timer", "_gen", "_task", "_task_gen", "_on_done", "_thread", "_no_input", "_no_match",
        "_hops", "_errored", "_history", "_ended_by", "_started", "_activity", "_next",
        "_pending_result", "_notify", "_prompt_seq", "_prompt_barge", "_secret", "_draining",
    )

    def __init__(
        self,
        machine: FlowMachine,
        channel: Channel,
        *,
        hooks: Hooks | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.machine = machine
        self.flow = machine.flow
        self.channel = channel
        self.clock = channel.clock
        self.hooks = hooks or _NO_HOOKS
        caller = channel.caller
        self.variables: dict[str, Any] = dict(variables or {})
        self.variables.update(caller_number=caller.number, called_number=caller.called_number, call_id=caller.call_id)
        self.trace = Trace()
        self.state = INITIAL
        self._queue: asyncio.Queue[_Event] = asyncio.Queue()
        self._buffer: deque[Key] = deque()
        self._phase = _IDLE
        self._prompt: int | None = None
        self._prompt_barge = True
        self._prompt_seq = 0
        self._prompts: list[Prompt] = []
        self._collector: DigitCollector | None = None
        self._confirming = False
        self._timer: Any = None
        self._gen = 0
        self._task: asyncio.Task[None] | None = None
        self._task_gen = 0
        self._on_done: Callable[[_Done], Awaitable[None]] | None = None
        self._thread: asyncio.Future[Any] | None = None
        self._no_input = 0
        self._no_match = 0
        self._hops = 0
        self._errored = False
        self._history: list[str] = []
        self._ended_by: EndedBy | None = None
        self._started = False
        self._activity = 0
        self._next: tuple[str, str] | None = None
        self._pending_result: CollectResult | None = None
        self._notify: list[TraceEvent] = []
        self._secret = ""  # sensitive digits being validated: masked in every message
        self._draining = False  # consuming type-ahead keys (keeps key handling iterative)

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

    def _post(self, event: Any) -> None:
        if self._phase == _ENDED:
            if type(event) is Key:
                self._discard(event, "call ended")
            return
        self._queue.put_nowait(event)

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

    def _move(self, dest: str, why: str) -> None:
        self._next = (dest, why)

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

    def _current(self) -> State:
        state = self.flow.states.get(self.state)
        if state is not None:
            return state
        if self.state == BUILTIN_ERROR:
            return _BUILTIN_STATE
        return State(name=INITIAL, where=self.flow.file)  # call_start hooks run before the start state

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

    # --- prompts -------------------------------------------------------------------------------

    def _play(self, prompt: Prompt, *, barge_in: bool) -> None:
        state = self._current()
        self._prompt_seq += 1
        rendered = render(prompt, self.variables, id=self._prompt_seq, state=state.name,
                          sensitive=self.machine.sensitive, barge_in=barge_in,
                          voice=state.settings.voice, language=state.settings.language)
        self._prompt = rendered.id
        self._prompt_barge = barge_in
        self._record("prompt", {"id": rendered.id, "text": rendered.log_text, "barge_in": barge_in})
        try:
            self.channel.play(rendered)
        except Exception as exc:
            self._prompt = None
            if self.state == BUILTIN_ERROR:
                log.error("flow %s: cannot play the built-in error prompt: %s", self.flow.name, exc)
                return self._end_call("error")
            self._fail(exc)

    def _stop_prompt(self, reason: str = "") -> None:
        if self._prompt is None:
            return
        pid, self._prompt = self._prompt, None
        self._record("prompt_end", {"id": pid, "interrupted": True, **({"by": reason} if reason else {})})
        try:
            self.channel.stop()
        except Exception as exc:
            log.warning("flow %s: channel.stop() failed: %s", self.flow.name, exc)

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

    # --- keys ----------------------------------------------------------------------------------

    async def _on_key(self, key: Key) -> None:
        if self._phase == _INPUT and not self._buffer:
            return self._input_key(key)
        if key.digit not in DTMF_KEYS and not self._buffer:
            return self._discard(key, f"not a DTMF key: {key.digit!r}")
        self._buffer.append(key)  # behind earlier keys: records stay in the order pressed
        if (self._prompt is not None and self._prompt_barge and key.digit in DTMF_KEYS
                and self._phase in (_SAY, _PROMPT, _ANNOUNCE)):
            self._stop_prompt("key")
            self._prompt_done()

    def _consume(self, key: Key, masked: bool = False) -> None:
        self._hops = 0
        digit = "*" if masked else key.digit
        log.debug("flow %s state %s: key %s", self.flow.name, self.state, digit)
        self._record("key", {"digit": digit, "arrived": key.at, "consumed": self.state})

    def _discard(self, key: Key, reason: str) -> None:
        if self.trace.closed:
            return
        log.debug("flow %s state %s: key discarded (%s)", self.flow.name, self.state, reason)
        self._record("key", {"digit": "?" if self._sensitive_now() else key.digit, "arrived": key.at,
                             "discarded": reason})

    def _discard_buffer(self, reason: str) -> None:
        while self._buffer:
            self._discard(self._buffer.popleft(), reason)

    def _sensitive_now(self) -> bool:
        state = self._current()
        return state.collect is not None and state.collect.sensitive

    # --- menu / collect input ------------------------------------------------------------------

    def _start_input(self, state: State, first: Prompt | None = None) -> None:
        spec: Menu | Collect | None = state.menu or state.collect
        assert spec is not None
        main = state.collect.confirm if (self._confirming and state.collect) else spec.prompt
        self._prompts = [first, main] if first is not None else [main]  # type: ignore[list-item]
        if state.collect is not None and not self._confirming:
            c = state.collect
            self._collector = DigitCollector(
                self.clock, on_timeout=self._collector_timeout, min_digits=c.min_digits, max_digits=c.max_digits,
                terminator=state.settings.terminator, clear_key=c.clear_key,
                first_digit_timeout=state.settings.timeout, inter_digit_timeout=state.settings.inter_digit_timeout,
                schedule=self._schedule,
            )
        self._next_prompt()

    def _next_prompt(self) -> None:
        self._phase = _PROMPT
        barge_in = self._current().settings.barge_in
        if self._buffer and barge_in:
            for p in self._prompts:
                self._record("prompt_skip", {"text": render(p, self.variables, id=0, state=self.state,
                                                            sensitive=self.machine.sensitive).log_text,
                                             "reason": "type-ahead"})
            self._prompts = []
        if self._prompts:
            self._play(self._prompts.pop(0), barge_in=barge_in)
        else:
            self._await_input()

    def _await_input(self) -> None:
        self._phase = _INPUT
        self._hops = 0
        self._errored = False
        if self._draining:
            return  # called again from a key being drained (repeat key): the loop below goes on
        state = self.state
        self._draining = True
        try:
            while self._buffer and self._phase == _INPUT and self.state == state and self._next is None:
                self._input_key(self._buffer.popleft())
        finally:
            self._draining = False
        if self._phase != _INPUT or self._next is not None:
            return
        if self._collector is not None and not self._confirming:
            self._collector.start()
        else:
            self._arm(self._current().settings.timeout, self._no_input_timeout)

    def _input_key(self, key: Key) -> None:
        if key.digit not in DTMF_KEYS:
            return self._discard(key, f"not a DTMF key: {key.digit!r}")
        state = self._current()
        if self._confirming:
            self._consume(key)
            return self._confirm_key(state, key.digit)
        if state.menu is not None:
            self._consume(key)
            return self._menu_key(state, state.menu, key.digit)
        assert state.collect is not None and self._collector is not None
        c = state.collect
        if c.back_key and key.digit == c.back_key and key.digit != state.settings.terminator:
            self._consume(key)
            self._record_collect(self._collector.cancel())
            self._collector = None
            return self._go_back(state)
        self._consume(key, masked=c.sensitive)
        outcome = self._collector.press(key.digit)
        if outcome is KeyOutcome.REJECTED:  # cannot happen: a done collector leaves _INPUT
            raise CallError("collector rejected a key in the input phase")
        if self._collector.result is not None:
            self._collect_done_now(self._collector.result)

    def _menu_key(self, state: State, menu: Menu, digit: str) -> None:
        self._cancel_timer()
        target = menu.options.get(digit)
        if target is not None:
            return self._move(target, f"key {digit}")
        if menu.repeat_key is not None and digit == menu.repeat_key:
            return self._start_input(state)
        if menu.back_key is not None and digit == menu.back_key and len(self._history) >= 2:
            return self._go_back(state)
        self._input_failed(state, "no_match")

    def _go_back(self, state: State) -> None:
        if len(self._history) >= 2 and self._history[-1] == state.name:
            self._history.pop()
            return self._move(self._history[-1], "back")
        self._input_failed(state, "no_match")

    def _no_input_timeout(self) -> None:
        self._timer = None
        self._record("timeout", {"what": "no_input"})
        self._input_failed(self._current(), "no_input")

    def _collector_timeout(self, result: CollectResult) -> None:
        self._pending_result = result  # handled right after this timer delivery (_dispatch)

    async def _collect_done(self, result: CollectResult) -> None:
        if result.reason in (EndReason.FIRST_DIGIT_TIMEOUT, EndReason.INTER_DIGIT_TIMEOUT):
            self._record("timeout", {"what": result.reason.value})
        self._collect_done_now(result)

    def _collect_done_now(self, result: CollectResult) -> None:
        state = self._current()
        c = state.collect
        assert c is not None
        self._collector = None
        self._record_collect(result)
        digits = result.digits
        if c.sensitive:
            self._secret = digits
        if not digits and result.reason in (EndReason.FIRST_DIGIT_TIMEOUT, EndReason.INTER_DIGIT_TIMEOUT):
            return self._input_failed(state, "no_input")
        if len(digits) < c.min_digits or (c.pattern is not None and re.fullmatch(c.pattern, digits) is None):
            return self._input_failed(state, "no_match")
        if c.validate is not None:
            self._phase = _VALIDATE
            ref = c.validate
            self._start_task(lambda: self._run_hook(ref, state, digits), lambda d: self._validated(state, digits, d))
            return
        self._accept(state, digits)

    async def _validated(self, state: State, digits: str, done: _Done) -> None:
        if done.error is not None:
            return self._fail(done.error)
        ok = done.result
        assert state.collect is not None and state.collect.validate is not None
        if not isinstance(ok, bool):
            return self._fail(HookError(f"returned {type(ok).__name__}; a validate hook returns True or False",
                                        hook=str(state.collect.validate), state=state.name, where=state.where))
        self._record("hook", {"hook": str(state.collect.validate), "result": ok})
        if ok:
            self._accept(state, digits)
        else:
            self._input_failed(state, "no_match")

    def _accept(self, state: State, digits: str) -> None:
        c = state.collect
        assert c is not None
        self.variables[c.into] = digits
        if c.confirm is not None:
            self._confirming = True
            self._no_input = self._no_match = 0
            return self._start_input(state)
        self._leave_collect(state)

    def _leave_collect(self, state: State) -> None:
        if state.next is None:
            return self._end_call("hangup") if state.hangup else self._fail(
                CallError(f"{state.where}: collect state '{state.name}' has no next"))
        self._move(state.next, "collected")

    def _confirm_key(self, state: State, digit: str) -> None:
        self._cancel_timer()
        if digit == "1":
            self._confirming = False
            return self._leave_collect(state)
        if digit == "2":
            return self._move(state.name, "re-enter")
        self._input_failed(state, "no_match")

    def _input_failed(self, state: State, what: Literal["no_input", "no_match"]) -> None:
        self._cancel_timer()
        spec: Menu | Collect | None = state.menu or state.collect
        assert spec is not None
        count = self._no_input + 1 if what == "no_input" else self._no_match + 1
        if what == "no_input":
            self._no_input = count
        else:
            self._no_match = count
        self._record(what, {"count": count, "retries": state.settings.retries})
        self._discard_buffer(f"{what} in '{state.name}'")
        if count >= state.settings.retries:
            if spec.on_max_retries:
                return self._move(spec.on_max_retries, f"max retries ({what})")
            return self._fail(CallError(f"{state.where}: '{state.name}' reached {count} {what} and has no on_max_retries"))
        prompts = spec.no_input if what == "no_input" else spec.no_match
        first = prompts[min(count, len(prompts)) - 1] if prompts else None
        self._start_input(state, first)

    def _record_collect(self, result: CollectResult) -> None:
        state = self._current()
        c = state.collect
        if c is None:
            return
        self.variables[c.into + "_reason"] = result.reason.value
        self._record("collect", {"into": c.into, "digits": "*" * len(result.digits) if c.sensitive else result.digits,
                                 "reason": result.reason.value})

    # --- hooks and actions (the one background task) -------------------------------------------

    def _start_task(self, job: Callable[[], Awaitable[Any]], on_done: Callable[[_Done], Awaitable[None]]) -> None:
        self._task_gen += 1
        gen = self._task_gen
        self._on_done = on_done

        async def runner() -> None:
            try:
                result = await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._post(_Done(gen, None, exc))
            else:
                self._post(_Done(gen, result, None))

        self._task = asyncio.get_running_loop().create_task(runner())

    def _cancel_task(self) -> None:
        self._task_gen += 1
        self._on_done = None
        self._thread = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        # the task is awaited in _shutdown; a cancelled task posts nothing

    def _set_thread(self, fut: asyncio.Future[Any]) -> None:
        self._thread = fut

    async def _run_hook(self, ref: HookRef, state: State, digits: str | None = None) -> Any:
        fn = self.machine.hook(ref, state)
        ctx = HookContext(dict(self.variables), self.channel.caller, self.flow, state.name, digits)
        limit = ref.timeout if ref.timeout is not None else state.settings.hook_timeout
        args: tuple[Any, ...] = (ctx,) if digits is None else (ctx, digits)
        try:
            return await run_limited(invoke(fn, *args, on_thread=self._set_thread), clock=self.clock, timeout=limit)
        except HookTimeout as exc:
            self._record("timeout", {"what": "hook", "hook": str(ref), "limit": limit})
            raise HookError(str(exc), hook=str(ref), state=state.name, where=ref.where or state.where) from None
        except HookError:
            raise
        except Exception as exc:
            raise HookError(f"raised {type(exc).__name__}: {exc}", hook=str(ref), state=state.name,
                            where=ref.where or state.where) from exc

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
                return self._fail(HookError("returned a mapping with non-string keys", hook=str(ref),
                                            state=state.name, where=ref.where or state.where))
            self._merge(ref, result)
        elif isinstance(result, str):
            if result not in self.flow.states:
                return self._fail(HookError(f"returned state '{result}', which the flow does not define",
                                            hook=str(ref), state=state.name, where=ref.where or state.where))
            self._record("hook", {"hook": str(ref), "result": "state", "next": result})
            return self._move(result, f"hook {ref}")
        else:
            return self._fail(HookError(f"returned {type(result).__name__}; return None, a dict of variables "
                                        "or a state name", hook=str(ref), state=state.name,
                                        where=ref.where or state.where))
        self._after_hook(state)

    def _merge(self, ref: HookRef, values: Mapping[str, Any]) -> None:
        self.variables.update(values)
        shown = {k: MASK if k in self.machine.sensitive else _plain(v) for k, v in values.items()}
        self._record("hook", {"hook": str(ref), "result": "variables", "set": shown})

    def _start_action(self, state: State) -> None:
        self._phase = _ACTION
        self._start_task(lambda: self._action_job(state), lambda d: self._action_done(state, d))

    async def _action_job(self, state: State) -> None:
        ch = self.channel
        if state.transfer is not None:
            to = self._fill(state.transfer.to)
            self._record("transfer", {"to": to[1]})
            await ch.transfer(to[0], play_dialtone=state.transfer.play_dialtone)
        elif state.dial is not None:
            to = self._fill(state.dial.to)
            self._record("dial", {"to": to[1]})
            await ch.dial(to[0], trunk=state.dial.trunk, timeout=state.dial.timeout)
        elif state.send_dtmf is not None:
            spec = state.send_dtmf
            digits, shown = self._fill(spec.digits)
            masked = digits != shown
            pace = spec.pace if spec.pace is not None else state.settings.dtmf_pace
            first = True
            for ch_ in digits:
                if ch_ in " -":
                    continue
                if ch_ in "wW":
                    await self.clock.sleep(0.5)
                    continue
                key = ch_.upper()
                if key not in DTMF_KEYS:
                    raise ChannelError(f"{state.where}: cannot send {'a masked character' if masked else repr(ch_)} "
                                       "as DTMF; use 0-9 * # A-D and w for a 0.5 s pause")
                if not first:
                    await self.clock.sleep(pace)
                first = False
                await ch.send_dtmf(key)
                self._record("dtmf_sent", {"digit": "*" if masked else key})

    async def _action_done(self, state: State, done: _Done) -> None:
        if done.error is not None:
            return self._fail(done.error)
        self._hops = 0
        if state.transfer is not None:
            self._record("transfer_done", {"ok": True})
            return self._end_call("transfer")
        if state.next is not None:
            return self._move(state.next, state.kind)
        self._end_call("hangup")

    def _fill(self, template: str) -> tuple[str, str]:
        r = render(Prompt.text(template), self.variables, id=0, state=self.state, sensitive=self.machine.sensitive)
        return r.parts[0].value, r.log_text

    # --- errors and the end --------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        state = self._current()
        where = getattr(error, "where", "") or state.where
        message = self._mask(f"{type(error).__name__}: {error}")
        log.error("flow %s state %s (%s): %s", self.flow.name, state.name, where, message)
        self._record("error", {"message": message, "where": where})
        target = state.on_error or self.flow.error_state
        if self._errored or target is None or target == state.name or state.name == BUILTIN_ERROR:
            target = BUILTIN_ERROR
        self._errored = True
        if state.name == BUILTIN_ERROR:
            return self._end_call("error")
        self._move(target, "error")

    def _mask(self, text: str) -> str:
        for name in self.machine.sensitive:
            value = self.variables.get(name)
            if value:
                text = text.replace(str(value), MASK)
        if self._collector is not None and self._sensitive_now() and self._collector.digits:
            text = text.replace(self._collector.digits, MASK)
        if self._secret:
            text = text.replace(self._secret, MASK)
        return text

    def _end_call(self, ended_by: EndedBy) -> None:
        if self._ended_by is None:
            self._ended_by = ended_by
            self._next = None

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
                self._discard(event, "call ended")
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

    # --- timers, trace, observers --------------------------------------------------------------

    def _schedule(self, delay: float, fn: Callable[[], None]) -> Any:
        return self.clock.call_later(delay, lambda: self._post(_Run(fn)))

    def _arm(self, delay: float, fn: Callable[[], None]) -> None:
        self._cancel_timer()
        self._gen += 1
        gen = self._gen

        def fire() -> None:
            if gen == self._gen and self._timer is not None:
                fn()

        self._timer = self._schedule(delay, fire)

    def _cancel_timer(self) -> None:
        self._gen += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _record(self, kind: str, data: Mapping[str, Any]) -> None:
        state = None if self.state == INITIAL else self.state
        event = self.trace.record(self.clock.now(), kind, state, data)
        if self.hooks is not _NO_HOOKS:
            point = _POINTS.get(kind)
            if point is not None and getattr(self.hooks, point):
                self._notify.append(event)

    async def _deliver(self) -> None:
        pending, self._notify = self._notify, []
        for event in pending:
            point = _POINTS[event.kind]
            for observer in getattr(self.hooks, point):
                try:
                    await run_limited(observer(event), clock=self.clock, timeout=self.hooks.timeout)
                except (Exception, HookTimeout) as exc:
                    name = getattr(observer, "__qualname__", repr(observer))
                    log.error("flow %s: %s observer %s failed: %s", self.flow.name, point, name, exc)
                    self.trace.record(self.clock.now(), "observer_error", event.state,
                                      {"point": point, "observer": name, "error": self._mask(f"{type(exc).__name__}: {exc}")})

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


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
