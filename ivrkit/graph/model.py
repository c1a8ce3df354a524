"""A flow as a graph: its states as nodes, every way out of a state as a labelled edge.

Built once from a loaded `Flow`; the Mermaid and DOT writers, coverage and every future view
(a reviewer's report, a diff) read this one model, so they cannot disagree about what an edge
is. Each edge has a stable `id` (`source:kind[:detail]`, e.g. `main:key:1`, `welcome:goto:2`,
`pin:invalid`) that coverage data refers to.

Edge kinds, and what takes them at run time (the trace `why` in brackets):
- `key`          a menu option [key D]
- `repeat`       a menu's repeat key: the menu again, not a retry
- `back`         the back key: the previous menu/collect [back] (to a marker node, it is dynamic)
- `no_input`     a timeout with retries left: the state prompts again
- `no_match`     a wrong key / too short / pattern failed, with retries left: prompts again
- `invalid`      a collect's `validate` hook said no, with retries left: prompts again
- `max_retries`  the `retries`-th no-input or no-match [max retries (…)] → `on_max_retries`,
                 else the error path
- `collected`    a collect got its digits (and the caller confirmed them) [collected]
- `reenter`      2 at a collect's confirm: enter again [re-enter]
- `goto`         the n-th `goto` arm, labelled with its condition [goto n]
- `next`         a say/hook/send_dtmf/dial state went on [next, send_dtmf, dial]
- `hook`         a `run` hook returned a state name: it may go anywhere, so one edge to a
                 marker node [hook mod:fn]; not counted by coverage (what a hook returns is
                 the hook's own tests' business)
- `on_error`     this state failed (hook, transfer, condition) and names `on_error` [error]
- `error`        any state failed and the flow names an `error:` state (from a marker) [error]
- `start`        where a call begins (not counted by coverage: every call takes it)
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from ivrkit.flow.model import Flow, State

NodeKind = Literal["menu", "collect", "say", "hook", "goto", "transfer", "send_dtmf", "dial", "navigate", "hangup",
                   "start", "any", "back", "error_source", "builtin_error"]
EdgeKind = Literal["key", "repeat", "back", "no_input", "no_match", "invalid", "max_retries", "collected",
                   "reenter", "goto", "next", "nav_fail", "hook", "on_error", "error", "start"]

#: Marker (pseudo) node ids; state names may not start with `_ivrkit`, so none can clash.
START = "_ivrkit_start"
ANY_ERROR = "_ivrkit_any_error"
BUILTIN_ERROR = "_ivrkit_error"  # the same name as ivrkit.machine.BUILTIN_ERROR
#: Edges coverage does not count (see the module docstring).
UNCOUNTED: frozenset[str] = frozenset({"hook", "start"})
#: How many states make a flow "large": past it, states are grouped per top-level menu option.
LARGE = 30


@dataclass(frozen=True, slots=True)
class Node:
    """A state (`state` is its name) or a marker node (`state` is None)."""

    id: str
    kind: NodeKind
    label: str
    detail: str = ""  # a second line: the hook, the transfer target, the collect's variable
    state: str | None = None
    sensitive: bool = False
    group: str | None = None  # the subgraph it belongs to (an included file, a menu branch)
    where: str = ""


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    label: str
    detail: str = ""  # the key, the arm number: what makes `id` unique for the source

    @property
    def id(self) -> str:
        return f"{self.source}:{self.kind}" + (f":{self.detail}" if self.detail else "")

    @property
    def counted(self) -> bool:
        """Does coverage count this edge (see `UNCOUNTED`)?"""
        return self.kind not in UNCOUNTED



@dataclass(frozen=True, slots=True)
class FlowGraph:
    flow: str  # the flow's name
    file: str
    start: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    groups: tuple[tuple[str, str], ...] = field(default=())  # (group id, its title), in order

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def edge(self, edge_id: str) -> Edge:
        for edge in self.edges:
            if edge.id == edge_id:
                return edge
        raise KeyError(edge_id)

    def describe(self, edge: Edge) -> str:
        """How a person reads an edge in a report: `main --[1]--> account`, `any error --> sorry`."""
        source, target = (n.label if n.state is None else n.id for n in (self.node(edge.source), self.node(edge.target)))
        if edge.label == source:
            return f"{source} --> {target}"
        return f"{source} --[{edge.label}]--> {target}"

    def counted_edges(self) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.counted)

    def out(self, source: str) -> Iterator[Edge]:
        return (e for e in self.edges if e.source == source)

    # --- what a picture draws where (both writers agree: legible, and one place to change) ---

    def inline(self, source: str) -> list[Edge]:
        """Edges to a per-state marker (hook → any state, back → previous menu): drawn as a
        line inside the source node, not as an edge flung across the picture."""
        return [e for e in self.edges if e.source == source and e.target.startswith(source + "~")]

    def loops(self, source: str) -> list[Edge]:
        """Self-loops (no input, no match, invalid, repeat, re-enter): drawn as one loop."""
        return [e for e in self.edges if e.source == source and e.target == source]

    def drawn_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.kind not in ("any", "back")]

    def drawn_edges(self) -> list[Edge]:
        """Edges drawn as arrows of their own (not inline, not self-loops)."""
        return [e for e in self.edges if e.target != e.source and not e.target.startswith(e.source + "~")]


def node_kind(state: State) -> NodeKind:
    kind = state.kind
    if kind == "say" and state.run is not None and state.say is None:
        return "hook"
    return kind


def build_graph(flow: Flow) -> FlowGraph:
    """The graph of `flow`: one node per state plus the marker nodes its edges need."""
    edges: list[Edge] = [Edge(START, flow.start, "start", "call")]
    for state in flow.states.values():
        edges.extend(_state_edges(flow, state))
    if flow.error_state is not None:
        edges.append(Edge(ANY_ERROR, flow.error_state, "error", "any error"))
    groups, group_of = _groups(flow)
    nodes = [Node(START, "start", "start")]
    for state in flow.states.values():
        nodes.append(Node(state.name, node_kind(state), state.name, _detail(state), state.name,
                          sensitive=state.collect is not None and state.collect.sensitive,
                          group=group_of.get(state.name), where=state.where))
    known = {n.id for n in nodes}
    for edge in edges:
        for end in (edge.source, edge.target):
            if end not in known:
                known.add(end)
                nodes.append(_marker(end, group_of))
    return FlowGraph(flow.name, flow.file, flow.start, tuple(nodes), tuple(edges), groups)


def _state_edges(flow: Flow, state: State) -> Iterator[Edge]:
    name = state.name
    if state.run is not None:
        yield Edge(name, f"{name}~hook", "hook", "hook decides")
    spec = state.menu or state.collect
    if state.menu is not None:
        menu = state.menu
        for key, target in menu.options.items():
            yield Edge(name, target, "key", key, key)
        if menu.repeat_key:
            yield Edge(name, name, "repeat", f"{menu.repeat_key} repeat")
    if spec is not None:
        if spec.back_key:
            yield Edge(name, f"{name}~back", "back", f"{spec.back_key} back")
        if state.settings.retries > 1:
            yield Edge(name, name, "no_input", "no input")
            yield Edge(name, name, "no_match", "no match" if state.menu is not None else _collect_no_match(state))
            if state.collect is not None and state.collect.validate is not None:
                yield Edge(name, name, "invalid", f"invalid ({state.collect.validate.function})")
        target = spec.on_max_retries or _error_target(flow, state)
        yield Edge(name, target, "max_retries", "max retries" if spec.on_max_retries else "max retries (error)")
    if state.collect is not None:
        confirm = state.collect.confirm is not None
        if state.next is not None:
            yield Edge(name, state.next, "collected", "1 confirm" if confirm else "collected")
        if confirm:
            yield Edge(name, name, "reenter", "2 re-enter")
    for i, branch in enumerate(state.goto, 1):
        cond = branch.condition.source if branch.condition is not None else ("else" if len(state.goto) > 1 else "goto")
        yield Edge(name, branch.target, "goto", f"if {cond}" if branch.condition is not None else cond, str(i))
    if state.next is not None and state.kind in ("say", "send_dtmf", "dial", "navigate"):
        label = {"say": "next", "send_dtmf": "sent", "dial": "dialled", "navigate": "navigated"}[state.kind]
        yield Edge(name, state.next, "next", label)
    if state.navigate is not None:
        yield Edge(name, state.navigate.on_fail or _error_target(flow, state), "nav_fail",
                   "navigation failed" if state.navigate.on_fail else "navigation failed (error)")
    if state.on_error is not None:
        yield Edge(name, state.on_error, "on_error", "on error")


def _collect_no_match(state: State) -> str:
    c = state.collect
    assert c is not None
    return "no match (pattern)" if c.pattern else "too short"


def _error_target(flow: Flow, state: State) -> str:
    return state.on_error or flow.error_state or BUILTIN_ERROR


def _detail(state: State) -> str:
    parts: list[str] = []
    if state.run is not None:
        parts.append(f"run {state.run}")
    if state.collect is not None:
        c = state.collect
        n = f"{c.min_digits}" if c.min_digits == c.max_digits else f"{c.min_digits}-{c.max_digits}"
        parts.append(f"{n} digits → {c.into}")
    if state.transfer is not None:
        parts.append(f"transfer {state.transfer.to}")
    if state.dial is not None:
        parts.append(f"dial {state.dial.to}")
    if state.send_dtmf is not None:
        parts.append(f"send {state.send_dtmf.digits}")
    if state.hangup and state.kind != "hangup":
        parts.append("then hang up")
    return "\n".join(parts)


def _marker(node_id: str, group_of: dict[str, str]) -> Node:
    if node_id == ANY_ERROR:
        return Node(node_id, "error_source", "any error")
    if node_id == BUILTIN_ERROR:
        return Node(node_id, "builtin_error", "built-in apology", "hang up")
    owner, _, what = node_id.rpartition("~")
    if what == "hook":
        return Node(node_id, "any", "any state", group=group_of.get(owner))
    return Node(node_id, "back", "previous menu", group=group_of.get(owner))


def _groups(flow: Flow) -> tuple[tuple[tuple[str, str], ...], dict[str, str]]:
    """Subgraphs that keep a big flow legible: one per included file when the flow has
    includes, else — for a flow of more than `LARGE` states — one per option of the first
    menu a call reaches, holding the states only that option leads to (shared ones stay out)."""
    files = {_file(s.where) for s in flow.states.values()}
    if len(files) > 1:
        order = list(dict.fromkeys(_file(s.where) for s in flow.states.values()))
        base = os.path.dirname(flow.file)
        return tuple((f, os.path.relpath(f, base) if base else f) for f in order), {s.name: _file(s.where) for s in flow.states.values()}
    if len(flow.states) <= LARGE:
        return (), {}
    top = _first_menu(flow)
    if top is None or top.menu is None:
        return (), {}
    branches = {key: _reach(flow, target, stop={top.name}) for key, target in top.menu.options.items()}
    shared = {n for n in flow.states if sum(n in members for members in branches.values()) > 1}
    group_of: dict[str, str] = {}
    groups: list[tuple[str, str]] = []
    for key, members in branches.items():
        own = [m for m in members if m not in shared]
        if own:
            groups.append((f"{top.name}.{key}", f"{top.name}: {key}"))
            group_of.update((m, f"{top.name}.{key}") for m in own)
    return tuple(groups), group_of


def _file(where: str) -> str:
    parts = where.rsplit(":", 2)
    return parts[0] if len(parts) == 3 else where


def _first_menu(flow: Flow) -> State | None:
    for name in _reach(flow, flow.start, stop=set()):
        if flow.states[name].menu is not None:
            return flow.states[name]
    return None


def _reach(flow: Flow, root: str, *, stop: set[str]) -> list[str]:
    """States reachable from `root` by written edges, breadth first, not through `stop`."""
    seen: list[str] = []
    queue = deque([root])
    visited = set(stop)
    while queue:
        name = queue.popleft()
        if name in visited or name not in flow.states:
            continue
        visited.add(name)
        seen.append(name)
        queue.extend(flow.states[name].targets(errors=False))
    return seen
