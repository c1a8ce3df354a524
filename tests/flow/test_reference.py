"""docs/flows.md's key reference is generated from the key table; a stale copy fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ivrkit.flow.reference import BEGIN, END, main, render, replace_section
from ivrkit.flow.spec import SECTIONS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "flows.md"


def test_docs_flows_md_holds_the_current_reference() -> None:
    text = DOC.read_text()
    assert BEGIN in text and END in text, "docs/flows.md lost its generated key reference markers"
    current = text[text.index(BEGIN):text.index(END) + len(END)]
    assert current == render(), "docs/flows.md is stale: run `python -m ivrkit.flow.reference --write`"


def test_every_key_of_the_table_is_in_the_reference_with_a_type_default_and_example() -> None:
    rows = [line for line in render().splitlines() if line.startswith("| `")]
    assert len(rows) == sum(len(keys) for name, keys in SECTIONS.items())
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 5 and all(cells), row
    assert "| `timeout` | duration | 5s | `8s` |" in render()  # Settings' own default
    assert "| `max_digits` | integer | 20 |" in render()  # Collect's own default
    assert "| `options` | key → state | required |" in render()


def test_write_then_check(tmp_path: Path) -> None:
    doc = tmp_path / "flows.md"
    doc.write_text("# Flows\n\nhand-written\n")
    assert main(["--check", "--file", str(doc)]) == 1
    assert main(["--write", "--file", str(doc)]) == 0
    assert doc.read_text().startswith("# Flows\n\nhand-written\n\n" + BEGIN)
    assert main(["--check", "--file", str(doc)]) == 0
    stale = doc.read_text().replace("| `retries` | integer | 3 |", "| `retries` | integer | 4 |")
    doc.write_text(stale + "after\n")
    assert main(["--write", "--file", str(doc)]) == 0
    assert doc.read_text() == replace_section(stale + "after\n", render()) and doc.read_text().endswith(END + "\n" + "after\n")


def test_it_runs_as_a_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "ivrkit.flow.reference", "--check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
