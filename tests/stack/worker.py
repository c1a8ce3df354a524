"""The ivrkit worker as an e2e test sees it: the process, its JSON-lines log, and the call
traces it writes (`--trace-dir`, one `<room>--<job>.jsonl` file per call).

Why shared: the worker, SIP call, SIP dial and dial pad modules each start a worker and read the
same two things back; one reader and one trace poller, so a change to the log or trace format is
made once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .process import NsProcess
from .testenv import note_output

Record = dict[str, Any]


def json_object(line: str) -> Record | None:
    """`line` as a JSON object; None when it is not one (a plain log line, a bare number)."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def log_records(text: str) -> list[Record]:
    """A JSON-lines log as records; a line that is not a JSON object becomes {"message": line}."""
    out = []
    for line in text.splitlines():
        record = json_object(line)
        out.append(record if record is not None else {"message": line})
    return out


def log_lines(records: Iterable[Record], skip_loggers: Sequence[str] = ()) -> list[str]:
    """Records as short `LEVEL logger: message` lines (the JSON lines are long), without the
    loggers in `skip_loggers`."""
    return [f"{r.get('level', '')} {r.get('name', '')}: {str(r.get('message', ''))[:300]}"
            for r in records if r.get("name") not in skip_loggers]


def read_trace(path: Path) -> list[Record]:
    """A call trace file's records, in order."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def events(trace: Sequence[Record], kind: str) -> list[Record]:
    """The trace records of one kind (`key`, `state`, `call_end`, ...)."""
    return [r for r in trace if r["event"] == kind]


@dataclass
class Worker:
    """A running worker. `trace_dir` is its `--trace-dir` (None: it writes no traces);
    `trace_timeout` is how long `trace()` waits by default."""

    process: NsProcess
    trace_dir: Path | None = None
    agent_name: str = ""
    trace_timeout: float = 15.0

    def __post_init__(self) -> None:
        if self.trace_dir is not None:
            note_output(self.trace_dir)  # the session-end PIN sweep reads it

    def records(self) -> list[Record]:
        """The worker's log records so far (plain lines become {"message": line})."""
        return log_records(self.process.log_text())

    def tail(self, lines: int = 30, skip_loggers: Sequence[str] = ()) -> str:
        """The last `lines` log records as `LEVEL logger: message` lines."""
        return "\n".join(log_lines(self.records(), skip_loggers)[-lines:])

    def trace(self, room: str, timeout: float | None = None) -> list[Record]:
        """The trace of the call in `room`, once the job wrote its last record (`job_end`)."""
        return self._poll(lambda files: files[:1], f"{room}--*.jsonl", f"room {room}", timeout)

    def call_trace(self, caller: str, number: str | None = None, *, pattern: str = "*.jsonl",
                   timeout: float | None = None) -> list[Record]:
        """The finished trace of the call from `caller` (to `number`, when given), found by its
        `call` record: how a test finds a SIP call, whose room name it does not choose."""

        def match(records: list[Record]) -> bool:
            call = next((r for r in records if r["event"] == "call"), None)
            return call is not None and call["caller_info"]["number"] == caller and (
                number is None or call["caller_info"]["called_number"] == number)

        return self._poll(lambda files: files, pattern, f"the call {caller} -> {number or 'any number'}", timeout,
                          match)

    def job_end(self, room: str, timeout: float = 15.0) -> str:
        """The worker's "job ... (room <room>) ended: <reason>" log line."""
        return self.process.wait_for_log(rf"job \S+ \(room {re.escape(room)}\) ended: [^\"]*", timeout).group(0)

    def _poll(self, candidates: Callable[[list[Path]], list[Path]], pattern: str, what: str,
              timeout: float | None, match: Callable[[list[Record]], bool] = lambda records: True) -> list[Record]:
        if self.trace_dir is None:
            raise AssertionError("this worker was started without --trace-dir")
        deadline = time.monotonic() + (self.trace_timeout if timeout is None else timeout)
        while True:
            files = sorted(self.trace_dir.glob(pattern))
            for path in candidates(files):
                records = read_trace(path)
                if records and records[-1]["event"] == "job_end" and match(records):
                    return records
            if time.monotonic() > deadline:
                raise AssertionError(f"no finished trace for {what} in {self.trace_dir}: {[f.name for f in files]}\n"
                                     f"{self.tail()}")
            time.sleep(0.05)
