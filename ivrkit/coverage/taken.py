"""Which edges of the graph one call took, read from its trace.

The trace already says why every move happened (`transition.why`: "key 1", "goto 2",
"collected", "error", …), and records each no-input and no-match with its count, so no
instrumentation of the call runtime is needed: a worker trace file or a console `--trace`
could be read the same way. Edges that are not a move are read from their own records: a retry
(`no_input` / `no_match` with `count < retries` and, with `max_attempts`, `attempts` below it; a `no_match` right after the `validate` hook
said False is the `invalid` edge), exhaustion (`count >= retries` or `attempts >= max_attempts`, whether it leads to
`on_max_retries` or the error path), and the menu's repeat key (a consumed `key` record).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ivrkit.flow.model import Flow
from ivrkit.graph.model import ANY_ERROR, START
from ivrkit.trace import TraceEvent

#: How a transition's `why` starts when retries ran out ("max retries (no_input)").
MAX_RETRIES = "max retries"


def taken(flow: Flow, events: Iterable[TraceEvent]) -> tuple[Counter[str], Counter[str]]:
    """(edge ids taken, states entered) by the call whose trace is `events`, with counts.

    Edge ids are those of `build_graph(flow)`; an id can name an edge the graph does not have
    only if the trace comes from another version of the flow (the caller intersects)."""
    edges: Counter[str] = Counter()
    states: Counter[str] = Counter()
    last_in: dict[str, TraceEvent] = {}  # the previous record of each state
    for e in events:
        state = e.state or ""
        if e.kind == "state" and state in flow.states:
            states[state] += 1
        elif e.kind == "transition":
            why = str(e.data.get("why", ""))
            edge = move_edge(flow, str(e.data.get("from")), str(e.data.get("to")), why)
            if edge and not why.startswith(MAX_RETRIES):  # counted from its no_input / no_match record
                edges[edge] += 1
        elif e.kind in ("no_input", "no_match") and state in flow.states:
            edges[_retry(e, last_in.get(state))] += 1
        elif e.kind == "key" and e.data.get("consumed") == state and state in flow.states:
            menu = flow.states[state].menu
            digit = e.data.get("digit")
            if menu is not None and digit == menu.repeat_key and digit not in menu.options:
                edges[f"{state}:repeat"] += 1
        last_in[state] = e
    return edges, states


def move_edge(flow: Flow, source: str, dest: str, why: str) -> str | None:
    """The id of the edge a move took, from its transition record (`from`, `to`, `why`); None
    when no edge of the graph stands for it (a `goto` no arm matched, a flow changed since).
    The worker publishes it live (`ivrkit.edge`), so the dial pad marks the edge just taken."""
    if why.startswith(MAX_RETRIES):
        return f"{source}:max_retries"
    if why == "start":
        return f"{START}:start"
    if why.startswith(("key ", "said ")):  # an option spoken is the same edge as pressed
        return f"{source}:key:{why.split(' ', 1)[1]}"
    if why.startswith("goto "):
        return f"{source}:goto:{why[5:]}"
    if why.startswith("hook "):
        return f"{source}:hook"
    simple = {"back": "back", "collected": "collected", "re-enter": "reenter", "next": "next",
              "send_dtmf": "next", "dial": "next", "navigate": "next", "navigate failed": "nav_fail"}
    if why in simple:
        return f"{source}:{simple[why]}"
    if why == "error":
        state = flow.states.get(source)
        if state is not None and state.on_error == dest:
            return f"{source}:on_error"
        if dest == flow.error_state:
            return f"{ANY_ERROR}:error"
    return None


def _retry(e: TraceEvent, before: TraceEvent | None) -> str:
    state = e.state
    if int(e.data.get("count", 0)) >= int(e.data.get("retries", 1)):
        return f"{state}:max_retries"
    if "max_attempts" in e.data and int(e.data.get("attempts", 0)) >= int(e.data["max_attempts"]):
        return f"{state}:max_retries"  # no-input and no-match together ran out (`max_attempts`)
    if e.kind == "no_match" and before is not None and before.kind == "hook" and before.data.get("result") is False:
        return f"{state}:invalid"
    return f"{state}:{e.kind}"
