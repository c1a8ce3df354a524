"""A `FlowGraph` as Mermaid flowchart text: it renders on GitHub, GitLab and in most editors.

Shapes by kind: menu `{{hexagon}}`, collect `[/parallelogram/]`, say `(rounded)`, hook
`[[subroutine]]`, goto `{rhombus}`, transfer `([stadium])`, dial and send_dtmf
`[\\trapezoid/]`, hang-up `(((double circle)))`. Sensitive collects get the `sensitive` class
(red border), the start is a filled circle. Marker nodes (any state a hook picks, the previous
menu) are lines inside their state, self-loops one loop with a line each, as in `dot.py`;
"any error" is a flag `>…]`, error edges dotted. With `untested` (edge ids) those lines are
marked ✗ and their links drawn red — what `ivrkit graph --coverage` shows.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

from ivrkit.graph.model import Edge, FlowGraph, Node

_SHAPES: dict[str, tuple[str, str]] = {  # [\\…/] is Mermaid's trapezoid
    "menu": ("{{", "}}"), "collect": ("[/", "/]"), "say": ("(", ")"), "hook": ("[[", "]]"),
    "goto": ("{", "}"), "transfer": ("([", "])"), "dial": ("[\\", "/]"), "send_dtmf": ("[\\", "/]"),
    "navigate": ("[\\", "/]"),
    "hangup": ("(((", ")))"), "start": ("((", "))"), "any": (">", "]"), "back": (">", "]"),
    "error_source": (">", "]"), "builtin_error": ("(((", ")))"),
}
_DOTTED = {"hook", "back", "on_error", "error"}
CLASSES = (
    "classDef start fill:#222,color:#fff,stroke:#222",
    "classDef sensitive stroke:#c00,stroke-width:3px",
    "classDef marker fill:#eee,stroke:#999,color:#555",
    "classDef hangup fill:#fdd,stroke:#a33",
    "classDef transfer fill:#dfd,stroke:#393",
)


def node_id(name: str) -> str:
    """A Mermaid-safe id for a node (state names may hold characters Mermaid reserves)."""
    return "n_" + re.sub(r"\W", lambda m: f"_{ord(m.group()):x}_", name)


def _text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")


def _line(edge: Edge, untested: Collection[str] | None) -> str:
    mark = "✗ " if untested is not None and edge.counted and edge.id in untested else ""
    return mark + _text(edge.label)


def _node(graph: FlowGraph, node: Node, untested: Collection[str] | None) -> str:
    left, right = _SHAPES[node.kind]
    label = f"<b>{_text(node.label)}</b>" if node.state else _text(node.label)
    if node.state is not None and node.kind not in ("say", "hook"):
        label += f"<br/><i>{node.kind.replace('_', ' ')}</i>"
    if node.detail:
        label += "<br/>" + _text(node.detail)
    if node.sensitive:
        label += "<br/>🔒 sensitive"
    for edge in graph.inline(node.id):
        label += "<br/>" + _line(replace(edge, label=f"{edge.label} → {graph.node(edge.target).label}"), untested)
    return f'{node_id(node.id)}{left}"{label}"{right}'


def _edge(edge: Edge, untested: Collection[str] | None) -> str:
    arrow = "-.->" if edge.kind in _DOTTED else "-->"
    return f'{node_id(edge.source)} {arrow}|"{_line(edge, untested)}"| {node_id(edge.target)}'


def _loop(loops: list[Edge], untested: Collection[str] | None) -> str:
    label = "<br/>".join(_line(e, untested) for e in loops)
    return f'{node_id(loops[0].source)} -->|"{label}"| {node_id(loops[0].source)}'


def to_mermaid(graph: FlowGraph, untested: Collection[str] | None = None) -> str:
    """The flowchart text. `untested`: edge ids to draw red (None: no coverage data)."""
    lines = [f"%% {graph.flow} ({Path(graph.file).name}): ivrkit graph", "flowchart TD"]
    grouped: dict[str | None, list[Node]] = {}
    for node in graph.drawn_nodes():
        grouped.setdefault(node.group, []).append(node)
    lines.extend("    " + _node(graph, n, untested) for n in grouped.get(None, []))
    for gid, title in graph.groups:
        lines.append(f'    subgraph {node_id("g_" + gid)}["{_text(title)}"]')
        lines.extend("        " + _node(graph, n, untested) for n in grouped.get(gid, []))
        lines.append("    end")
    links: list[list[Edge]] = [[e] for e in graph.drawn_edges()]
    links.extend(loops for n in graph.drawn_nodes() if (loops := graph.loops(n.id)))
    lines.extend("    " + (_edge(link[0], untested) if link[0].source != link[0].target else _loop(link, untested))
                 for link in links)
    lines.extend("    " + c for c in CLASSES)
    for cls, members in _classes(graph).items():
        if members:
            lines.append(f"    class {','.join(node_id(m) for m in members)} {cls}")
    if untested:
        red = [str(i) for i, link in enumerate(links) if any(e.counted and e.id in untested for e in link)]
        if red:
            lines.append(f"    linkStyle {','.join(red)} stroke:#d00,stroke-width:3px,color:#d00")
    return "\n".join(lines) + "\n"


def _classes(graph: FlowGraph) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"start": [], "sensitive": [], "marker": [], "hangup": [], "transfer": []}
    for n in graph.drawn_nodes():
        if n.kind == "start":
            out["start"].append(n.id)
        elif n.sensitive:
            out["sensitive"].append(n.id)
        elif n.kind in ("any", "back", "error_source"):
            out["marker"].append(n.id)
        elif n.kind in ("hangup", "builtin_error"):
            out["hangup"].append(n.id)
        elif n.kind == "transfer":
            out["transfer"].append(n.id)
    return out
