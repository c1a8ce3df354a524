"""`ivrkit graph`: formats by extension, the same errors as `ivrkit check`, exit codes, --help."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivrkit.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
BANK = str(ROOT / "flows" / "bank.yaml")
BAD = 'start: main\nstates:\n  main:\n    menu: {prompt: Hi, options: {"1": mian_menu}}\n  main_menu: {say: Bye, hangup: true}\n'


def test_mermaid_goes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", BANK]) == 0
    out = capsys.readouterr().out
    assert out.startswith("%% acme-bank (bank.yaml)") and "flowchart TD" in out and 'n_main -->|"1"| n_account' in out


@pytest.mark.parametrize(("suffix", "head"), [(".mmd", b"%% acme-bank"), (".dot", b"// acme-bank"), (".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_the_extension_picks_the_format(tmp_path: Path, suffix: str, head: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    if suffix in (".svg", ".png") and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (tests/graph/test_render.py covers the message)")
    out = tmp_path / f"bank{suffix}"
    assert main(["graph", BANK, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(head)
    assert f"wrote {out}" in capsys.readouterr().err


def test_a_broken_flow_prints_what_check_prints_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["check", str(bad)]) == 1
    checked = capsys.readouterr().out
    assert main(["graph", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == checked
    assert f"{bad}:4:39: error: unknown state 'mian_menu'" in captured.err


def test_a_missing_flow_is_reported_with_its_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(tmp_path / "nope.yaml")]) == 1
    assert f"{tmp_path / 'nope.yaml'}:1:1: error: flow file '{tmp_path / 'nope.yaml'}' does not exist" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", BANK, "-o", str(tmp_path / "bank.jpg")]) == 2
    assert "use .mmd, .dot, .svg or .png" in capsys.readouterr().err
    assert main(["graph", BANK, "--format", "png"]) == 2
    assert "-o FILE.png" in capsys.readouterr().err


def test_without_graphviz_svg_exits_3_with_one_line_and_mermaid_still_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["graph", BANK, "-o", str(tmp_path / "bank.svg")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install graphviz" in err
    assert not (tmp_path / "bank.svg").exists()
    assert main(["graph", BANK, "-o", str(tmp_path / "bank.mmd")]) == 0


def test_help_has_an_example_and_the_exit_codes() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["graph"].format_help()  # type: ignore[attr-defined]
    assert "ivrkit graph flows/bank.yaml -o bank.svg" in text and "exit codes: 0" in text
