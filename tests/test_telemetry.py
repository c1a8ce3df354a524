"""ivrkit.telemetry: a real call's trace becomes a span tree, through the OTel SDK's in-memory
exporter, with nothing of a sensitive entry in any span."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ivrkit.channel import CallerInfo
from ivrkit.telemetry import export_call
from ivrkit.testing import FlowTester
from tests.call.helpers import bank, make_flow

PIN = "4321"


def _spans(events: object, flow: object, **kw: object) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    export_call(events, provider.get_tracer("test"), flow, **kw)  # type: ignore[arg-type]
    return sorted(exporter.get_finished_spans(), key=lambda s: (s.start_time or 0, s.name))


def _everything(span: ReadableSpan) -> str:
    parts = [span.name, repr(dict(span.attributes or {})), span.status.description or ""]
    parts += [e.name + repr(dict(e.attributes or {})) for e in span.events]
    return " ".join(parts)


async def test_a_call_is_a_span_with_a_child_per_state_and_per_hook_and_no_pin_anywhere() -> None:
    flow = bank()
    caller = CallerInfo(number="+15551234567", called_number="+18005550100", call_id="SCL_1")
    async with FlowTester(flow, caller=caller) as t:
        await t.until_input()
        await t.press("1")
        await t.until_input()
        await t.press(PIN + "#", gap=0.2)
        await t.until_input()
        t.expect_state("main")
    spans = _spans(t.trace, flow, epoch_offset_ns=1_700_000_000 * 10**9, attributes={"ivr.room": "r1"})

    call = next(s for s in spans if s.name == "ivr.call t")
    assert call.parent is None
    assert call.attributes == {"ivr.flow": "t", "ivr.room": "r1", "ivr.ended_by": "caller_hangup"}
    states = [s for s in spans if s.name.startswith("ivr.state ")]
    assert [s.attributes["ivr.state"] for s in states if s.attributes] == ["main", "pin", "balance", "main"]
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id for s in states)
    for before, after in zip(states, states[1:]):
        assert before.end_time == after.start_time  # a state ends where the next begins
    assert states[-1].end_time == call.end_time
    assert call.start_time is not None and call.start_time >= 1_700_000_000 * 10**9
    pin, balance = states[1], states[2]
    assert dict(pin.attributes or {}) == {"ivr.flow": "t", "ivr.state": "pin", "ivr.state.kind": "collect",
                                          "ivr.where": "t.yaml:10"}

    hooks = [s for s in spans if s.name.startswith("ivr.hook ")]
    assert [s.name for s in hooks] == ["ivr.hook tests.call.helpers:lookup_balance"]
    assert hooks[0].parent is not None and hooks[0].parent.span_id == balance.context.span_id
    assert dict(hooks[0].attributes or {}) == {
        "ivr.flow": "t", "ivr.state": "balance", "ivr.hook": "tests.call.helpers:lookup_balance",
        "ivr.hook.result": "variables", "ivr.hook.set.balance": 42}

    keys = [e for e in pin.events if e.name == "key"]
    assert [e.attributes["digit"] for e in keys if e.attributes] == ["*"] * 5  # as the trace masks them
    collect = next(e for e in pin.events if e.name == "collect")
    assert collect.attributes is not None and collect.attributes["into"] == "pin"
    menu_events = [e.name for e in states[0].events]
    assert menu_events[0] == "prompt" and "key" in menu_events and menu_events[-1] == "transition"

    everything = " ".join(_everything(s) for s in spans)
    assert PIN not in everything
    assert "+15551234567" not in everything and "SCL_1" not in everything  # the caller is not exported


async def test_a_hook_past_its_limit_is_a_failed_hook_span_and_the_error_marks_its_state() -> None:
    from ivrkit.flow.model import State
    from tests.call.helpers import hook

    flow = make_flow(State("slow", "t.yaml:1", run=hook("hangs", timeout=2.0), next="bye"),
                     State("bye", "t.yaml:5", hangup=True))
    async with FlowTester(flow) as t:
        await t.advance(3)
    spans = _spans(t.trace, flow)
    hook_span = next(s for s in spans if s.name.startswith("ivr.hook "))
    assert hook_span.status.status_code is StatusCode.ERROR
    assert hook_span.end_time is not None and hook_span.start_time is not None
    assert hook_span.end_time - hook_span.start_time == 2 * 10**9  # from the state's entry to the limit
    slow = next(s for s in spans if s.name == "ivr.state slow")
    assert slow.status.status_code is StatusCode.ERROR
    assert "error" in [e.name for e in slow.events]


def test_an_empty_trace_makes_no_span() -> None:
    assert _spans([], bank()) == []


async def test_a_validated_sensitive_entry_and_a_hook_error_quoting_it_stay_masked_in_spans() -> None:
    from tests.call.helpers import collect_flow, hook

    flows = [collect_flow(validate=hook("check_pin"), sensitive=True, into="pin"),
             collect_flow(validate=hook("leaky_validate"), sensitive=True, into="pin")]  # its error quotes the PIN
    hook_results = []
    for flow in flows:
        async with FlowTester(flow) as t:
            await t.press(PIN + "#")
            await t.advance(10)
        spans = _spans(t.trace, flow)
        hook_results.append([(s.name, (s.attributes or {}).get("ivr.hook.result")) for s in spans
                             if s.name.startswith("ivr.hook ")])
        everything = " ".join(_everything(s) for s in spans)
        assert PIN not in everything, everything
        acct = next(s for s in spans if s.name == "ivr.state acct")
        collect = next(e for e in acct.events if e.name == "collect")
        assert collect.attributes is not None and collect.attributes["digits"] == "****"
    assert "bad pin ****" in everything  # the error event is there, masked as the trace has it
    # the validate hook that returned is a span; the one that raised is only the error event
    # (the trace has an `error` record for it, not a `hook` record)
    assert hook_results == [[("ivr.hook tests.call.helpers:check_pin", True)], []]
