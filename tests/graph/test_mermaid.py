"""Mermaid text: one node line per state (shape by kind), one link per edge, markers inline."""

from __future__ import annotations

import re

from ivrkit.flow.loader import load_flow_text
from ivrkit.graph.mermaid import node_id, to_mermaid
from ivrkit.graph.model import build_graph
from tests.graph.helpers import EVERY_EDGE

GRAPH = build_graph(load_flow_text(EVERY_EDGE, "every.yaml"))
TEXT = to_mermaid(GRAPH)
LINKS = [line.strip() for line in TEXT.splitlines() if "-->" in line or "-.->" in line]


def test_it_is_a_flowchart_with_a_node_per_state_shaped_by_kind() -> None:
    assert TEXT.splitlines()[1] == "flowchart TD"
    assert '    n_main{{"<b>main</b><br/><i>menu</i><br/>* repeat' not in TEXT  # repeat is a loop, not inline
    assert re.search(r'^    n_main\{\{"<b>main</b><br/><i>menu</i>"\}\}$', TEXT, re.M)
    assert re.search(r'^    n_pin\[/".*🔒 sensitive<br/>\* back → previous menu"/\]$', TEXT, re.M)
    assert re.search(r'^    n_goodbye\(\(\(".*"\)\)\)$', TEXT, re.M)
    assert re.search(r'^    n_agent\(\[".*sip:agent@pbx.example.com"\]\)$', TEXT, re.M)
    assert re.search(r'^    n_lookup\(".*hook decides → any state"\)$', TEXT, re.M)
    assert "class n_pin sensitive" in TEXT and f"class {node_id('_ivrkit_start')} start" in TEXT


def test_every_edge_is_a_labelled_link_and_loops_are_merged() -> None:
    assert 'n_main -->|"1"| n_pin' in LINKS
    assert """n_route -->|"if pin == '1234'"| n_agent""" in LINKS
    assert 'n__ivrkit_any_error -.->|"any error"| n_sorry' in LINKS
    assert 'n_lookup -.->|"on error"| n_goodbye' in LINKS
    assert 'n_pin -->|"no input<br/>too short<br/>invalid (pin_ok)<br/>2 re-enter"| n_pin' in LINKS
    drawn = len(GRAPH.drawn_edges()) + sum(1 for n in GRAPH.drawn_nodes() if GRAPH.loops(n.id))
    assert len(LINKS) == drawn
    assert "~" not in TEXT  # no marker node is drawn on its own


def test_untested_edges_are_marked_and_their_links_red() -> None:
    text = to_mermaid(GRAPH, untested={"main:key:3", "pin:invalid", "pin:back"})
    links = [line.strip() for line in text.splitlines() if "-->" in line or "-.->" in line]
    red = re.search(r"linkStyle ([\d,]+) stroke:#d00", text)
    assert red is not None
    marked = [links[int(i)] for i in red.group(1).split(",")]
    assert marked == ['n_main -->|"✗ 3"| n_legacy', 'n_pin -->|"no input<br/>too short<br/>✗ invalid (pin_ok)<br/>2 re-enter"| n_pin']
    assert "✗ * back → previous menu" in text


def test_names_and_quotes_mermaid_reserves_are_escaped() -> None:
    assert node_id("end") == "n_end" and node_id("a-b") == "n_a_2d_b"
    flow = load_flow_text("""
start: a
states:
  a: {goto: [{if: 'x == "1"', then: b}, {else: b}]}
  b: {say: "Bye.", hangup: true}
""")
    text = to_mermaid(build_graph(flow))
    assert 'n_a -->|"if x == #quot;1#quot;"| n_b' in text
