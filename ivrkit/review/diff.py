"""`ivrkit diff OLD NEW`: what a change to a flow does to callers.

Read from the two graphs, edge by edge (an edge id is `state:kind[:detail]`, so "key 2 of main"
is the same edge in both versions): keys and other edges added, removed, or re-routed to
another state; states added and removed; prompts whose text changed; states a caller now needs
more steps to reach (shortest paths from the start, `review.paths`).
"""

from __future__ import annotations

from collections.abc import Iterator

from ivrkit.flow.model import Flow, State
from ivrkit.graph.model import FlowGraph
from ivrkit.prompts import Prompt
from ivrkit.review.paths import shortest_paths, steps


def diff(old: Flow, old_graph: FlowGraph, new: Flow, new_graph: FlowGraph) -> list[str]:
    """Every change callers would notice, one line each (empty: none)."""
    lines: list[str] = []
    added = [s for s in new.states if s not in old.states]
    removed = [s for s in old.states if s not in new.states]
    lines += [f"state added: {s} ({new.states[s].kind}, {new.states[s].where})" for s in added]
    lines += [f"state removed: {s} (was {old.states[s].kind}, {old.states[s].where})" for s in removed]
    if old.start != new.start:
        lines.append(f"start: now {new.start} (was {old.start})")
    lines += list(_edges(old_graph, new_graph, set(removed)))
    for name in new.states:
        if name in old.states:
            lines += list(_prompts(old.states[name], new.states[name]))
    before, after = shortest_paths(old_graph), shortest_paths(new_graph)
    for name, path in after.items():
        was = before.get(name)
        if was is not None and path.steps > was.steps:
            lines.append(f"longer: {name} is {steps(path.steps)} from the start (was {was.steps}): {path}")
    lines += [f"unreachable now: {name} (was {steps(before[name].steps)} from the start)"
              for name in before if name in new.states and name not in after]
    return lines


def _edges(old: FlowGraph, new: FlowGraph, gone: set[str]) -> Iterator[str]:
    before = {e.id: e for e in old.edges if e.counted}
    after = {e.id: e for e in new.edges if e.counted}
    for eid, e in after.items():
        was = before.get(eid)
        if was is None:
            yield f"added: {new.describe(e)}"
        elif was.target != e.target:
            yield f"re-routed: {new.describe(e)} (was to {old.describe(was).rsplit('--> ', 1)[1]})"
    for eid, e in before.items():
        if eid not in after and e.source not in gone:
            yield f"removed: {old.describe(e)}"


def _prompts(old: State, new: State) -> Iterator[str]:
    o, n = _texts(old), _texts(new)
    for slot in sorted(set(o) | set(n)):
        if o.get(slot) != n.get(slot):
            yield (f"prompt changed: {new.name}.{slot} ({new.where})\n"
                   f"    - {o.get(slot, '(none)')}\n    + {n.get(slot, '(none)')}")


def _texts(state: State) -> dict[str, str]:
    """Each prompt of the state by where it sits (say, menu.prompt, collect.no_match[2], …)."""
    out: dict[str, str] = {}

    def put(slot: str, prompt: Prompt | None) -> None:
        if prompt is not None:
            out[slot] = " ".join(f"[{p.kind}: {p.value}]" if p.kind != "text" else p.value for p in prompt.parts)

    put("say", state.say)
    for action, spec in (("menu", state.menu), ("collect", state.collect)):
        if spec is not None:
            put(f"{action}.prompt", spec.prompt)
            for kind in ("no_input", "no_match"):
                for i, p in enumerate(getattr(spec, kind), 1):
                    put(f"{action}.{kind}[{i}]", p)
    if state.collect is not None:
        put("collect.confirm", state.collect.confirm)
    if state.transfer is not None:
        put("transfer.announce", state.transfer.announce)
    return out
