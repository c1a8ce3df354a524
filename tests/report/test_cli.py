"""`ivrkit report`: output, the page, and the exit codes its --help promises."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ivrkit.cli import main
from ivrkit.report.cli import ReportArgs, run_report
from tests.report.calls import ROOT, write_calls


def _run(args: ReportArgs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return run_report(args, out, err), out.getvalue(), err.getvalue()


async def test_reports_a_folder_and_writes_the_page(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    await write_calls(traces)
    page = tmp_path / "report.html"
    code, out, err = _run(ReportArgs([str(traces)], flows=str(ROOT / "flows"), html=str(page)))
    assert code == 0 and out.startswith("flow acme-bank: 7 calls\n")
    assert err == f"ivrkit report: wrote {page}\n" and "<h2>flow acme-bank</h2>" in page.read_text()


async def test_exit_codes(tmp_path: Path) -> None:
    assert _run(ReportArgs([str(tmp_path)]))[0] == 1  # an empty folder: no trace
    (tmp_path / "junk.jsonl").write_text("{}\n")
    code, out, err = _run(ReportArgs([str(tmp_path)]))
    assert (code, out) == (1, "") and "1 file(s) were not call traces" in err and "no call trace" in err
    assert _run(ReportArgs([str(tmp_path / "missing")]))[:2] == (2, "")
    broken = tmp_path / "broken.yaml"
    broken.write_text("flow: x\nstart: nowhere\nstates: {}\n")
    await write_calls(tmp_path / "t")
    code, out, err = _run(ReportArgs([str(tmp_path / "t")], flows=str(broken)))
    assert (code, out) == (2, "") and "unknown-state" in err and err.endswith(f"{broken} has errors (above)\n")
    assert _run(ReportArgs([str(tmp_path / "t")], flows=str(tmp_path / "nowhere")))[0] == 2


def test_help_names_an_example_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    help_text = capsys.readouterr().out
    assert "ivrkit report traces/ --flows flows/ --html report.html" in help_text
    assert "exit codes: 0 reported, 1 no call trace found, 2 bad options" in help_text
    with pytest.raises(SystemExit) as info:
        main(["report"])
    assert info.value.code == 2
