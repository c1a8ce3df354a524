"""Real traces for the report tests: calls of flows/bank.yaml on a FlowTester, written to files
the way the worker writes them (`call` record, the call's records by `TraceCopier`, `job_end`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from ivrkit.channel import CallerInfo
from ivrkit.livekit.trace import TraceCopier, TraceWriter
from ivrkit.testing import FlowTester

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "flows" / "bank.yaml"
CALLER = CallerInfo(number="+15550100", called_number="+15550199", call_id="SCL_1")

Script = Callable[[FlowTester], Awaitable[None]]


async def agent(t: FlowTester) -> None:  # press 0 at once: transferred at t=4.52
    await t.advance(1.5)
    await t.press("0")
    await t.advance(10)


async def wrong_key_then_agent(t: FlowTester) -> None:  # 9 is no choice, then 0
    await t.advance(1.5)
    await t.press("9")
    await t.advance(5)
    await t.press("0")
    await t.advance(10)


async def silent_then_hangup(t: FlowTester) -> None:  # two no-inputs in main, then hangs up
    await t.advance(33)
    await t.hangup()


async def hangup_at_pin(t: FlowTester) -> None:  # gives the account, then hangs up at the PIN
    await t.advance(1.5)
    await t.press("1")
    await t.press("12345678#", gap=0.3)
    await t.advance(2)
    await t.hangup()


async def wrong_pin_then_hangup(t: FlowTester) -> None:  # a wrong PIN (masked), then gone
    await t.advance(1.5)
    await t.press("1")
    await t.press("12345678#", gap=0.3)
    await t.press("9999", gap=0.3)
    await t.advance(1)
    await t.hangup()


async def never_answers(t: FlowTester) -> None:  # no input until the menu gives up: goodbye
    await t.advance(120)


async def write_call(directory: Path, n: int, script: Script) -> Path:
    async with FlowTester(BANK, caller=CALLER) as t:
        await script(t)
    writer = TraceWriter(directory, f"room-{n}", f"AJ_{n}", start=0.0)
    writer.write("call", at=0.0, clock=0.0, room=f"room-{n}", caller="sip_+15550100", sip=True,
                 flow="acme-bank", route="default flow", caller_info={"number": CALLER.number})
    TraceCopier(writer, t.call.trace).copy()
    writer.write("job_end", at=t.call.trace.events[-1].t + 0.1, reason="caller left")
    writer.close()
    return writer.path


SCRIPTS: tuple[Script, ...] = (agent, agent, wrong_key_then_agent, silent_then_hangup, hangup_at_pin,
                               wrong_pin_then_hangup, never_answers)


async def write_calls(directory: Path) -> list[Path]:
    return [await write_call(directory, n, s) for n, s in enumerate(SCRIPTS)]
