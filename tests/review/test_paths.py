"""Shortest caller paths: keys, input and next walk; errors, hooks, back keys and loops do not."""

from __future__ import annotations

from ivrkit.flow.loader import load_flow_text
from ivrkit.graph.model import build_graph
from ivrkit.review.paths import shortest_paths, steps
from tests.graph.helpers import EVERY_EDGE


def test_each_state_with_one_shortest_path() -> None:
    paths = shortest_paths(build_graph(load_flow_text(EVERY_EDGE)))
    assert {name: p.steps for name, p in paths.items()} == {
        "main": 0, "pin": 1, "route": 1, "legacy": 1, "agent": 1, "goodbye": 1, "sorry": 2, "lookup": 2, "out": 2}
    assert str(paths["lookup"]) == "main -[1]-> pin -[1 confirm]-> lookup"
    assert str(paths["sorry"]) == "main -[1]-> pin -[max retries (error)]-> sorry"  # exhaustion walks, a marker does not
    assert steps(1) == "1 step" and steps(2) == "2 steps"
