"""`pytest --ivr-cov`, run on real test files in a scratch project (pytest's pytester)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivrkit.cli import main
from ivrkit.testing import FINISHED_CALLS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
FLOW = """\
flow: tiny
start: main
defaults: {retries: 2}
states:
  main:
    menu: {prompt: "1 yes, 2 no.", options: {"1": yes, "2": no}, on_max_retries: no}
  yes: {say: "Yes.", hangup: true}
  no: {say: "No.", hangup: true}
"""
TESTS = """\
from ivrkit.testing import FlowTester

async def test_yes():
    async with FlowTester("tiny.yaml") as t:
        await t.press("1")
        t.expect_prompt("Yes.")

async def test_nothing_pressed():
    async with FlowTester("tiny.yaml") as t:
        await t.until_input()
        await t.advance(5)
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("No.")
"""
PLUGIN = ("-p", "ivrkit.coverage.plugin")  # the entry point does this once ivrkit is installed


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    (pytester.path / "tiny.yaml").write_text(FLOW)
    pytester.makepyfile(test_tiny=TESTS)
    return pytester


def test_the_table_names_each_untested_edge_and_the_data_file_is_written(project: pytest.Pytester) -> None:
    result = project.runpytest(*PLUGIN, "--ivr-cov")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*ivrkit flow coverage*",
        "Flow * Edges * Taken * Cover * States",
        "tiny.yaml * 5 * 3 * 60% * 3/3",
        "  untested: main --[2]--> no",
        "            main --[no match]--> main",
        "TOTAL * 5 * 3 * 60%",
        f"coverage data written to {project.path / '.ivrkit-coverage.json'}",
    ])
    data = json.loads((project.path / ".ivrkit-coverage.json").read_text())
    (entry,) = data["flows"]
    assert entry["flow"] == "tiny" and entry["file"] == str(project.path / "tiny.yaml")
    assert entry["edges"] == {"main:key:1": 1, "main:key:2": 0, "main:no_input": 1, "main:no_match": 0, "main:max_retries": 1}
    assert entry["states"] == {"main": 2, "yes": 1, "no": 1}


def test_fail_under_fails_a_green_run_below_the_floor(project: pytest.Pytester) -> None:
    result = project.runpytest(*PLUGIN, "--ivr-cov-fail-under=80")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAIL Required flow edge coverage of 80% not reached. Total coverage: 60.00%*"])
    assert project.runpytest(*PLUGIN, "--ivr-cov-fail-under=60").ret == pytest.ExitCode.OK


def test_reaching_every_edge_passes_at_100(project: pytest.Pytester) -> None:
    project.makepyfile(test_more="""
from ivrkit.testing import FlowTester

async def test_no_and_a_wrong_key():
    async with FlowTester("tiny.yaml") as t:
        await t.press("7")
        t.expect_state("main")
        await t.press("2")
        t.expect_prompt("No.")
""")
    result = project.runpytest(*PLUGIN, "--ivr-cov-fail-under=100")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["tiny.yaml * 5 * 5 * 100% * 3/3"])
    result.stdout.no_fnmatch_line("*untested*")


def test_without_the_option_the_plugin_does_nothing(project: pytest.Pytester) -> None:
    listening = list(FINISHED_CALLS)  # this run's own --ivr-cov, if any
    result = project.runpytest(*PLUGIN)
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*flow coverage*")
    assert not (project.path / ".ivrkit-coverage.json").exists()
    assert FINISHED_CALLS == listening  # nothing left listening after the run


def test_the_data_file_colours_the_graph(project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    project.runpytest(*PLUGIN, "--ivr-cov", "--ivr-cov-data=cov.json")
    capsys.readouterr()
    assert main(["graph", str(project.path / "tiny.yaml"), "--coverage", str(project.path / "cov.json"), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert '"main" -> "no" [label="✗ 2" color="#dd0000"' in dot
    assert '"main" -> "yes" [label="1"]' in dot
    assert "red: 2 of 5 edges no test took" in dot


def test_graph_coverage_errors_exit_2(project: pytest.Pytester, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = str(project.path / "tiny.yaml")
    assert main(["graph", flow, "--coverage", str(tmp_path / "none.json")]) == 2
    assert "run `pytest --ivr-cov`" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"version": 1, "flows": [{"file": "/x.yaml", "flow": "x", "edges": {}, "states": {}}]}')
    assert main(["graph", flow, "--coverage", str(other)]) == 2
    assert "has no data for flow 'tiny'" in capsys.readouterr().err
    other.write_text("[]")
    assert main(["graph", flow, "--coverage", str(other)]) == 2
    assert "not an ivrkit coverage file" in capsys.readouterr().err


def test_the_example_flows_reach_every_edge(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(str(ROOT / "tests" / "test_example_flows.py"), *PLUGIN, "--ivr-cov-fail-under=100",
                                           f"--rootdir={ROOT}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["TOTAL * 100%"])
