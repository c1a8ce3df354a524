"""`ivrkit check` and `ivrkit schema`: mypy-style text, JSON, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ivrkit.cli import CheckArgs, build_parser, main

BAD = """\
start: main
states:
  main:
    menu:
      prompt: Hi
      options: {"1": mian_menu}
  main_menu: {say: Bye, hangup: true}
"""
WARN = "start: a\nstates:\n  a: {say: '{who}', hangup: true}\n"
GOOD = "start: a\nstates:\n  a: {say: Hi, hangup: true}\n"


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, text in (("bad", BAD), ("warn", WARN), ("good", GOOD)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        out[name] = str(path)
    return out


def test_check_prints_mypy_style_and_exits_1_on_errors(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", files["bad"], files["good"]]) == 1
    out = capsys.readouterr().out
    assert f"{files['bad']}:6:22: error: unknown state 'mian_menu' (states.main.menu.options.\"1\")  [unknown-state]" in out
    assert '      options: {"1": mian_menu}' in out and "  note: did you mean 'main_menu'?" in out
    assert f"{files['bad']}: 1 error, 1 warning" in out  # main_menu is unreachable too
    assert f"{files['good']}: ok (1 states)" in out


def test_warnings_are_printed_but_exit_0(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", files["warn"]]) == 0
    out = capsys.readouterr().out
    assert f"{files['warn']}:3:12: warning: variable 'who' is used but nothing sets it" in out
    assert f"{files['warn']}: 1 warning" in out


def test_json_output(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", files["bad"]]) == 1
    data = json.loads(capsys.readouterr().out)
    first = data[0]
    assert (first["file"], first["line"], first["col"], first["code"], first["severity"]) == (files["bad"], 6, 22, "unknown-state", "error")
    assert first["hint"] == "did you mean 'main_menu'?"


def test_missing_file_and_no_hooks_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml' does not exist  [file-not-found]" in capsys.readouterr().out
    (tmp_path / "h.yaml").write_text("start: a\nstates:\n  a: {run: no_such_mod_q:f, say: Hi, hangup: true}\n")
    assert main(["check", str(tmp_path / "h.yaml")]) == 1
    assert "[bad-hook]" in capsys.readouterr().out
    assert main(["check", "--no-hooks", str(tmp_path / "h.yaml")]) == 0


def test_arguments_parse_into_dataclasses() -> None:
    ns = build_parser().parse_args(["check", "--json", "--no-hooks", "a.yaml", "b.yaml"])
    assert ns.args_type is CheckArgs
    with pytest.raises(SystemExit):
        build_parser().parse_args(["check"])  # at least one file


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ivrkit flow"


def test_runs_as_a_process(files: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ivrkit.cli", "check", files["bad"]], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "[unknown-state]" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "ivrkit.cli", "check", files["good"]], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
