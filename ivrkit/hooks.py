"""Python hooks at call time: running flow hooks under a time limit, and the named observer hook
points (`Hooks`). Resolving a flow's `module:function` references is load time
(`ivrkit.flow.hook_refs`).

Two kinds of hooks, on purpose:
- *flow hooks* are named in the YAML (`run:`, `validate:`); they take part in the flow (return
  variables or the next state) and run with a time limit (`run_limited`, `invoke`).
- *observers* (`Hooks`) are Python callables an application attaches to a call for logging,
  metrics or recording; they see masked trace events and cannot change the flow.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ivrkit.channel import CallerInfo
from ivrkit.clock import Clock
from ivrkit.errors import HookTimeout
from ivrkit.flow.model import Flow
from ivrkit.trace import TraceEvent

T = TypeVar("T")


# --- running hooks at call time ------------------------------------------------------------------
#
# Flow hooks (`run:`, `validate:`, the flow's call_start/call_end) are user code: sync functions
# run on a worker thread (`asyncio.to_thread` semantics) so they cannot stall every other call on
# the loop; async functions run as a task. Each runs under a time limit counted on the call's
# `Clock` (so a test's VirtualClock decides when a hung hook has run too long). A sync hook past
# its limit cannot be killed — Python threads can't be — so the call stops waiting for it and
# moves on; its late result is ignored.


@dataclass(frozen=True, slots=True)
class HookContext:
    """What a flow hook receives: a *copy* of the variables (return a mapping to change them),
    who is calling, the flow, the state it runs in, and for `validate` hooks the digits."""

    variables: Mapping[str, Any]
    caller: CallerInfo
    flow: Flow
    state: str
    digits: str | None = None

    @property
    def caller_number(self) -> str | None:
        return self.caller.number

    @property
    def sip_attributes(self) -> Mapping[str, str]:
        return self.caller.attributes


async def run_limited(awaitable: Awaitable[T], *, clock: Clock, timeout: float) -> T:
    """Await `awaitable` for at most `timeout` seconds of `clock` time.

    Raises `HookTimeout` when the limit passes; an outer cancellation (the caller hung up)
    cancels the inner work and propagates as usual. Leaves no timer behind.
    """
    inner: asyncio.Future[T] = asyncio.ensure_future(awaitable)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        inner.cancel()

    handle = clock.call_later(timeout, expire)
    try:
        return await inner
    except asyncio.CancelledError:
        if expired and not _current_task_cancelling():
            raise HookTimeout(f"ran past its time limit of {timeout:g} s") from None
        raise
    finally:
        handle.cancel()
        if not inner.done():
            inner.cancel()


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


#: Sync hooks get threads of their own, shared by every call (and event loop) of the process:
#: a hook that hangs keeps its thread, and on the loop's default executor hung hooks would
#: end up starving what else runs there (prompt synthesis). Past 32 busy threads a new hook
#: waits for one and, at worst, runs past its time limit: that call takes its error path.
_HOOK_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="ivrkit-hook")


def call_in_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Run a sync hook on the hook threads with the caller's contextvars (like to_thread)."""
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return loop.run_in_executor(_HOOK_THREADS, functools.partial(ctx.run, fn, *args))


async def invoke(fn: Callable[..., Any], *args: Any, on_thread: Callable[[asyncio.Future[Any]], None] | None = None) -> Any:
    """Call a hook, sync or async. `on_thread` learns about the thread future (test idling)."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
        return await fn(*args)
    fut = call_in_thread(fn, *args)
    if on_thread is not None:
        on_thread(fut)
    result = await fut
    if inspect.isawaitable(result):  # a sync function that returned a coroutine
        return await result
    return result


# --- observer hook points ------------------------------------------------------------------------

Observer = Callable[[TraceEvent], Awaitable[None]]
HOOK_POINTS = ("call_start", "state_enter", "digits", "prompt", "transition", "call_end")


@dataclass(slots=True)
class Hooks:
    """Named observer hook points, each a list of async callables (like httpx `event_hooks`).

    Each observer receives the (already masked) `TraceEvent` of its point: `call_start`,
    `state_enter` (a state was entered), `digits` (the caller's input: a key consumed or
    discarded, each collect result, each wait for input with its timers and retries so far,
    each no-input and no-match, what the call listens for and what the caller said — masked
    in a sensitive collect), `prompt` (a prompt started, ended or was skipped),
    `transition`, `call_end`. Records reach observers in trace order, so an observer can
    render the whole call from them (the console phone does). Observers watch; they cannot
    change the flow. One
    that raises or runs past `timeout` is logged and traced (`observer_error`), and the call goes
    on. Example::

        async def count(event: TraceEvent) -> None:
            metrics.incr(f"ivr.state.{event.state}")

        call = Call(machine, channel, hooks=Hooks(state_enter=[count]))
    """

    call_start: list[Observer] = field(default_factory=list)
    state_enter: list[Observer] = field(default_factory=list)
    digits: list[Observer] = field(default_factory=list)
    prompt: list[Observer] = field(default_factory=list)
    transition: list[Observer] = field(default_factory=list)
    call_end: list[Observer] = field(default_factory=list)
    timeout: float = 1.0

    def for_point(self, point: str) -> list[Observer]:
        if point not in HOOK_POINTS:
            raise ValueError(f"unknown hook point {point!r}; use one of {', '.join(HOOK_POINTS)}")
        observers: list[Observer] = getattr(self, point)
        return observers
