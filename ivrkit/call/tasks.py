"""What the call's background task runs: flow hooks and channel actions.

Hooks (`run:`; `validate:` gets `(ctx, digits)` and returns a bool) receive a `HookContext` and
may return None, a mapping (merged into the variables) or a state name (the call goes there at
once, skipping `say` and the action). The flow's `call_start` hooks run before the start state
(mappings merged; a failure takes the error path); `call_end` hooks run after the call ended,
each under its limit. Sync hooks run on a worker thread: one that overruns its limit is
abandoned, not killed (Python cannot kill threads) — its late result is ignored.

These are coroutines run by `Background`; they read the call's variables and record what they
send (transfer, dial, DTMF), and their outcome goes back to the call as a `TaskDone` event.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from ivrkit.call.listen import Answered, answered_by
from ivrkit.call.navigate import Navigated, navigate
from ivrkit.call.recorder import Recorder
from ivrkit.channel import DTMF_KEYS, Channel
from ivrkit.errors import ChannelError, HookError, HookTimeout
from ivrkit.flow.model import HookRef, NavStep, State
from ivrkit.hooks import HookContext, invoke, run_limited
from ivrkit.machine import FlowMachine
from ivrkit.prompts import MASK, Prompt, fill

log = logging.getLogger("ivrkit.call")


class Jobs:
    """The jobs of one call (see the module docstring)."""

    __slots__ = ("_machine", "_channel", "_variables", "_recorder", "_on_thread")

    def __init__(self, machine: FlowMachine, channel: Channel, variables: MutableMapping[str, Any], recorder: Recorder,
                 on_thread: Callable[[asyncio.Future[Any]], None]) -> None:
        self._machine = machine
        self._channel = channel
        self._variables = variables
        self._recorder = recorder
        self._on_thread = on_thread

    async def hook(self, ref: HookRef, state: State, digits: str | None = None) -> Any:
        """Run one flow hook under its time limit; any failure comes out as a `HookError`."""
        fn = self._machine.hook(ref, state)
        ctx = HookContext(dict(self._variables), self._channel.caller, self._machine.flow, state.name, digits)
        limit = ref.timeout if ref.timeout is not None else state.settings.hook_timeout
        args: tuple[Any, ...] = (ctx,) if digits is None else (ctx, digits)
        clock = self._channel.clock
        started = clock.now()
        try:
            result = await run_limited(invoke(fn, *args, on_thread=self._on_thread), clock=clock, timeout=limit)
        except HookTimeout as exc:
            self._recorder.hook_ran(str(ref), clock.now() - started, "timeout")
            self._recorder.record("timeout", {"what": "hook", "hook": str(ref), "limit": limit})
            raise hook_error(str(exc), ref, state) from None
        except HookError:
            self._recorder.hook_ran(str(ref), clock.now() - started, "raised")
            raise
        except Exception as exc:
            self._recorder.hook_ran(str(ref), clock.now() - started, "raised")
            raise HookError(f"raised {type(exc).__name__}: {exc}", hook=str(ref), state=state.name,
                            where=ref.where or state.where, raised_at=raised_at(exc, fn)) from exc
        self._recorder.hook_ran(str(ref), clock.now() - started, "returned")
        return result

    async def call_start(self) -> list[Any]:
        """The flow's call_start hooks, in order, before the start state."""
        flow = self._machine.flow
        start = flow.states[flow.start]
        return [await self.hook(ref, start) for ref in flow.call_start]

    async def action(self, state: State) -> Answered | Navigated | None:
        """The state's channel action: transfer, dial, send_dtmf or navigate; a dial with
        `amd:` also listens to who answered (`ivrkit.call.listen`) and returns it; navigate
        returns how its steps went (`ivrkit.call.navigate`)."""
        ch = self._channel
        if state.transfer is not None:
            to = self.fill(state.transfer.to, state)
            self._recorder.record("transfer", {"to": to[1]})
            await ch.transfer(to[0], play_dialtone=state.transfer.play_dialtone)
        elif state.dial is not None:
            to = self.fill(state.dial.to, state)
            self._recorder.record("dial", {"to": to[1]})
            await ch.dial(to[0], trunk=state.dial.trunk, timeout=state.dial.timeout)
            answered = None
            if state.dial.amd is not None:
                answered = await answered_by(ch.dialled_audio(), state.dial.amd, ch.clock)
            if state.dial.bridge:
                await self._bridge()
            return answered
        elif state.send_dtmf is not None:
            await self._send_dtmf(state)
        elif state.navigate is not None:
            words = any(step.expect == "words" for step in state.navigate.steps if step.kind == "expect")
            recognizer = ch.dialled_recognizer() if words else None
            went = await navigate(state.navigate, ch.dialled_audio(), lambda step: self._send_step(state, step),
                                  ch.clock, self._record_masked, recognizer)
            if went.ok and state.navigate.bridge:
                await self._bridge()
            if state.navigate.hang_up:
                await ch.hang_up_dialled()
                self._recorder.record("dialled_hung_up", {})
            return went
        return None

    def _record_masked(self, kind: str, data: dict[str, Any]) -> None:
        """A navigate record, with the call's secrets masked in what the far end was heard to
        say (it may read back the account number the flow keyed)."""
        mask = self._recorder.mask
        self._recorder.record(kind, {k: mask(v) if isinstance(v, str) else v for k, v in data.items()})

    async def _bridge(self) -> None:
        """The caller and the dialled party hear each other from now on; keys stay on their leg."""
        await self._channel.bridge()
        self._recorder.record("bridge", {})

    async def _send_step(self, state: State, step: NavStep) -> None:
        digits, shown = self.fill(step.keys, state)
        masked = digits != shown
        pace = step.pace if step.pace is not None else state.settings.dtmf_pace
        self._channel.sensitive = masked
        try:
            await self._send_keys(state, digits, masked, pace)
        finally:
            self._channel.sensitive = False

    async def _send_dtmf(self, state: State) -> None:
        spec = state.send_dtmf
        assert spec is not None
        digits, shown = self.fill(spec.digits, state)
        masked = digits != shown
        pace = spec.pace if spec.pace is not None else state.settings.dtmf_pace
        self._channel.sensitive = masked  # the adapter must not log or record these keys either
        try:
            await self._send_keys(state, digits, masked, pace)
        finally:
            self._channel.sensitive = False

    async def _send_keys(self, state: State, digits: str, masked: bool, pace: float) -> None:
        clock = self._channel.clock
        first = True
        for ch in digits:
            if ch in " -":
                continue
            if ch in "wW":
                await clock.sleep(0.5)
                continue
            key = ch.upper()
            if key not in DTMF_KEYS:
                raise ChannelError(f"{state.where}: cannot send {'a masked character' if masked else repr(ch)} "
                                   "as DTMF; use 0-9 * # A-D and w for a 0.5 s pause")
            if not first:
                await clock.sleep(pace)
            first = False
            await self._channel.send_dtmf(key)
            self._recorder.record("dtmf_sent", {"digit": "*" if masked else key})

    async def call_end(self, state: State) -> None:
        """The flow's call_end hooks, each under its limit; a failure is logged and traced."""
        for ref in self._machine.flow.call_end:
            try:
                await self.hook(ref, state)
            except HookError as exc:
                message = self._recorder.mask(str(exc))
                log.error("flow %s: call_end hook: %s", self._machine.flow.name, message)
                self._recorder.log_traceback(exc, f"flow {self._machine.flow.name}: call_end hook")
                self._recorder.record("error", {"message": message, "where": exc.where})

    def merge(self, hook: str, values: Mapping[str, Any]) -> None:
        """A hook's variables join the call's (traced with sensitive values masked)."""
        self._variables.update(values)
        shown = {k: MASK if k in self._machine.sensitive else _plain(v) for k, v in values.items()}
        self._recorder.record("hook", {"hook": hook, "result": "variables", "set": shown})

    def fill(self, template: str, state: State) -> tuple[str, str]:
        """`template` filled from the variables: (the value to use, the masked text to show)."""
        r = fill(Prompt.text(template), self._variables, id=0, state=state.name, sensitive=self._machine.sensitive)
        return r.parts[0].value, r.log_text


def hook_outcome(result: Any, ref: HookRef, state: State, states: Mapping[str, State]) -> Mapping[str, Any] | str | None:
    """What a `run` hook's return value asks for: variables to merge, a state to go to, or
    nothing. Anything else is the hook's error (`HookError`)."""
    if result is None:
        return None
    if isinstance(result, Mapping):
        if not all(isinstance(k, str) for k in result):
            raise hook_error("returned a mapping with non-string keys", ref, state)
        return result
    if isinstance(result, str):
        if result not in states:
            raise hook_error(f"returned state '{result}', which the flow does not define", ref, state)
        return result
    raise hook_error(f"returned {type(result).__name__}; return None, a dict of variables or a state name", ref, state)


def raised_at(exc: BaseException, fn: Callable[..., Any]) -> str:
    """Where in Python `exc` was raised: `file:line (function)` of the innermost frame, and of
    the hook's own frame too when the raise happened deeper (in a library the hook called) —
    what the person fixing the hook needs first, next to the flow file's line."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    own = [f for f in frames if code is not None and f.filename == code.co_filename]
    shown = [frames[-1]] if not own or own[-1] is frames[-1] else [frames[-1], own[-1]]
    text = [f"{_short(f.filename)}:{f.lineno} ({f.name})" for f in shown]
    return text[0] if len(text) == 1 else f"{text[0]}, called from {text[1]}"


def _short(path: str) -> str:
    """`path` relative to the working folder when it is inside it (shorter log lines)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def hook_error(message: str, ref: HookRef, state: State) -> HookError:
    """A `HookError` naming the hook, the state and where the hook is referenced."""
    return HookError(message, hook=str(ref), state=state.name, where=ref.where or state.where)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
