"""The shortest way a caller gets from the start to each state, through the flow's graph.

Walked edges are the ones a caller drives or the flow follows on its own (keys, collected
input, goto arms, next, exhaustion, on_error); not the error marker (any state may fail), not a
hook's "any state", not the back key, not self-loops — those would make every state one step
away and say nothing about the menu tree a caller climbs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ivrkit.graph.model import START, Edge, FlowGraph

WALKED = frozenset({"start", "key", "collected", "goto", "next", "max_retries", "on_error"})


@dataclass(frozen=True, slots=True)
class Path:
    """The edges from the start to `state`; `steps` counts the states entered after the start."""

    state: str
    edges: tuple[Edge, ...]

    @property
    def steps(self) -> int:
        return len(self.edges) - 1  # the first edge is the call arriving at the start state

    def __str__(self) -> str:
        out = self.edges[0].target if self.edges else self.state
        for e in self.edges[1:]:
            out += f" -[{e.label}]-> {e.target}"
        return out


def steps(n: int) -> str:
    return f"{n} step" + ("" if n == 1 else "s")


def shortest_paths(graph: FlowGraph) -> dict[str, Path]:
    """Each state a caller can reach, with one shortest path to it (breadth first, edges in file order)."""
    out: dict[str, Path] = {}
    queue: deque[tuple[str, tuple[Edge, ...]]] = deque([(START, ())])
    seen = {START}
    while queue:
        node, path = queue.popleft()
        for edge in graph.out(node):
            if edge.kind not in WALKED or edge.target in seen or edge.target == edge.source:
                continue
            seen.add(edge.target)
            step = (*path, edge)
            if graph.node(edge.target).state is not None:
                out[edge.target] = Path(edge.target, step)
            queue.append((edge.target, step))
    return out
