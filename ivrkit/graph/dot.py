"""A `FlowGraph` as Graphviz DOT text (for `dot -Tsvg` / `-Tpng`; see `render.py`).

Shapes by kind: menu hexagon (blue), collect parallelogram (yellow), say rounded box, hook
component box, goto diamond, transfer house (green), dial and send_dtmf arrow boxes, hang-up
octagon (red). A sensitive collect has a thick red border and says so; the start is a black
dot labelled "start"; "any error" is red plain text. A hook's "any state" and a back key's
"previous menu" are lines inside their state, and a state's self-loops (no input, no match,
invalid, repeat, re-enter) one loop with a line each — so no marker edge is flung across the
picture and no loop labels overlap. With `untested` (edge ids) those edges and lines are red,
marked ✗, and a legend under the graph counts them.

With `ids` (what SVG and PNG are drawn from), every node and arrow carries an `id` that Graphviz
copies onto its SVG element: `node:<node id>`, `edge:<edge id>`, `loop:<node id>` for a state's
merged self-loops. `drawn_as` says which element draws each edge (an inline line is drawn by its
state's node), so a page can light the state a call is in and the edge it just took.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path

from ivrkit.graph.model import Edge, FlowGraph, Node

_STYLE: dict[str, str] = {
    "menu": 'shape=hexagon style=filled fillcolor="#dbe9ff"',
    "collect": 'shape=parallelogram style=filled fillcolor="#fff5cc"',
    "say": 'shape=box style="rounded,filled" fillcolor="#ffffff"',
    "hook": 'shape=component style=filled fillcolor="#eee8ff"',
    "goto": 'shape=diamond style=filled fillcolor="#ffe7c7"',
    "transfer": 'shape=house style=filled fillcolor="#d5f5d5"',
    "dial": 'shape=rarrow style=filled fillcolor="#e0f7fa"',
    "send_dtmf": 'shape=rarrow style=filled fillcolor="#e0f7fa"',
    "navigate": 'shape=rarrow style=filled fillcolor="#e0f7fa"',
    "hangup": 'shape=octagon style=filled fillcolor="#ffdddd"',
    "start": 'shape=circle style=filled fillcolor="#222222" fontcolor="#ffffff" width=0.6 fixedsize=true',
    "any": 'shape=plaintext fontcolor="#777777"',
    "back": 'shape=plaintext fontcolor="#777777"',
    "error_source": 'shape=plaintext fontcolor="#aa3333"',
    "builtin_error": 'shape=octagon style="filled,dashed" fillcolor="#ffdddd"',
}
_DASHED = {"on_error", "error"}
UNTESTED = "#dd0000"
_SELF_LOOPS = {"no_input": "#666666", "no_match": "#666666", "invalid": "#996600", "repeat": "#336699", "reenter": "#336699"}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _line(edge: Edge, untested: Collection[str] | None, colour: str) -> str:
    """One edge as a line of an HTML label (inline markers, merged self-loops)."""
    if untested is not None and edge.counted and edge.id in untested:
        return f'<FONT POINT-SIZE="9" COLOR="{UNTESTED}"><B>✗ {_html(edge.label)}</B></FONT>'
    return f'<FONT POINT-SIZE="9" COLOR="{colour}">{_html(edge.label)}</FONT>'


def _label(graph: FlowGraph, node: Node, untested: Collection[str] | None) -> str:
    if node.state is None:
        return _q(node.label + (f"\n{node.detail}" if node.detail else ""))
    rows = [f"<B>{_html(node.label)}</B>"]
    if node.kind not in ("say", "hook"):
        rows.append(f'<FONT POINT-SIZE="9"><I>{_html(node.kind.replace("_", " "))}</I></FONT>')
    rows.extend(f'<FONT POINT-SIZE="9">{_html(line)}</FONT>' for line in node.detail.splitlines())
    if node.sensitive:
        rows.append('<FONT POINT-SIZE="9" COLOR="#cc0000"><B>SENSITIVE</B></FONT>')
    for edge in graph.inline(node.id):
        edge = replace(edge, label=f"{edge.label} → {graph.node(edge.target).label}")
        rows.append(_line(edge, untested, "#555555"))
    return "<" + "<BR/>".join(rows) + ">"


def node_element(node_id: str) -> str:
    """The id of the SVG element that draws node `node_id` (see `to_dot(ids=True)`)."""
    return f"node:{node_id}"


def drawn_as(graph: FlowGraph) -> dict[str, str]:
    """Every edge id of `graph` → the id of the SVG element that draws it: its arrow, its
    state's merged self-loop, or (a line inside the state) its state's node."""
    arrows = {e.id for e in graph.drawn_edges()}
    out: dict[str, str] = {}
    for edge in graph.edges:
        if edge.id in arrows:
            out[edge.id] = f"edge:{edge.id}"
        elif edge.source == edge.target:
            out[edge.id] = f"loop:{edge.source}"
        else:
            out[edge.id] = node_element(edge.source)
    return out


def _id(element: str, ids: bool) -> str:
    return f" id={_q(element)}" if ids else ""


def _node(graph: FlowGraph, node: Node, untested: Collection[str] | None, ids: bool) -> str:
    extra = ' color="#cc0000" penwidth=3' if node.sensitive else ""
    extra += _id(node_element(node.id), ids)
    return f"{_q(node.id)} [label={_label(graph, node, untested)} {_STYLE[node.kind]}{extra}]"


def _loop(graph: FlowGraph, node: Node, untested: Collection[str] | None, ids: bool) -> str | None:
    """Every self-loop of `node` as one loop, a line per edge (red when untested)."""
    loops = graph.loops(node.id)
    if not loops:
        return None
    rows = "<BR ALIGN=\"LEFT\"/>".join(_line(e, untested, _SELF_LOOPS.get(e.kind, "#666666")) for e in loops)
    return (f'{_q(node.id)} -> {_q(node.id)} [label=<{rows}<BR ALIGN="LEFT"/>> color="#888888" dir=back '
            f'arrowtail=normal{_id(f"loop:{node.id}", ids)}]')


def _edge(edge: Edge, untested: Collection[str] | None, ids: bool, widths: Mapping[str, float] | None = None) -> str:
    attrs = [f"label={_q(edge.label)}"]
    if widths is not None:
        attrs.append(f"penwidth={widths.get(edge.id, 0.3):.2f}")
    if edge.kind in _DASHED:
        attrs.append("style=dashed")
    if edge.kind in ("on_error", "error", "max_retries") and edge.target != edge.source:
        attrs.append('color="#aa3333" fontcolor="#aa3333"')
    elif edge.kind in _SELF_LOOPS:
        attrs.append(f'color="{_SELF_LOOPS[edge.kind]}" fontcolor="{_SELF_LOOPS[edge.kind]}"')
    if edge.kind == "error":
        attrs.append("weight=0")
    if untested is not None and edge.counted and edge.id in untested:
        attrs.append(f'color="{UNTESTED}" fontcolor="{UNTESTED}" penwidth=3')
        attrs[0] = f"label={_q('✗ ' + edge.label)}"
    if ids:
        attrs.append(f"id={_q('edge:' + edge.id)}")
    return f"{_q(edge.source)} -> {_q(edge.target)} [{' '.join(attrs)}]"


def to_dot(graph: FlowGraph, untested: Collection[str] | None = None, *, ids: bool = False,
           widths: Mapping[str, float] | None = None) -> str:
    """The DOT text. `untested`: edge ids to draw red (None: no coverage data); `ids`: give
    each node and arrow an element id (see the module docstring); `widths`: each arrow's line
    width by edge id (`ivrkit report` draws traffic; an arrow not named is drawn hairline)."""
    lines = [
        f"// {graph.flow} ({Path(graph.file).name}): ivrkit graph",
        f"digraph {_q(graph.flow)} {{",
        '  graph [rankdir=TB fontname="Helvetica" nodesep=0.35 ranksep=0.45 newrank=true]',
        '  node [fontname="Helvetica" fontsize=11 margin="0.12,0.06"]',
        '  edge [fontname="Helvetica" fontsize=9 arrowsize=0.7]',
    ]
    grouped: dict[str | None, list[Node]] = {}
    for node in graph.drawn_nodes():
        grouped.setdefault(node.group, []).append(node)
    lines.extend("  " + _node(graph, n, untested, ids) for n in grouped.get(None, []))
    for i, (gid, title) in enumerate(graph.groups):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f'    label={_q(title)} style="rounded,dashed" color="#999999" fontcolor="#555555"')
        lines.extend("    " + _node(graph, n, untested, ids) for n in grouped.get(gid, []))
        lines.append("  }")
    lines.append(f'  {{ rank=source; {_q(graph.nodes[0].id)} }}')
    lines.extend("  " + _edge(e, untested, ids, widths) for e in graph.drawn_edges())
    lines.extend("  " + loop for n in graph.drawn_nodes() if (loop := _loop(graph, n, untested, ids)))
    if untested is not None:
        counted = graph.counted_edges()
        missing = sum(1 for e in counted if e.id in untested)
        if missing:
            lines.append(f'  label={_q(f"red: {missing} of {len(counted)} edges no test took")} labelloc=b fontcolor="{UNTESTED}"')
        else:
            lines.append(f'  label={_q(f"tests take every edge ({len(counted)})")} labelloc=b fontcolor="#338833"')
    lines.append("}")
    return "\n".join(lines) + "\n"
