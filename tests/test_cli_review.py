"""`ivrkit check --report` and `ivrkit diff`: wiring, exit codes, errors as `ivrkit check` prints them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivrkit.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
BANK = str(ROOT / "flows" / "bank.yaml")
BAD = 'start: main\nstates:\n  main:\n    menu: {prompt: Hi, options: {"1": mian_menu}}\n  main_menu: {say: Bye, hangup: true}\n'


def test_check_report_follows_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--report", BANK]) == 0
    out = capsys.readouterr().out
    assert out.index(": ok (9 states)") < out.index("acme-bank (") and "deepest path to a person (transfer): 1 step" in out


def test_check_report_with_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cov = tmp_path / "cov.json"
    cov.write_text(json.dumps({"version": 1, "flows": [{"file": "/elsewhere/bank.yaml", "flow": "acme-bank",
                                                        "edges": {"main:key:1": 2}, "states": {"main": 2, "account": 1}}]}))
    assert main(["check", BANK, "--coverage", str(cov)]) == 0  # --coverage implies --report
    out = capsys.readouterr().out
    assert "coverage: 19 of 20 edges untested; states no test reaches: agent, balance," in out
    cov.write_text("{}")
    assert main(["check", BANK, "--coverage", str(cov)]) == 2
    assert "not an ivrkit coverage file" in capsys.readouterr().err


def test_check_report_of_a_broken_flow_still_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["check", "--report", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:4:39: error: unknown state 'mian_menu'" in out and "review" not in out


def test_diff_exit_codes_like_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", BANK, BANK]) == 0
    assert "no change a caller would notice" in capsys.readouterr().out
    new = tmp_path / "bank.yaml"
    new.write_text(Path(BANK).read_text().replace('"0": agent', '"0": goodbye').replace("../examples", str(ROOT / "examples")))
    assert main(["diff", BANK, str(new)]) == 1
    out = capsys.readouterr().out
    assert "2 changes for callers" in out and "re-routed: main --[0]--> goodbye (was to agent)" in out
    assert "unreachable now: agent (was 1 step from the start)" in out


def test_diff_of_a_broken_or_missing_flow_prints_what_check_prints_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["diff", BANK, str(bad)]) == 2
    assert f"{bad}:4:39: error: unknown state 'mian_menu'" in capsys.readouterr().err
    assert main(["diff", str(tmp_path / "gone.yaml"), BANK]) == 2
    assert "flow file" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "example"), [("diff", "ivrkit diff /tmp/old.yaml flows/bank.yaml"),
                                                   ("check", "ivrkit check --report flows/bank.yaml")])
def test_help_has_an_example_and_exit_codes(command: str, example: str) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices[command].format_help()  # type: ignore[attr-defined]
    assert example in text and "exit codes" in text
