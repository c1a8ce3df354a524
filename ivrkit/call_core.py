"""What one call holds, and the primitives every layer of the call runtime uses.

`ivrkit.call.Call` is one object built in layers, one concept per module, each class extending
the one before (one object, so the hot key path pays no delegation):

- `call_core.CallCore` (here): the call's fields and event queue, the trace and its observer
  notifications, timers on the `Clock`, playing and stopping prompts, masking sensitive digits,
  and the error path (`_fail`) every layer takes on a problem.
- `call_tasks.CallTasks`: the one background task a call may have: hooks, and the channel
  actions transfer, dial and send_dtmf.
- `call_input.CallInput`: the caller's keys: type-ahead, barge-in, menu / collect / confirm,
  no-input and no-match retries.
- `call.Call`: the loop, the order a state runs in, moving between states, and the end.

Handlers never await playout or user code: they start something and return; what it produces
comes back as an event on the queue (`_Run` for a timer, `_Done` for the background task).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ivrkit.channel import Channel, Hangup, Key, PromptEnded
from ivrkit.digits import CollectResult, DigitCollector
from ivrkit.flow.model import Settings, State
from ivrkit.hooks import Hooks, HookTimeout, run_limited
from ivrkit.machine import BUILTIN_ERROR, INITIAL, FlowMachine
from ivrkit.prompts import MASK, Prompt, fill
from ivrkit.trace import Trace, TraceEvent

log = logging.getLogger("ivrkit.call")

EndedBy = Literal["caller_hangup", "hangup", "transfer", "error", "cancelled"]

_BUILTIN_STATE = State(name=BUILTIN_ERROR, where="<built-in>", settings=Settings(barge_in=False), hangup=True)
_POINTS = {"call_start": "call_start", "state": "state_enter", "key": "digits", "collect": "digits",
           "transition": "transition", "call_end": "call_end"}
_NO_HOOKS = Hooks()

# phases: what the call is waiting for
_IDLE, _HOOK, _SAY, _PROMPT, _INPUT, _VALIDATE, _ACTION, _ANNOUNCE, _SORRY, _ENDED = range(10)


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


class CallCore:
    """The fields of one call and the primitives its layers share (see the module docstring).
    Not run on its own: `ivrkit.call.Call` is the class to use."""

    __slots__ = (
        "machine", "flow", "channel", "clock", "hooks", "variables", "trace", "state",
        "_queue", "_buffer", "_phase", "_prompt", "_prompts", "_collector", "_confirming",
        "_timer", "_gen", "_task", "_task_gen", "_on_done", "_thread", "_no_input", "_no_match",
        "_hops", "_errored", "_history", "_ended_by", "_started", "_activity", "_next",
        "_pending_result", "_notify", "_prompt_seq", "_prompt_barge", "_secret", "_draining",
        "_stray_terminator",
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
        # (terminator, until): a collect completed at max_digits; the caller may still press
        # the terminator out of habit — that key belongs to the finished entry, not the next state
        self._stray_terminator: tuple[str, float] | None = None

    def _post(self, event: Any) -> None:
        if self._phase == _ENDED:
            if type(event) is Key:
                self._discard(event, "call ended", pending=True)
            return
        self._queue.put_nowait(event)

    def _move(self, dest: str, why: str) -> None:
        self._next = (dest, why)

    def _current(self) -> State:
        state = self.flow.states.get(self.state)
        if state is not None:
            return state
        if self.state == BUILTIN_ERROR:
            return _BUILTIN_STATE
        return State(name=INITIAL, where=self.flow.file)  # call_start hooks run before the start state

    def _end_call(self, ended_by: EndedBy) -> None:
        if self._ended_by is None:
            self._ended_by = ended_by
            self._next = None

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

    # --- prompts -------------------------------------------------------------------------------

    def _play(self, prompt: Prompt, *, barge_in: bool) -> None:
        state = self._current()
        self._prompt_seq += 1
        rendered = fill(prompt, self.variables, id=self._prompt_seq, state=state.name,
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

    def _discard(self, key: Key, reason: str, pending: bool = False) -> None:
        """Trace a key no state used. `pending`: it was typed ahead and never reached a state,
        so it may have been meant for a sensitive collect later on — masked in any flow that
        has one (a caller typing "1 4321" and hanging up must not leave a PIN in the trace)."""
        if self.trace.closed:
            return
        log.debug("flow %s state %s: key discarded (%s)", self.flow.name, self.state, reason)
        masked = self._sensitive_now() or (pending and bool(self.machine.sensitive))
        self._record("key", {"digit": "?" if masked else key.digit, "arrived": key.at, "discarded": reason})

    def _sensitive_now(self) -> bool:
        state = self._current()
        return state.collect is not None and state.collect.sensitive
