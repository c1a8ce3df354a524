"""The HTML page: self-contained, the figures in it, the flow drawn by traffic or a table."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ivrkit.flow.loader import load_flow
from ivrkit.report.aggregate import aggregate
from ivrkit.report.html import report_html
from tests.report.calls import BANK, write_calls


def _need_dot() -> None:
    if shutil.which("dot") is None:
        if os.environ.get("IVRKIT_STACK_REQUIRED"):
            pytest.fail("Graphviz's dot is missing, and IVRKIT_STACK_REQUIRED is set (tests/stack/install.sh installs it)")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")


def _self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)  # nothing fetched from elsewhere
    assert "<link" not in page and "<?xml" not in page


async def test_the_page_draws_the_flow_with_traffic(tmp_path: Path) -> None:
    _need_dot()
    await write_calls(tmp_path)
    flow = load_flow(BANK)
    page = report_html(aggregate([tmp_path], {flow.name: flow}), {flow.name: flow})
    _self_contained(page)
    assert page.count("<svg") == 1 and "Traffic on the flow" in page
    assert "0 · 3</text>" in page  # key 0 → agent, taken by three calls
    assert "max retries · 1</text>" in page
    widths = [float(w) for w in re.findall(r'stroke-width="([\d.]+)"', page)]
    assert max(widths) == 7.0  # the busiest arrow (start → main, all seven calls)
    assert "<td>pin</td><td>2</td><td>2</td><td>100.0%" in page
    assert "<td>main</td><td>9</td><td>1</td>" in page


async def test_without_the_flow_the_moves_are_a_table(tmp_path: Path) -> None:
    await write_calls(tmp_path)
    page = report_html(aggregate([tmp_path]))
    _self_contained(page)
    assert "<svg" not in page and "No picture: no flow file with this name was given (--flows DIR)." in page
    assert "<tr><td>main</td><td>agent</td><td>key 0</td><td>3</td></tr>" in page


async def test_without_graphviz_the_page_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await write_calls(tmp_path)
    flow = load_flow(BANK)
    report = aggregate([tmp_path], {flow.name: flow})
    monkeypatch.setenv("PATH", str(tmp_path))
    page = report_html(report, {flow.name: flow})
    assert "<svg" not in page and "apt-get install graphviz" in page and "<td>key 0</td><td>3</td>" in page
