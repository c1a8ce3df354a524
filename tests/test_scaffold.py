"""`ivrkit new`: the scaffold checks clean, and its own tests pass with 100 % flow edge coverage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivrkit import scaffold
from ivrkit.cli import build_parser, main
from ivrkit.flow.loader import check_flow

ROOT = Path(__file__).resolve().parent.parent


def test_the_scaffold_checks_clean_and_its_tests_take_every_edge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "pizza-orders", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    flow, test = tmp_path / "flows" / "pizza-orders.yaml", tmp_path / "tests" / "test_pizza_orders.py"
    assert f"ivrkit console {flow}" in out and f"pytest {test} --ivr-cov" in out and f"ivrkit graph {flow} -o pizza-orders.svg" in out
    assert (tmp_path / "hooks" / "pizza_orders_hooks.py").is_file() and (tmp_path / "pytest.ini").is_file()
    result = check_flow(flow)
    assert result.issues == (), [i.format() for i in result.issues]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "ivrkit.coverage.plugin", "--ivr-cov-fail-under=100",
                           "-p", "no:cacheprovider", "-W", "error"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 passed" in proc.stdout and "flows/pizza-orders.yaml      14      14    100%" in proc.stdout


def test_nothing_is_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shop.py").write_text("# mine\n")
    assert main(["new", "shop", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not overwriting" in err and str(tmp_path / "tests" / "test_shop.py") in err
    assert not (tmp_path / "flows").exists() and (tmp_path / "tests" / "test_shop.py").read_text() == "# mine\n"


def test_an_existing_pytest_configuration_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    files = scaffold.write("shop", tmp_path)
    assert files.ini is None and not (tmp_path / "pytest.ini").exists()


@pytest.mark.parametrize("name", ["Shop", "9lives", "a b", "../up", "x" * 41])
def test_a_bad_name_exits_2_and_says_what_a_name_is(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", name, "--dir", str(tmp_path)]) == 2
    assert "lower-case letters, digits, - and _" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_help_has_an_example_and_exit_codes() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["new"].format_help()  # type: ignore[attr-defined]
    assert "ivrkit new pizza-orders" in text and "exit codes: 0 written" in text
