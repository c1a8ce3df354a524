"""Reading the edges a call took from its trace: every edge kind of the graph is recognised."""

from __future__ import annotations

import pytest

from ivrkit.coverage.taken import move_edge, taken
from ivrkit.flow.loader import load_flow_text
from ivrkit.graph.model import build_graph
from ivrkit.machine import FlowMachine
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock
from tests.graph.helpers import EVERY_EDGE

FLOW = load_flow_text(EVERY_EDGE, "every.yaml")
GRAPH = build_graph(FLOW)


@pytest.fixture()
def machine() -> FlowMachine:
    return FlowMachine(FLOW)


async def _edges(machine: FlowMachine, *steps: str | float, channel: FakeChannel | None = None) -> set[str]:
    async with FlowTester(machine, channel=channel) as t:
        for step in steps:
            if isinstance(step, str):
                await t.press(step)
            else:
                await t.until_input()
                await t.advance(step)
        await t.advance(60)
    edges, _ = taken(FLOW, t.trace)
    assert set(edges) <= {e.id for e in GRAPH.edges}, "an id the graph does not have"
    return set(edges)


async def test_menu_keys_repeat_no_input_no_match_and_exhaustion(machine: FlowMachine) -> None:
    edges = await _edges(machine, "*", 5.0, "9", 5.0)
    assert edges == {"_ivrkit_start:start", "main:repeat", "main:no_input", "main:no_match", "main:max_retries"}


async def test_collect_too_short_reenter_confirm_next_and_a_goto_arm(machine: FlowMachine) -> None:
    edges = await _edges(machine, "1", "12#", "1234", "2", "1234", "1")
    assert {"main:key:1", "pin:no_match", "pin:reenter", "pin:collected", "lookup:next", "route:goto:1"} <= edges
    assert "pin:invalid" not in edges and "route:goto:3" not in edges
    assert "lookup:hook" not in edges  # the hook returned variables, not a state


async def test_validation_failure_then_exhaustion_through_the_error_path(machine: FlowMachine) -> None:
    edges = await _edges(machine, "1", "5555", "5555")
    assert {"pin:invalid", "pin:max_retries", "_ivrkit_any_error:error"} <= edges


async def test_back_key_goto_else_dtmf_and_dial(machine: FlowMachine) -> None:
    edges = await _edges(machine, "1", "*", "3")
    assert {"pin:back", "main:key:3", "legacy:next", "out:next"} <= edges
    edges = await _edges(machine, "2")
    assert {"main:key:2", "route:goto:2"} <= edges  # last_key == '2'


async def test_a_failure_takes_the_flows_error_state(machine: FlowMachine) -> None:
    failing = FakeChannel(VirtualClock(), fail_transfer=True)
    edges = await _edges(machine, "0", channel=failing)
    assert "_ivrkit_any_error:error" in edges and "main:key:0" in edges


async def test_a_state_naming_on_error_takes_its_own_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.graph.hooks as hooks

    monkeypatch.setattr(hooks, "pin_ok", lambda ctx, digits: True)  # before the machine resolves it
    edges = await _edges(FlowMachine(FLOW), "1", "9999", "1")  # the lookup hook raises for 9999
    assert "lookup:on_error" in edges and "_ivrkit_any_error:error" not in edges


async def test_a_hook_returning_a_state_takes_the_hook_edge() -> None:
    flow = load_flow_text("""
start: a
states:
  a: {run: tests.coverage.test_taken:to_b, next: c}
  b: {say: "B.", hangup: true}
  c: {say: "C.", hangup: true}
""")
    async with FlowTester(flow) as t:
        await t.advance(10)
    edges, states = taken(flow, t.trace)
    assert set(edges) == {"_ivrkit_start:start", "a:hook"} and set(states) == {"a", "b"}


def to_b(ctx: object) -> str:
    return "b"


async def test_move_edge_names_the_edge_each_move_took_exhaustion_too(machine: FlowMachine) -> None:
    async with FlowTester(machine) as t:
        await t.press("*")
        await t.until_input()
        await t.advance(5.0)
        await t.press("9")
        await t.until_input()
        await t.advance(5.0)
        await t.advance(60)
    moves = [move_edge(FLOW, str(e.data["from"]), str(e.data["to"]), str(e.data["why"]))
             for e in t.trace if e.kind == "transition"]
    assert moves == ["_ivrkit_start:start", "main:max_retries"]  # the picture marks the exhaustion edge
    edges, _ = taken(FLOW, t.trace)
    assert edges["main:max_retries"] == 1  # counted once: from its no_input record, not again from the move
    assert move_edge(FLOW, "main", "pin", "key 1") == "main:key:1"
    assert move_edge(FLOW, "route", "agent", "goto: no branch matched") is None


async def test_navigate_takes_its_navigated_and_failed_edges() -> None:
    from ivrkit.testing import ScriptedIvr, far_end_speech

    flow = load_flow_text("""
start: out
states:
  out: {dial: "+15550100", next: drive}
  drive:
    navigate: {steps: [{listen: 500ms, timeout: 5s}, {send: "1"}], on_fail: failed}
    next: done
  done: {say: "Done.", hangup: true}
  failed: {say: "Failed.", hangup: true}
""")
    graph = build_graph(flow)
    assert {e.id for e in graph.edges if e.source == "drive"} == {"drive:next", "drive:nav_fail"}
    ivr = ScriptedIvr({"main": (far_end_speech("Press 1."), {"1": "main"})}, "main")
    for far, edge in ((ivr, "drive:next"), (None, "drive:nav_fail")):
        async with FlowTester(flow, channel=FakeChannel(VirtualClock(), far_end=far)) as t:
            await t.advance(20)
        edges, _ = taken(flow, t.trace)
        other = ({"drive:next", "drive:nav_fail"} - {edge}).pop()
        assert edge in edges and other not in edges
