"""DOT text: a node per drawn state with its shape, an edge per arrow, markers and loops inline."""

from __future__ import annotations

import re
from pathlib import Path

from ivrkit.flow.loader import load_flow, load_flow_text
from ivrkit.graph.dot import drawn_as, to_dot
from ivrkit.graph.model import build_graph
from tests.graph.helpers import EVERY_EDGE

GRAPH = build_graph(load_flow_text(EVERY_EDGE, "every.yaml"))
TEXT = to_dot(GRAPH)


def _node(name: str, text: str = TEXT) -> str:
    match = re.search(rf'^  "{name}" \[label=(.*)\]$', text, re.M)
    assert match is not None, f"no node {name}"
    return match.group(1)


def test_nodes_have_the_shape_of_their_kind() -> None:
    shapes = {name: re.search(r"shape=(\w+)", _node(name)).group(1)  # type: ignore[union-attr]
              for name in ("main", "pin", "lookup", "route", "legacy", "out", "agent", "goodbye", "_ivrkit_start")}
    assert shapes == {"main": "hexagon", "pin": "parallelogram", "lookup": "box", "route": "diamond", "legacy": "rarrow",
                      "out": "rarrow", "agent": "house", "goodbye": "octagon", "_ivrkit_start": "circle"}
    assert "SENSITIVE" in _node("pin") and "penwidth=3" in _node("pin")
    assert "* back → previous menu" in _node("pin") and "hook decides → any state" in _node("lookup")
    assert "~" not in TEXT


def test_edges_are_labelled_and_loops_merged() -> None:
    assert '"main" -> "pin" [label="1"]' in TEXT
    assert '"route" -> "agent" [label="if pin == \'1234\'"]' in TEXT
    assert re.search(r'"_ivrkit_any_error" -> "sorry" \[label="any error" style=dashed', TEXT)
    loop = re.search(r'^  "pin" -> "pin" \[label=<(.*)> ', TEXT, re.M)
    assert loop is not None
    assert [re.sub("<[^>]+>", "", line) for line in loop.group(1).split('<BR ALIGN="LEFT"/>') if line] == [
        "no input", "too short", "invalid (pin_ok)", "2 re-enter"]
    assert len(re.findall(r"^  \S+ -> ", TEXT, re.M)) == len(GRAPH.drawn_edges()) + 2  # + the loops of main and pin


def test_untested_edges_are_red_and_counted_in_a_legend() -> None:
    text = to_dot(GRAPH, untested={"main:key:3", "pin:invalid", "lookup:on_error"})
    assert '"main" -> "legacy" [label="✗ 3" color="#dd0000" fontcolor="#dd0000" penwidth=3]' in text
    assert '<FONT POINT-SIZE="9" COLOR="#dd0000"><B>✗ invalid (pin_ok)</B></FONT>' in text
    assert 'label="red: 3 of 23 edges no test took"' in text
    assert "✗" not in TEXT and "red:" not in TEXT


def test_html_and_quotes_are_escaped() -> None:
    flow = load_flow_text("""
start: a
states:
  a: {goto: [{if: 'x == "<1>"', then: b}, {else: b}]}
  b: {transfer: "sip:a&b@x"}
""")
    text = to_dot(build_graph(flow))
    assert '[label="if x == \\"<1>\\""]' in text
    assert "sip:a&amp;b@x" in _node("b", text)


def test_with_ids_every_node_and_arrow_is_named_and_drawn_as_names_each_edges_element() -> None:
    text = to_dot(GRAPH, ids=True)
    assert 'id="node:main"' in _node("main", text) and "id=" not in _node("main")
    assert re.search(r'^  "main" -> "pin" \[label="1" id="edge:main:key:1"\]$', text, re.M)
    assert re.search(r'^  "pin" -> "pin" \[.* id="loop:pin"\]$', text, re.M)
    drawn = drawn_as(GRAPH)
    assert set(drawn) == {e.id for e in GRAPH.edges}
    assert drawn["main:key:1"] == "edge:main:key:1"
    assert drawn["pin:invalid"] == drawn["pin:reenter"] == "loop:pin"  # self-loops share one loop
    assert drawn["lookup:hook"] == "node:lookup" and drawn["pin:back"] == "node:pin"  # lines inside the state
    named = set(re.findall(r'id="([^"]+)"', text))
    assert set(drawn.values()) <= named
    assert {f"node:{n.id}" for n in GRAPH.drawn_nodes()} <= named


def test_widths_draw_each_named_arrow_that_wide_and_the_rest_hairline() -> None:
    graph = build_graph(load_flow(Path(__file__).resolve().parents[2] / "flows" / "bank.yaml"))
    text = to_dot(graph, widths={"main:key:0": 7.0})
    arrow = next(line for line in text.splitlines() if '"main" -> "agent"' in line)
    other = next(line for line in text.splitlines() if '"main" -> "account"' in line)
    assert "penwidth=7.00" in arrow and "penwidth=0.30" in other
    assert "penwidth=0.30" not in to_dot(graph)  # no widths: drawn as before
