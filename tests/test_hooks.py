"""Hooks: resolving references, running sync/async hooks under a Clock time limit, observers."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivrkit.channel import CallerInfo
from ivrkit.errors import FlowValidationError, HookTimeout
from ivrkit.flow.hook_refs import HookImportError, resolve_hook
from ivrkit.flow.loader import load_flow
from ivrkit.flow.model import Flow, HookRef, State
from ivrkit.hooks import HOOK_POINTS, HookContext, Hooks, invoke, run_limited
from ivrkit.machine import FlowMachine
from ivrkit.testing import FlowTester, VirtualClock

NOT_CALLABLE = 3


def sync_hook(ctx: HookContext) -> dict[str, str]:
    return {"thread": threading.current_thread().name}


async def async_hook(ctx: HookContext) -> str:
    return "next"


def test_resolve_hook_and_its_messages() -> None:
    assert resolve_hook(HookRef(__name__, "sync_hook")) is sync_hook
    with pytest.raises(HookImportError, match="cannot import module 'nope_mod'"):
        resolve_hook(HookRef("nope_mod", "f"))
    with pytest.raises(HookImportError, match="has no attribute 'missing'"):
        resolve_hook(HookRef(__name__, "missing"))
    with pytest.raises(HookImportError, match="is a int, not a function"):
        resolve_hook(HookRef(__name__, "NOT_CALLABLE"))


@pytest.fixture
def module_name() -> Iterator[str]:
    """A hook module name no other test uses; forgotten from sys.modules afterwards."""
    name = f"hooks_{uuid.uuid4().hex[:8]}"
    yield name
    sys.modules.pop(name, None)


def flow_with_hooks(folder: Path, module: str, says: str) -> Path:
    (folder / "hk").mkdir(parents=True)
    (folder / "hk" / f"{module}.py").write_text(f"def who(ctx):\n    return {{'who': {says!r}}}\n")
    path = folder / "flow.yaml"
    path.write_text(textwrap.dedent(f"""\
        start: s
        python_path: [hk]
        states:
          s: {{run: {{hook: "{module}:who", sets: [who]}}, say: "I am {{who}}", hangup: true}}
        """))
    return path


async def test_a_flow_keeps_its_python_path_so_hooks_resolve_without_the_load_time_check(
    tmp_path: Path, module_name: str
) -> None:
    flow = load_flow(flow_with_hooks(tmp_path, module_name, "A"), check_hooks=False)
    assert flow.python_path == (str(tmp_path / "hk"),)
    async with FlowTester(FlowMachine(flow)) as t:
        await t.until_input()
    assert t.prompts == ["I am A"]


def test_two_flows_with_a_same_named_hook_module_are_refused_not_mixed_up(tmp_path: Path, module_name: str) -> None:
    """One module per name per process: flow B must not silently run flow A's hooks."""
    load_flow(flow_with_hooks(tmp_path / "a", module_name, "A"))
    with pytest.raises(FlowValidationError) as exc:
        load_flow(flow_with_hooks(tmp_path / "b", module_name, "B"))
    issue = exc.value.issues[0]
    assert issue.file == str(tmp_path / "b" / "flow.yaml") and issue.line == 4 and issue.code == "bad-hook"
    assert f"already imported from {tmp_path / 'a' / 'hk' / module_name}.py" in issue.message
    assert str(tmp_path / "b" / "hk" / f"{module_name}.py") in issue.message


def ctx() -> HookContext:
    flow = Flow(name="f", start="s", states={"s": State("s", "f.yaml:1", hangup=True)}, file="f.yaml")
    return HookContext({"a": 1}, CallerInfo(number="+1", attributes={"k": "v"}), flow, "s")


async def test_invoke_runs_sync_hooks_on_a_thread_and_async_on_the_loop() -> None:
    seen: list[asyncio.Future[object]] = []
    out = await invoke(sync_hook, ctx(), on_thread=seen.append)
    assert out["thread"].startswith("ivrkit-hook") and len(seen) == 1 and seen[0].done()  # not the loop's executor
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
    assert HOOK_POINTS == ("call_start", "state_enter", "digits", "prompt", "transition", "call_end")
    assert hooks.for_point("digits") == [obs] and hooks.for_point("call_end") == []
    with pytest.raises(ValueError, match="unknown hook point 'keys'"):
        hooks.for_point("keys")
