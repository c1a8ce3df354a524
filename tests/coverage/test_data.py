"""Coverage data: counts per flow, the JSON file round trip, matching a flow, the report table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrkit.coverage.data import CoverageData, report
from ivrkit.errors import CoverageDataError
from ivrkit.flow.loader import load_flow_text
from ivrkit.graph.model import build_graph
from ivrkit.testing import FlowTester

FLOW = 'flow: {name}\nstart: m\nstates:\n  m: {{menu: {{prompt: "1", options: {{"1": a, "2": a}}}}, retries: 1}}\n  a: {{say: "A.", hangup: true}}\n'


async def _data() -> CoverageData:
    data = CoverageData()
    for name in ("one", "two"):
        flow = load_flow_text(FLOW.format(name=name))
        async with FlowTester(flow) as t:
            await t.press("1")
            await t.advance(10)
        data.record(flow, t.trace)
    return data


async def test_counts_round_trip_through_the_file(tmp_path: Path) -> None:
    data = await _data()
    data.write(tmp_path / "cov.json")
    again = CoverageData.read(tmp_path / "cov.json")
    assert again == data
    assert again.total() == (2, 6)
    entry = again.flows[f"{load_flow_text(FLOW.format(name='one')).file}::one"]
    assert entry.edges == {"m:key:1": 1, "m:key:2": 0, "m:max_retries": 0} and entry.states == {"m": 1, "a": 1}
    assert entry.untested() == ["m:key:2", "m:max_retries"] and round(entry.percent) == 33


async def test_a_flow_is_found_by_file_and_name_else_by_a_unique_name() -> None:
    data = await _data()
    flow = load_flow_text(FLOW.format(name="two"))
    assert data.untested(flow, build_graph(flow)) == {"m:key:2", "m:max_retries"}
    moved = load_flow_text(FLOW.format(name="two"), "elsewhere.yaml")
    assert data.untested(moved, build_graph(moved)) == {"m:key:2", "m:max_retries"}
    unknown = load_flow_text(FLOW.format(name="three"))
    with pytest.raises(CoverageDataError, match=r"no data for flow 'three' .*; flows in it: one \(.*<string>\), two \(.*<string>\)"):
        data.untested(unknown, build_graph(unknown))


async def test_an_edge_the_file_does_not_know_is_untested() -> None:
    data = await _data()
    changed = load_flow_text(FLOW.format(name="one").replace('"2": a', '"2": a, "3": a'))
    assert "m:key:3" in data.untested(changed, build_graph(changed))


async def test_the_report_lists_untested_edges_by_name_under_their_flow() -> None:
    lines = report(await _data(), relative_to=str(Path.cwd())).splitlines()
    assert lines[0].split() == ["Flow", "Edges", "Taken", "Cover", "States"]
    assert lines[2].split() == ["<string>", "(one)", "3", "1", "33%", "2/2"]
    assert lines[3] == "  untested: m --[2]--> a" and lines[4].strip() == "m --[max retries (error)]--> built-in apology"
    assert lines[-1].split() == ["TOTAL", "6", "2", "33%"]


@pytest.mark.parametrize("text", ["not json", '{"version": 2, "flows": []}', '{"version": 1, "flows": [{"file": 1}]}'])
def test_a_bad_file_is_a_coverage_data_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "cov.json").write_text(text)
    with pytest.raises(CoverageDataError, match=str(tmp_path / "cov.json")):
        CoverageData.read(tmp_path / "cov.json")
