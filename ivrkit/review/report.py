"""`ivrkit check --report`: what a reviewer of a flow wants to see beyond its errors.

- how big it is: states, menus, collects, hooks, transfers;
- the deepest caller path to a person (a transfer) and to a hang-up: of the shortest ways to
  each, the longest — how many steps the unluckiest caller climbs;
- menus with more than `MAX_OPTIONS` options (callers cannot hold more in mind);
- menus and collects without a `no_input` or `no_match` prompt (the caller hears the question
  again with no word on what went wrong);
- each sensitive input and every place its value flows: prompts and transfer/dial/DTMF
  targets that name it, conditions on it, its validate hook, and every hook that runs after it
  (a hook gets all variables);
- with coverage data (`pytest --ivr-cov`): the states no test reaches and the untested edges.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from ivrkit.flow.model import Flow, State
from ivrkit.graph.model import FlowGraph
from ivrkit.review.paths import Path, shortest_paths, steps

MAX_OPTIONS = 5


def report(flow: Flow, graph: FlowGraph, *, untested: Collection[str] | None = None,
           unvisited: Collection[str] | None = None) -> str:
    """The report as text (a few short sections, each line a fact or a warning)."""
    states = flow.states.values()
    kinds = [s.kind for s in states]
    lines = [f"{flow.name} ({_file(flow)}): review",
             f"  {len(flow.states)} states: {kinds.count('menu')} menus, {kinds.count('collect')} collects, "
             f"{sum(1 for s in states if s.run is not None)} hooks, {kinds.count('transfer')} transfers, "
             f"{sum(1 for s in states if s.collect is not None and s.collect.sensitive)} sensitive inputs"]
    paths = shortest_paths(graph)
    for what, goal in (("a person (transfer)", _is_transfer), ("a hang-up", _is_hangup)):
        deepest = _deepest([p for name, p in paths.items() if goal(flow.states[name])])
        lines.append(f"  deepest path to {what}: " + (f"{steps(deepest.steps)}: {deepest}" if deepest else "none"))
    lines += list(_warnings(flow))
    lines += list(_sensitive(flow, graph))
    if untested is not None and unvisited is not None:
        lines.append(f"  coverage: {len(untested)} of {len(graph.counted_edges())} edges untested" +
                     (f"; states no test reaches: {', '.join(sorted(unvisited))}" if unvisited else "; every state reached"))
        lines += [f"    untested: {graph.describe(graph.edge(e))}" for e in sorted(untested)]
    return "\n".join(lines)


def _file(flow: Flow) -> str:
    """The flow's file as its states' positions show it (as given on the command line)."""
    where = flow.states[flow.start].where
    return where.rsplit(":", 2)[0] if where.count(":") >= 2 else flow.file


def _is_transfer(state: State) -> bool:
    return state.transfer is not None


def _is_hangup(state: State) -> bool:
    return state.hangup or (state.next is None and state.kind in ("say", "send_dtmf", "dial"))


def _deepest(paths: list[Path]) -> Path | None:
    return max(paths, key=lambda p: p.steps, default=None)


def _warnings(flow: Flow) -> Iterator[str]:
    for state in flow.states.values():
        if state.menu is not None and len(state.menu.options) > MAX_OPTIONS:
            yield (f"  warning: {state.where}: menu '{state.name}' has {len(state.menu.options)} options; callers hold "
                   f"about {MAX_OPTIONS} in mind: split it")
        spec = state.menu or state.collect
        if spec is not None:
            missing = [k for k, v in (("no_input", spec.no_input), ("no_match", spec.no_match)) if not v]
            if missing:
                yield (f"  warning: {state.where}: '{state.name}' has no {' or '.join(missing)} prompt: "
                       "the caller hears the question again with no word on what went wrong")


def _sensitive(flow: Flow, graph: FlowGraph) -> Iterator[str]:
    for state in flow.states.values():
        c = state.collect
        if c is None or not c.sensitive:
            continue
        yield f"  sensitive: '{c.into}' (collected in '{state.name}', {state.where}) flows to:"
        places = list(_uses(flow, c.into))
        if c.validate is not None:
            places.append(f"validate hook {c.validate} (gets the digits)")
        after = _after(graph, state.name)
        places += [f"hook {s.run} in '{s.name}' (gets every variable)" for s in flow.states.values()
                   if s.run is not None and s.name in after]
        places += [f"call_end hook {ref} (gets every variable)" for ref in flow.call_end]
        yield from (f"    {p}" for p in places or ["nowhere else"])


def _uses(flow: Flow, name: str) -> Iterator[str]:
    for state in flow.states.values():
        for prompt in state.prompts():
            if name in prompt.variables:
                yield f"a prompt of '{state.name}' ({prompt.where or state.where}) (masked in logs and traces)"
        for what, text in (("transfer", state.transfer.to if state.transfer else None),
                           ("dial", state.dial.to if state.dial else None),
                           ("send_dtmf", state.send_dtmf.digits if state.send_dtmf else None)):
            if text is not None and "{" + name + "}" in text:
                yield f"the {what} of '{state.name}' ({state.where})"
        for i, step in enumerate(state.navigate.steps if state.navigate else (), 1):
            if "{" + name + "}" in step.keys:
                yield f"the keys navigate step {i} of '{state.name}' sends ({step.where}) (masked in logs and traces)"
        for branch in state.goto:
            if branch.condition is not None and name in branch.condition.names:
                yield f"a goto condition of '{state.name}': {branch.condition.source}"


def _after(graph: FlowGraph, start: str) -> set[str]:
    """States reachable from `start` along any edge (where a variable set there is still set)."""
    seen = {start}
    todo = [start]
    while todo:
        for edge in graph.out(todo.pop()):
            if edge.target not in seen and graph.node(edge.target).state is not None:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen
