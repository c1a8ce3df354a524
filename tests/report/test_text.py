"""The plain-text report, line by line, for the seven bank calls."""

from __future__ import annotations

from pathlib import Path

from ivrkit.report.aggregate import aggregate
from ivrkit.report.text import report_text
from tests.report.calls import write_calls


async def test_the_text_report_of_seven_bank_calls(tmp_path: Path) -> None:
    await write_calls(tmp_path)
    lines = report_text(aggregate([tmp_path])).splitlines()
    assert lines[:5] == [
        "flow acme-bank: 7 calls",
        "  contained (ended without a person): 4 (57.1%)",
        "  transferred: 3 (42.9%)",
        "  ended by: transfer 3, caller_hangup 3, hangup 1",
        "  drop-off (callers who hung up in a state, of those who reached it):",
    ]
    assert "    pin                      reached      2  hung up      2  100.0%" in lines
    assert ("    main                     menu     entries      7  no input     5  71.4%  no match     1  14.3%") in lines
    assert "  most-pressed invalid keys: 9 in main (1)" in lines
    assert lines[-3:] == ["  median time to the end:",
                          "    hangup in goodbye                   51.4 s  (1 calls)",
                          "    transfer in agent                    4.2 s  (3 calls)"]
