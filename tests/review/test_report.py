"""`check --report`: size, deepest paths, crowded menus, missing retry prompts, sensitive flows."""

from __future__ import annotations

from pathlib import Path

from ivrkit.flow.loader import load_flow, load_flow_text
from ivrkit.graph.model import build_graph
from ivrkit.review.report import report

ROOT = Path(__file__).resolve().parents[2]
CROWDED = """
flow: crowded
start: main
states:
  main:
    menu:
      prompt: "Pick."
      options: {"1": pin, "2": bye, "3": bye, "4": bye, "5": bye, "6": bye}
      no_input: "Hello?"
      on_max_retries: bye
  pin:
    collect: {prompt: "PIN?", into: pin, min_digits: 4, max_digits: 4, sensitive: true,
              no_input: "PIN?", no_match: "No.", on_max_retries: bye}
    next: check
  check:
    goto: [{if: "pin == '0000'", then: bye}, {else: fwd}]
  fwd:
    run: tests.graph.hooks:lookup
    say: "Your PIN {pin} is fine."
    next: agent
  agent: {transfer: "sip:{pin}@pbx.example.com"}
  bye: {say: "Bye.", hangup: true}
"""


def test_the_bank_report() -> None:
    flow = load_flow(ROOT / "flows" / "bank.yaml")
    lines = report(flow, build_graph(flow)).splitlines()
    assert lines[1] == "  9 states: 1 menus, 2 collects, 2 hooks, 1 transfers, 1 sensitive inputs"
    assert lines[2] == "  deepest path to a person (transfer): 1 step: main -[0]-> agent"
    assert lines[3] == "  deepest path to a hang-up: 3 steps: main -[1]-> account -[collected]-> pin -[max retries]-> locked"
    assert any("'account' has no no_input prompt" in line for line in lines)
    assert "    validate hook acme_bank:check_pin (gets the digits)" in lines


def test_crowded_menus_missing_prompts_and_every_place_a_sensitive_value_flows() -> None:
    flow = load_flow_text(CROWDED, "crowded.yaml")
    text = report(flow, build_graph(flow))
    assert "warning: crowded.yaml:5:3: menu 'main' has 6 options; callers hold about 5 in mind: split it" in text
    assert "'main' has no no_match prompt" in text and "'pin' has no" not in text
    assert "deepest path to a person (transfer): 4 steps: main -[1]-> pin -[collected]-> check -[else]-> fwd -[next]-> agent" in text
    flows_to = text.split("flows to:\n")[1].splitlines()
    assert flows_to == [
        "    a goto condition of 'check': pin == '0000'",
        "    a prompt of 'fwd' (crowded.yaml:19:10) (masked in logs and traces)",
        "    the transfer of 'agent' (crowded.yaml:21:3)",
        "    hook tests.graph.hooks:lookup in 'fwd' (gets every variable)",
    ]


def test_coverage_lists_unreached_states_and_untested_edges() -> None:
    flow = load_flow_text(CROWDED, "crowded.yaml")
    graph = build_graph(flow)
    text = report(flow, graph, untested={"main:key:6"}, unvisited={"agent"})
    assert f"  coverage: 1 of {len(graph.counted_edges())} edges untested; states no test reaches: agent" in text
    assert "    untested: main --[6]--> bye" in text
