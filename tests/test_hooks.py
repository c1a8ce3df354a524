"""Hooks: resolving references, running sync/async hooks under a Clock time limit, observers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ivrkit.channel import CallerInfo
from ivrkit.flow.model import Flow, HookRef, State
from ivrkit.hooks import HOOK_POINTS, HookContext, HookImportError, Hooks, HookTimeout, invoke, resolve_hook, run_limited
from ivrkit.testing import VirtualClock

NOT_CALLABLE = 3


def sync_hook(ctx: HookContext) -> dict[str, str]:
    return {"thread": threading.current_thread().name}


async def async_hook(ctx: HookContext) -> str:
    return "next"


def test_resolve_hook_and_its_messages() -> None:
    assert resolve_hook(HookRef("test_hooks", "sync_hook")) is sync_hook
    with pytest.raises(HookImportError, match="cannot import module 'nope_mod'"):
        resolve_hook(HookRef("nope_mod", "f"))
    with pytest.raises(HookImportError, match="has no attribute 'missing'"):
        resolve_hook(HookRef("test_hooks", "missing"))
    with pytest.raises(HookImportError, match="is a int, not a function"):
        resolve_hook(HookRef("test_hooks", "NOT_CALLABLE"))


def ctx() -> HookContext:
    flow = Flow(name="f", start="s", states={"s": State("s", "f.yaml:1", hangup=True)}, file="f.yaml")
    return HookContext({"a": 1}, CallerInfo(number="+1", attributes={"k": "v"}), flow, "s")


async def test_invoke_runs_sync_hooks_on_a_thread_and_async_on_the_loop() -> None:
    seen: list[asyncio.Future[object]] = []
    out = await invoke(sync_hook, ctx(), on_thread=seen.append)
    assert out["thread"] != threading.current_thread().name and len(seen) == 1 and seen[0].done()
    assert await invoke(async_hook, ctx()) == "next"
    c = ctx()
    assert c.caller_number == "+1" and c.sip_attributes == {"k": "v"} and c.digits is None


async def test_run_limited_times_out_on_the_clock_and_leaves_no_timer() -> None:
    clock = VirtualClock()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(run_limited(forever(), clock=clock, timeout=2.0))
    await started.wait()
    clock.advance(1.99)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.01)
    with pytest.raises(HookTimeout, match="time limit of 2 s"):
        await task
    assert clock.pending() == 0


async def test_run_limited_passes_results_and_outer_cancellation() -> None:
    clock = VirtualClock()

    async def value() -> int:
        return 5

    assert await run_limited(value(), clock=clock, timeout=1) == 5
    assert clock.pending() == 0
    inner_cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            inner_cancelled.set()
            raise

    task = asyncio.create_task(run_limited(forever(), clock=clock, timeout=10))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inner_cancelled.is_set() and clock.pending() == 0


def test_hook_points_are_fixed_names() -> None:
    async def obs(event: object) -> None:
        return None

    hooks = Hooks(digits=[obs])
    assert HOOK_POINTS == ("call_start", "state_enter", "digits", "transition", "call_end")
    assert hooks.for_point("digits") == [obs] and hooks.for_point("call_end") == []
    with pytest.raises(ValueError, match="unknown hook point 'keys'"):
        hooks.for_point("keys")
