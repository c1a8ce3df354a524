"""OpenTelemetry spans of one call, built from its finished trace.

Why from the trace and not live: the trace is already the masked, ordered account of the call
(`ivrkit.trace`), so spans made from it cannot show anything the trace does not — no second
place to get masking right. Built once the call has ended, they cost the call nothing while it
runs and need no new observer points (hook records are not observer events).

The tree: one `ivr.call` span; under it one `ivr.state` span per state entered (from its
`state` record to the next one, or to `call_end`); under a state, one `ivr.hook` span per flow
hook that returned or ran past its limit there (call_start hooks sit under the call span); a
hook that raised has no `hook` record, so it shows as its state's `error` event, whose masked
message names the hook. Every
other record of a state becomes an event of its span, named by its kind, with the record's
fields as attributes — keys as recorded (`*` in sensitive input), prompts' masked text,
no_input / no_match, collects (digits masked), transitions, errors (which also mark the span
as failed).

Left out on purpose: the `call_start` record's caller number, dialled number and SIP call id. A
trace file stays on the worker's disk; spans go to whatever collector `OTEL_*` names, and a
caller's number there would be personal data the operator did not choose to export. The
adapter adds what ties a span to its trace file (the room and job).

Times: records carry the call's `Clock` time (seconds, loop time on a real call); the adapter
passes `epoch_offset_ns`, the wall time of clock zero read once per call, so span times are
epoch nanoseconds. With a test's VirtualClock the offset is 0: times start at 1970, and spans
still nest and order correctly. The trace has no record of a hook *starting*: a hook span
starts at the record before its own (the state entry for `run:`, the collect for `validate:`),
when the hook was called or a moment before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace as otel
from opentelemetry.util.types import AttributeValue

from ivrkit.flow.model import Flow
from ivrkit.trace import TraceEvent

#: Records that are not events of a state span: they open spans, or are the call's own.
_STRUCTURE = frozenset({"call_start", "state", "hook", "call_end"})


def export_call(events: Iterable[TraceEvent], tracer: otel.Tracer, flow: Flow, *, epoch_offset_ns: int = 0,
                attributes: Mapping[str, AttributeValue] | None = None) -> None:
    """Emit the spans of one finished call's trace through `tracer` (see the module docstring).

    `attributes` go on the call span (the adapter's room and job id). An unfinished trace (no
    `call_end`) ends its spans at its last record.
    """
    records = list(events)
    if not records:
        return

    def ns(t: float) -> int:
        return epoch_offset_ns + round(t * 1e9)

    end = records[-1]
    call = tracer.start_span(f"ivr.call {flow.name}", start_time=ns(records[0].t),
                             attributes={"ivr.flow": flow.name, **(attributes or {})})
    parent_ctx = otel.set_span_in_context(call)
    state_span: otel.Span | None = None
    previous = records[0]
    for event in records:
        if event.kind == "state":
            if state_span is not None:
                state_span.end(end_time=ns(event.t))
            state = flow.states.get(event.state or "")
            state_span = tracer.start_span(
                f"ivr.state {event.state}", context=parent_ctx, start_time=ns(event.t),
                attributes={"ivr.flow": flow.name, "ivr.state": event.state or "",
                            "ivr.state.kind": state.kind if state is not None else "",
                            "ivr.where": str(event.data.get("where", ""))})
        elif _is_hook(event):
            _hook_span(tracer, event, state_span or call, ns(previous.t), ns(event.t), flow.name)
        elif event.kind == "call_end":
            call.set_attributes(_attributes(event.data, "ivr."))
        elif event.kind not in _STRUCTURE:
            span = state_span or call
            span.add_event(event.kind, _attributes(event.data, ""), timestamp=ns(event.t))
            if event.kind == "error":
                span.set_status(otel.Status(otel.StatusCode.ERROR, str(event.data.get("message", ""))))
        previous = event
    if state_span is not None:
        state_span.end(end_time=ns(end.t))
    call.end(end_time=ns(end.t))


def _is_hook(event: TraceEvent) -> bool:
    return event.kind == "hook" or (event.kind == "timeout" and event.data.get("what") == "hook")


def _hook_span(tracer: otel.Tracer, event: TraceEvent, parent: otel.Span, start: int, end: int, flow: str) -> None:
    name = str(event.data.get("hook", ""))
    attrs: dict[str, AttributeValue] = {"ivr.flow": flow, "ivr.state": event.state or "", "ivr.hook": name}
    if event.kind == "hook":
        attrs.update(_attributes({k: v for k, v in event.data.items() if k != "hook"}, "ivr.hook."))
    span = tracer.start_span(f"ivr.hook {name}", context=otel.set_span_in_context(parent), start_time=start,
                             attributes=attrs)
    if event.kind == "timeout":
        span.set_status(otel.Status(otel.StatusCode.ERROR, f"ran past its time limit of {event.data.get('limit')} s"))
    span.end(end_time=end)


def _attributes(data: Mapping[str, Any], prefix: str) -> dict[str, AttributeValue]:
    """A record's fields as span attributes: OTel takes str, bool, int and float; anything else
    (a hook's `set` mapping, already masked) is shown as its text, as the JSON trace would."""
    out: dict[str, AttributeValue] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                out[f"{prefix}{key}.{sub}"] = v if isinstance(v, (str, bool, int, float)) else str(v)
        elif isinstance(value, (str, bool, int, float)):
            out[prefix + key] = value
        elif value is not None:
            out[prefix + key] = str(value)
    return out
