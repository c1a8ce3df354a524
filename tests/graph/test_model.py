"""The flow graph: every way out of a state is one labelled edge with a stable id."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivrkit.flow.loader import load_flow, load_flow_text
from ivrkit.graph.model import ANY_ERROR, BUILTIN_ERROR, LARGE, START, FlowGraph, build_graph
from tests.graph.helpers import EVERY_EDGE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph() -> FlowGraph:
    return build_graph(load_flow_text(EVERY_EDGE, "every.yaml"))


def test_every_edge_kind_with_its_label_and_target(graph: FlowGraph) -> None:
    edges = {e.id: (e.target, e.label) for e in graph.edges}
    assert edges == {
        f"{START}:start": ("main", "call"),
        "main:key:1": ("pin", "1"), "main:key:2": ("route", "2"), "main:key:3": ("legacy", "3"), "main:key:0": ("agent", "0"),
        "main:repeat": ("main", "* repeat"),
        "main:no_input": ("main", "no input"),
        "main:no_match": ("main", "no match"),
        "main:max_retries": ("goodbye", "max retries"),
        "pin:back": ("pin~back", "* back"),
        "pin:no_input": ("pin", "no input"),
        "pin:no_match": ("pin", "too short"),
        "pin:invalid": ("pin", "invalid (pin_ok)"),
        "pin:max_retries": ("sorry", "max retries (error)"),  # no on_max_retries: the flow's error state
        "pin:collected": ("lookup", "1 confirm"),
        "pin:reenter": ("pin", "2 re-enter"),
        "lookup:hook": ("lookup~hook", "hook decides"),
        "lookup:next": ("route", "next"),
        "lookup:on_error": ("goodbye", "on error"),
        "route:goto:1": ("agent", "if pin == '1234'"),
        "route:goto:2": ("legacy", "if last_key == '2'"),
        "route:goto:3": ("goodbye", "else"),
        "legacy:next": ("out", "sent"),
        "out:next": ("goodbye", "dialled"),
        f"{ANY_ERROR}:error": ("sorry", "any error"),
    }


def test_nodes_are_shaped_by_kind_and_mark_start_and_sensitive_input(graph: FlowGraph) -> None:
    kinds = {n.id: n.kind for n in graph.nodes}
    assert kinds == {
        START: "start", "main": "menu", "pin": "collect", "lookup": "say", "route": "goto", "legacy": "send_dtmf",
        "out": "dial", "agent": "transfer", "goodbye": "hangup", "sorry": "hangup",
        "pin~back": "back", "lookup~hook": "any", ANY_ERROR: "error_source",
    }
    assert graph.start == "main" and graph.nodes[0].id == START
    assert [n.id for n in graph.nodes if n.sensitive] == ["pin"]
    assert graph.node("pin").detail == "4 digits → pin"
    assert graph.node("agent").detail == "transfer sip:agent@pbx.example.com"


def test_hook_and_start_edges_are_drawn_but_not_counted(graph: FlowGraph) -> None:
    uncounted = {e.id for e in graph.edges if not e.counted}
    assert uncounted == {f"{START}:start", "lookup:hook"}


def test_a_run_only_state_is_a_hook_node_and_retries_one_has_no_retry_loops() -> None:
    flow = load_flow_text(textwrap.dedent("""
        start: m
        defaults: {retries: 1}
        states:
          m:
            menu: {prompt: "1", options: {"1": h}}
          h: {run: tests.graph.hooks:lookup, next: m}
    """))
    graph = build_graph(flow)
    assert graph.node("h").kind == "hook"
    assert {e.kind for e in graph.out("m")} == {"key", "max_retries"}
    assert graph.edge("m:max_retries").target == BUILTIN_ERROR  # no on_max_retries, no error state
    assert graph.node(BUILTIN_ERROR).kind == "builtin_error"


def test_included_files_become_groups(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text(textwrap.dedent("""
        start: m
        include: [sales.yaml]
        states:
          m: {menu: {prompt: "1", options: {"1": s}}, retries: 1}
    """))
    (tmp_path / "sales.yaml").write_text('states:\n  s: {say: "Sales.", hangup: true}\n')
    graph = build_graph(load_flow(tmp_path / "main.yaml"))
    assert [title for _, title in graph.groups] == ["main.yaml", "sales.yaml"]
    assert graph.node("s").group == str(tmp_path / "sales.yaml") and graph.node("m").group == str(tmp_path / "main.yaml")


def test_a_large_flow_is_grouped_per_top_level_menu_option() -> None:
    lines = ["start: hello", "states:", '  hello: {say: "Hi.", next: top}',
             '  top: {menu: {prompt: "1 or 2", options: {"1": a0, "2": b0}}, retries: 1}']
    for branch in ("a", "b"):
        for i in range(LARGE // 2 + 1):
            nxt = f"{branch}{i + 1}" if i < LARGE // 2 else "bye"
            lines.append(f'  {branch}{i}: {{say: "{branch} {i}.", next: {nxt}}}')
    lines.append('  bye: {say: "Bye.", hangup: true}')
    graph = build_graph(load_flow_text("\n".join(lines) + "\n"))
    assert graph.groups == (("top.1", "top: 1"), ("top.2", "top: 2"))
    assert graph.node("a3").group == "top.1" and graph.node("b0").group == "top.2"
    assert graph.node("top").group is None and graph.node("hello").group is None
    assert graph.node("bye").group is None  # both branches lead there: it belongs to neither


def test_a_small_single_file_flow_has_no_groups() -> None:
    assert build_graph(load_flow(ROOT / "flows" / "bank.yaml")).groups == ()


def test_drawing_helpers_put_markers_inline_and_loops_together(graph: FlowGraph) -> None:
    assert [e.id for e in graph.inline("pin")] == ["pin:back"]
    assert [e.id for e in graph.loops("pin")] == ["pin:no_input", "pin:no_match", "pin:invalid", "pin:reenter"]
    drawn = {n.id for n in graph.drawn_nodes()}
    assert "pin~back" not in drawn and "lookup~hook" not in drawn and ANY_ERROR in drawn
    assert all(e.source != e.target and "~" not in e.target for e in graph.drawn_edges())
