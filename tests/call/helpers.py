"""What the call tests share: the flows they run (`bank()`, `collect_flow()`, `make_flow()`)
and the hook functions those flows name. The hooks are resolved by module name, as a
real flow file's `module:function` is, so they live here and `hook()` points at this
module; a trace records them as `tests.call.helpers:<name>`."""

from __future__ import annotations

import asyncio
from typing import Any

from ivrkit.flow.model import Collect, Flow, HookRef, Menu, Settings, State, Transfer
from ivrkit.hooks import HookContext
from ivrkit.prompts import Prompt
from ivrkit.testing import FlowTester
from ivrkit.trace import TraceEvent

P = Prompt.text
MENU_TEXT = "For balances press 1. For cards press 2."  # 40 chars: 2.4 s at 0.06 s/char


def hook(name: str, **kw: Any) -> HookRef:
    return HookRef(__name__, name, where=f"t.yaml:{name}", **kw)


def make_flow(*states: State, **kw: Any) -> Flow:
    return Flow(name="t", start=states[0].name, states={s.name: s for s in states}, file="t.yaml", **kw)


def main_menu(**kw: Any) -> State:
    settings = kw.pop("settings", Settings())
    args: dict[str, Any] = {
        "no_input": (P("Sorry, I didn't hear a choice."), P("Please press a key now.")),
        "no_match": (P("That is not a valid choice."),),
        "on_max_retries": "bye",
    }
    args.update(kw)
    return State("main", "t.yaml:2", settings=settings,
                 menu=Menu(P(MENU_TEXT), {"1": "pin", "2": "cards", "0": "agent"}, **args))


def bank(**menu_kw: Any) -> Flow:
    return make_flow(
        main_menu(**menu_kw),
        State("pin", "t.yaml:10", collect=Collect(P("Enter your PIN, then pound."), into="pin", min_digits=4,
                                                  max_digits=8, sensitive=True, back_key="*",
                                                  no_match=(P("That PIN is too short."),), on_max_retries="bye"),
              next="balance"),
        State("balance", "t.yaml:20", run=hook("lookup_balance"), say=P("Your balance is {balance} dollars."),
              next="main"),
        State("cards", "t.yaml:25", menu=Menu(P("Lost card press 1."), {"1": "bye"}, back_key="*", repeat_key="9")),
        State("agent", "t.yaml:30", transfer=Transfer("sip:agents@pbx.example.com", announce=P("Please hold."))),
        State("bye", "t.yaml:35", say=P("Goodbye."), hangup=True),
    )


SEEN: list[HookContext] = []
CANCELLED: list[str] = []


def lookup_balance(ctx: HookContext) -> dict[str, Any]:  # sync: runs on a thread
    SEEN.append(ctx)
    return {"balance": 42}


async def route(ctx: HookContext) -> str:
    return "vip" if ctx.variables.get("caller_number") == "+1555" else "main"


async def hangs(ctx: HookContext) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        CANCELLED.append(ctx.state)


def boom(ctx: HookContext) -> None:
    raise RuntimeError("database is down")


async def returns_int(ctx: HookContext) -> int:
    return 7


async def returns_ghost(ctx: HookContext) -> str:
    return "ghost"


def check_pin(ctx: HookContext, digits: str) -> bool:
    return digits == "4321"


def leaky_validate(ctx: HookContext, digits: str) -> bool:
    raise ValueError(f"bad pin {digits}")


async def start_hook(ctx: HookContext) -> dict[str, Any]:
    return {"open": True}


END_CALLS: list[str] = []


async def end_hook(ctx: HookContext) -> None:
    END_CALLS.append(ctx.state)


def key_records(t: FlowTester) -> list[TraceEvent]:
    return t.trace.keys()


def collect_flow(**kw: Any) -> Flow:
    settings = kw.pop("settings", Settings())
    args: dict[str, Any] = {"into": "acct", "min_digits": 4, "max_digits": 6, "on_max_retries": "bye"}
    args.update(kw)
    return make_flow(
        State("acct", "t.yaml:1", collect=Collect(P("Enter your account number."), **args), settings=settings,
              next="done"),
        State("done", "t.yaml:5", say=P("Thanks {acct}."), hangup=True),
        State("bye", "t.yaml:6", say=P("Bye."), hangup=True),
    )


def start_fails(ctx: HookContext) -> None:
    raise LookupError("CRM unreachable")


RELEASE = __import__("threading").Event()
FINISHED = __import__("threading").Event()


def blocks(ctx: HookContext) -> dict[str, Any]:
    RELEASE.wait(10)
    FINISHED.set()
    return {"late": True}


GATE = asyncio.Event()  # a test replaces it with a fresh one (an Event belongs to one loop)


async def gated(ctx: HookContext) -> None:
    """Runs until the test sets `GATE`: keys pressed meanwhile are held."""
    await GATE.wait()


def deep(ctx: HookContext) -> None:
    """Fails inside a library it calls, not in its own line."""
    import json

    json.loads("{")
