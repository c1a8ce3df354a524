"""The one background task a call may have: a hook, or a channel action (transfer, dial,
send_dtmf).

Hooks (`run:`; `validate:` gets `(ctx, digits)` and returns a bool) receive a `HookContext` and
may return None, a mapping (merged into the variables) or a state name (the call goes there at
once, skipping `say` and the action). The flow's `call_start` hooks run before the start state
(mappings merged; a failure takes the error path); `call_end` hooks run after the call ended,
each under its limit. Sync hooks run on a worker thread: one that overruns its limit is
abandoned, not killed (Python cannot kill threads) — its late result is ignored.

A task's outcome comes back as a `_Done` event in queue order, tagged with a generation number so
the result of a task that was cancelled (the caller moved on, hung up) is ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ivrkit.call_core import _ACTION, CallCore, _Done
from ivrkit.channel import DTMF_KEYS
from ivrkit.errors import ChannelError, HookError
from ivrkit.flow.model import HookRef, State
from ivrkit.hooks import HookContext, HookTimeout, invoke, run_limited
from ivrkit.prompts import MASK, Prompt, fill


class CallTasks(CallCore):
    """Starts, cancels and runs the call's background task: hooks and channel actions."""

    __slots__ = ()

    # --- hooks ---------------------------------------------------------------------------------

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
            raise hook_error(str(exc), ref, state) from None
        except HookError:
            raise
        except Exception as exc:
            raise hook_error(f"raised {type(exc).__name__}: {exc}", ref, state) from exc

    def _merge(self, ref: HookRef, values: Mapping[str, Any]) -> None:
        self.variables.update(values)
        shown = {k: MASK if k in self.machine.sensitive else _plain(v) for k, v in values.items()}
        self._record("hook", {"hook": str(ref), "result": "variables", "set": shown})

    # --- channel actions -----------------------------------------------------------------------

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
        r = fill(Prompt.text(template), self.variables, id=0, state=self.state, sensitive=self.machine.sensitive)
        return r.parts[0].value, r.log_text


def hook_error(message: str, ref: HookRef, state: State) -> HookError:
    """A `HookError` naming the hook, the state and where the hook is referenced."""
    return HookError(message, hook=str(ref), state=state.name, where=ref.where or state.where)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
