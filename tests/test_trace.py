"""The call trace: order, JSON lines, the size cap, and what a real call records."""

from __future__ import annotations

import json

from ivrkit import trace as trace_mod
from ivrkit.flow.model import Collect, Flow, Menu, State
from ivrkit.prompts import Prompt
from ivrkit.testing import FlowTester
from ivrkit.trace import Trace

P = Prompt.text


def test_records_are_numbered_and_serialised_in_order() -> None:
    tr = Trace()
    tr.record(0.0, "state", "main", {"where": "f.yaml:3"})
    tr.record(1.5, "key", "main", {"digit": "1", "arrived": 1.5, "consumed": "main"})
    lines = [json.loads(line) for line in tr.to_jsonl().splitlines()]
    assert lines == [
        {"seq": 1, "t": 0.0, "kind": "state", "state": "main", "where": "f.yaml:3"},
        {"seq": 2, "t": 1.5, "kind": "key", "state": "main", "digit": "1", "arrived": 1.5, "consumed": "main"},
    ]
    assert len(tr) == 2 and [e.kind for e in tr] == ["state", "key"] and tr.keys()[0].data["digit"] == "1"
    assert "#2 t=1.500 [main] key digit='1'" in tr.tail()


def test_trace_is_capped_but_keeps_every_key_one_truncated_mark_and_the_end() -> None:
    tr = Trace()
    for i in range(trace_mod.MAX_EVENTS + 10):
        tr.record(float(i), "prompt", "s", {"id": i})
        tr.record(float(i), "key", "s", {"digit": "1", "arrived": float(i), "consumed": "s"})
    tr.record(0, "call_end", "s", {"ended_by": "hangup"})
    keys = tr.keys()
    assert len(keys) == trace_mod.MAX_EVENTS + 10  # not one key lost
    assert [k.data["arrived"] for k in keys] == [float(i) for i in range(trace_mod.MAX_EVENTS + 10)]
    [mark] = tr.of_kind("truncated")
    assert mark.data == {"limit": trace_mod.MAX_EVENTS}
    after = tr.events[tr.events.index(mark) + 1:]
    assert {e.kind for e in after} == {"key", "call_end"}  # only the always-kept kinds follow it
    assert tr.dropped == trace_mod.MAX_EVENTS + 10 - trace_mod.MAX_EVENTS // 2
    end = tr.events[-1]
    assert end.kind == "call_end" and end.data == {"ended_by": "hangup", "dropped": tr.dropped}
    seqs = [e.seq for e in tr.events]
    assert seqs == sorted(seqs) and end.seq == len(tr) + tr.dropped  # dropped records leave gaps


def test_a_trace_under_the_cap_has_no_truncated_mark() -> None:
    tr = Trace()
    for i in range(trace_mod.MAX_EVENTS):
        tr.record(float(i), "prompt", "s", {})
    tr.record(0, "call_end", "s", {"ended_by": "hangup"})
    assert tr.dropped == 0 and not tr.of_kind("truncated") and tr.events[-1].data == {"ended_by": "hangup"}


async def test_a_call_trace_holds_every_kind_of_step_and_masks_sensitive_values() -> None:
    states = {
        "m": State("m", "f.yaml:2", menu=Menu(P("Press 1."), {"1": "pin"})),
        "pin": State("pin", "f.yaml:5", collect=Collect(P("PIN?"), into="pin", min_digits=4, max_digits=4,
                                                        sensitive=True), next="bye"),
        "bye": State("bye", "f.yaml:9", say=P("Your PIN is {pin}."), hangup=True),
    }
    flow = Flow(name="f", start="m", states=states, file="f.yaml")
    async with FlowTester(flow) as t:
        await t.press("1")
        await t.press("2468")
        await t.advance(5)
    text = t.trace.to_jsonl()
    assert "2468" not in text
    kinds = {e.kind for e in t.trace}
    assert {"call_start", "transition", "state", "prompt", "prompt_end", "key", "collect", "call_end"} <= kinds
    said = [e.data["text"] for e in t.trace.of_kind("prompt")]
    assert said[-1] == "Your PIN is ****."
    assert [e.data["digit"] for e in t.trace.keys()] == ["1", "*", "*", "*", "*"]
    assert t.trace.closed


async def test_a_call_past_the_cap_keeps_every_key_the_caller_pressed() -> None:
    """2,000 presses, each a move with its prompt: ~10,000 records, every key still there once."""
    states = {"m": State("m", "f.yaml:2", menu=Menu(P("Press 1."), {"1": "m"}))}
    async with FlowTester(Flow(name="f", start="m", states=states, file="f.yaml")) as t:
        await t.press("1" * 2000, gap=0.01)
        await t.hangup()
    keys = t.trace.keys()
    assert len(keys) == 2000 and all(k.data["consumed"] == "m" for k in keys)
    assert len(t.trace.of_kind("truncated")) == 1 and t.trace.dropped > 0
    assert t.trace.events[-1].data["dropped"] == t.trace.dropped
