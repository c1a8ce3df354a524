"""Call traces as JSON lines (ivrkit.livekit.trace)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivrkit.livekit.trace import TraceCopier, TraceWriter, to_jsonable
from ivrkit.trace import MAX_EVENTS, Trace


@dataclass(frozen=True)
class Sample:
    name: str
    parts: tuple[int, ...]


def test_events_are_appended_as_json_lines_with_call_time(tmp_path: Path) -> None:
    w = TraceWriter(tmp_path / "traces", "room/1 a", "AJ_x", start=100.0)
    w.write("key", at=101.25, digit="*", sample=Sample("a", (1, 2)))
    w.write("job_end", reason="caller left")
    w.close()
    assert w.path.name == "room_1_a--AJ_x.jsonl"
    lines = [json.loads(line) for line in w.path.read_text().splitlines()]
    assert [r["event"] for r in lines] == ["key", "job_end"]
    assert lines[0]["t"] == 1.25 and lines[0]["sample"] == {"name": "a", "parts": [1, 2]}
    assert lines[1]["t"] is None and lines[0]["ts"].endswith("+00:00")


def test_an_unwritable_folder_is_logged_and_the_call_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.ERROR, logger="ivrkit.livekit"):
        w = TraceWriter(blocker / "traces", "r", "j", start=0.0)
        w.write("key", digit="1")
        w.close()
    assert "runs without a trace" in caplog.text


def test_to_jsonable() -> None:
    assert to_jsonable({"a": (1, frozenset()), 2: Path("/x")}) == {"a": [1, []], "2": "/x"}


def test_the_copier_writes_every_record_the_trace_keeps_once_keys_past_the_cap_included(tmp_path: Path) -> None:
    trace = Trace()
    copier = TraceCopier(TraceWriter(tmp_path, "room", "job", start=0.0), trace)
    presses = MAX_EVENTS + 500
    for i in range(presses):
        trace.record(i * 0.01, "prompt", "m", {"id": i})
        trace.record(i * 0.01, "key", "m", {"digit": "1", "arrived": i * 0.01, "consumed": "m"})
        if i == presses // 2:
            copier.copy()  # the half-second copies happen while records keep coming
    trace.record(presses * 0.01, "call_end", "m", {"ended_by": "caller_hangup"})
    copier.copy()
    copier.copy()  # nothing new: nothing written twice
    copier.writer.close()
    lines = [json.loads(line) for line in copier.writer.path.read_text().splitlines()]
    assert [r["seq"] for r in lines] == [e.seq for e in trace.events]
    assert sum(r["event"] == "key" for r in lines) == presses
    assert [r["event"] for r in lines].count("truncated") == 1
    assert lines[-1]["event"] == "call_end" and lines[-1]["dropped"] == trace.dropped > 0
