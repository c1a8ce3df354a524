"""SVG/PNG through Graphviz's real `dot`; without it, one line saying how to install it."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivrkit.errors import GraphvizError, GraphvizMissing
from ivrkit.flow.loader import load_flow
from ivrkit.graph.dot import drawn_as, node_element
from ivrkit.graph.model import build_graph
from ivrkit.graph.render import INSTALL_HINT, draw, render

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _need_dot() -> None:
    if shutil.which("dot") is None:
        if os.environ.get("IVRKIT_STACK_REQUIRED"):
            pytest.fail("Graphviz's dot is missing, and IVRKIT_STACK_REQUIRED is set (tests/stack/install.sh installs it)")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz; tests/stack/install.sh does it)")


def test_real_dot_draws_every_state_and_edge_label_as_svg() -> None:
    _need_dot()
    graph = build_graph(load_flow(ROOT / "flows" / "bank.yaml"))
    root = ET.fromstring(draw(graph, "svg", untested={"main:key:2"}))
    titles = {g.findtext(f"{SVG}title") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert titles == {n.id for n in graph.drawn_nodes()}
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == len(graph.drawn_edges()) + sum(1 for n in graph.drawn_nodes() if graph.loops(n.id))
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"1", "✗ 2", "0", "max retries", "collected", "any error", "SENSITIVE", "invalid (check_pin)"} <= texts
    red = [g.findtext(f"{SVG}title") for g in edges if any(p.get("stroke") == "#dd0000" for p in g.iter(f"{SVG}path"))]
    assert red == ["main->lost_card"]


def test_svg_elements_carry_the_graph_ids_a_page_lights() -> None:
    _need_dot()
    graph = build_graph(load_flow(ROOT / "flows" / "bank.yaml"))
    root = ET.fromstring(draw(graph, "svg"))
    named = {g.get("id"): g.get("class") for g in root.iter(f"{SVG}g")}
    assert {node_element(n.id) for n in graph.drawn_nodes()} <= {i for i, c in named.items() if c == "node"}
    assert set(drawn_as(graph).values()) <= set(named)
    assert named["edge:main:key:1"] == named["loop:main"] == "edge"


def test_png_is_a_png() -> None:
    _need_dot()
    graph = build_graph(load_flow(ROOT / "flows" / "appointments.yaml"))
    assert draw(graph, "png").startswith(b"\x89PNG\r\n")


def test_without_dot_one_line_says_how_to_get_it_and_text_formats_still_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    graph = build_graph(load_flow(ROOT / "flows" / "bank.yaml"))
    with pytest.raises(GraphvizMissing) as info:
        draw(graph, "svg")
    assert str(info.value) == INSTALL_HINT and "\n" not in INSTALL_HINT and "apt-get install graphviz" in INSTALL_HINT
    assert draw(graph, "mermaid").startswith(b"%% acme-bank")
    assert b"digraph" in draw(graph, "dot")


def test_a_dot_failure_carries_its_message() -> None:
    _need_dot()
    with pytest.raises(GraphvizError, match="syntax error"):
        render("digraph { a -> }", "svg")
