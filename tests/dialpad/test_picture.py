"""ivrkit.dialpad.picture: the flow of a call found by name among the worker's flows, drawn by
the real Graphviz with the element ids the page lights; without Graphviz, one line says why."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivrkit.dialpad.picture import FlowNotFound, find_flow, flow_picture
from ivrkit.flow.loader import load_flow
from ivrkit.graph.render import INSTALL_HINT
from tests.graph.test_render import ROOT, SVG, _need_dot


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "a.yaml").write_text("flow: first\nstart: main\nstates:\n  main: {say: Hi., hangup: true}\n")
    (folder / "b.yaml").write_text("flow: second\nstart: hello\nstates:\n  hello: {say: Hello., hangup: true}\n")
    return folder


def test_the_flow_is_found_by_its_name_in_a_folder_or_a_file(flows: Path) -> None:
    assert find_flow(flows, "second").start == "hello"
    assert find_flow(flows / "a.yaml", "first").start == "main"


def test_an_unknown_name_names_the_flows_there_and_the_first_broken_file(flows: Path) -> None:
    (flows / "c.yaml").write_text("flow: third\nstart: nowhere\nstates:\n  main: {say: Hi.}\n")
    with pytest.raises(FlowNotFound) as info:
        find_flow(flows, "fourth")
    message = str(info.value)
    assert "no flow named 'fourth'" in message and "flows there: first, second" in message
    assert "1 file(s) with errors, first: " in message and "c.yaml:2:" in message


def test_without_flows_or_with_a_missing_folder_it_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(FlowNotFound, match="start the dial pad with --flows PATH"):
        find_flow(None, "first")
    with pytest.raises(FlowNotFound, match="no such flow file or folder"):
        find_flow(tmp_path / "nope", "first")


def test_the_svg_names_every_element_the_maps_point_to() -> None:
    _need_dot()
    picture = flow_picture(load_flow(ROOT / "flows" / "bank.yaml"))
    assert picture["flow"] == "acme-bank" and picture["message"] == ""
    root = ET.fromstring(picture["svg"])
    named = {g.get("id") for g in root.iter(f"{SVG}g")}
    assert picture["nodes"]["main"] == "node:main" and picture["edges"]["main:key:1"] == "edge:main:key:1"
    assert picture["edges"]["pin:invalid"] == "loop:pin"
    assert set(picture["nodes"].values()) | set(picture["edges"].values()) <= named


def test_without_graphviz_no_svg_but_one_line_saying_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    picture = flow_picture(load_flow(ROOT / "flows" / "bank.yaml"))
    assert picture["svg"] is None and picture["message"] == f"no picture: {INSTALL_HINT}"
    assert picture["nodes"]["pin"] == "node:pin"  # the page still knows the states, for the path as text
