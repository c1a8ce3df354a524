"""`ivrkit diff`: keys added / removed / re-routed, states, prompts, longer and lost paths."""

from __future__ import annotations

from ivrkit.flow.loader import load_flow_text
from ivrkit.graph.model import build_graph
from ivrkit.review.diff import diff

OLD = """
start: main
states:
  main:
    menu: {prompt: "1 sales, 2 support, 3 billing.", options: {"1": sales, "2": support, "3": billing},
           no_match: "Sorry."}
    retries: 1
  sales: {say: "Sales.", hangup: true}
  support: {transfer: "sip:support@pbx"}
  billing: {say: "Billing.", hangup: true}
"""
NEW = """
start: main
states:
  main:
    menu: {prompt: "1 sales, 2 support.", options: {"1": sales, "2": triage, "4": sales},
           no_match: "Sorry, no."}
    retries: 1
  triage: {say: "One moment.", next: support}
  sales: {say: "Sales.", hangup: true}
  support: {transfer: "sip:support@pbx"}
"""


def _diff(old: str, new: str) -> list[str]:
    a, b = load_flow_text(old, "old.yaml"), load_flow_text(new, "new.yaml")
    return diff(a, build_graph(a), b, build_graph(b))


def test_every_change_a_caller_notices() -> None:
    assert _diff(OLD, NEW) == [
        "state added: triage (say, new.yaml:8:3)",
        "state removed: billing (was hangup, old.yaml:10:3)",
        "re-routed: main --[2]--> triage (was to support)",
        "added: main --[4]--> sales",
        "added: triage --[next]--> support",
        "removed: main --[3]--> billing",
        "prompt changed: main.menu.no_match[1] (new.yaml:4:3)\n    - Sorry.\n    + Sorry, no.",
        "prompt changed: main.menu.prompt (new.yaml:4:3)\n    - 1 sales, 2 support, 3 billing.\n    + 1 sales, 2 support.",
        "longer: support is 2 steps from the start (was 1): main -[2]-> triage -[next]-> support",
    ]


def test_a_removed_key_and_a_state_no_caller_reaches_any_more() -> None:
    new = OLD.replace(', "3": billing}', "}")
    assert _diff(OLD, new) == ["removed: main --[3]--> billing", "unreachable now: billing (was 1 step from the start)"]


def test_no_change() -> None:
    assert _diff(OLD, OLD) == []
