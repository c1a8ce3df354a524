"""The flow's picture for the dial pad page: `GET /api/graph?flow=NAME`.

Why the server draws it: Graphviz (`ivrkit.graph.render`) lays the flow out exactly as
`ivrkit graph` does, and its SVG elements carry the graph's ids (`node:main`, `edge:main:key:1`,
`loop:pin`), so the page only has to light elements by id — no layout code and no new JS
dependency in the bundle. The page learns which flow a call runs from the agent's `ivrkit.flow`
attribute and which state and edge to light from `ivrkit.state` / `ivrkit.edge`
(`ivrkit.livekit.attributes`); this module maps those names to element ids for it.

The flows are those the worker serves (`ivrkit dev PATH`, `ivrkit dialpad --flows PATH`): read
again on every request, so the picture follows a flow edited while `ivrkit dev` reloads.
Without Graphviz the answer has no SVG and a one-line `message` saying how to get it; the page
then shows that line and the call's path as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivrkit.errors import GraphvizMissing, IvrkitError
from ivrkit.flow.loader import check_flow
from ivrkit.flow.model import Flow
from ivrkit.graph.dot import drawn_as, node_element
from ivrkit.graph.model import build_graph
from ivrkit.graph.render import draw
from ivrkit.livekit.flows import FlowSetError, flow_files

__all__ = ["FlowNotFound", "find_flow", "flow_picture"]


class FlowNotFound(IvrkitError):
    """The dial pad was asked for the picture of a flow it cannot find: no flows were given
    (`--flows`), none of their files holds a flow of that name, or that file has errors. The
    server answers 404 with the message, which names the flows there and the first error."""


def find_flow(flows: Path | None, name: str) -> Flow:
    """The flow called `name` among the flow files behind `flows` (a file or a folder, as the
    worker reads it). Raises FlowNotFound naming the flows there and any broken file."""
    if flows is None:
        raise FlowNotFound("no flows to draw: start the dial pad with --flows PATH (ivrkit dev does it)")
    try:
        files = flow_files(flows)
    except FlowSetError as e:
        raise FlowNotFound(str(e)) from None
    names: list[str] = []
    broken: list[str] = []
    for file in files:
        result = check_flow(file, check_hooks=False)  # hooks are not drawn; do not import them
        if result.flow is None:
            first = result.errors[0] if result.errors else None
            broken.append(f"{first.file}:{first.line}:{first.col}: {first.message}" if first else str(file))
        elif result.flow.name == name:
            return result.flow
        else:
            names.append(result.flow.name)
    known = f"flows there: {', '.join(sorted(names))}" if names else "no flow loads there"
    also = f"; {len(broken)} file(s) with errors, first: {broken[0]}" if broken else ""
    raise FlowNotFound(f"no flow named {name!r} in {flows} ({known}{also})")


def flow_picture(flow: Flow) -> dict[str, Any]:
    """What /api/graph answers: the SVG (or None and a `message`), and the element id of each
    drawn node (`nodes`, by node id = state name) and of each edge (`edges`, by edge id).
    Raises GraphvizError when Graphviz is there but fails."""
    graph = build_graph(flow)
    svg: str | None = None
    message = ""
    try:
        svg = draw(graph, "svg").decode()
    except GraphvizMissing as e:
        message = f"no picture: {e}"
    return {
        "flow": flow.name,
        "svg": svg,
        "message": message,
        "nodes": {n.id: node_element(n.id) for n in graph.drawn_nodes()},
        "edges": drawn_as(graph),
    }
