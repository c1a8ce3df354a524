"""Call traces as JSON lines: one file per call in `IVRKIT_TRACE_DIR` (`--trace-dir`).

Why: "what did caller X hear and press?" is the first question on any IVR incident, and the
e2e tests ask it too. Each line is one event with the wall-clock time (`ts`, ISO 8601 UTC) and
the call's own monotonic time (`t`, seconds since the call began). Sensitive digits never reach
this file: keys collected into a sensitive variable are masked by the call runtime before they
are traced, prompts are traced by their masked `log_text`.

Files are named `<room>--<job id>.jsonl` and written line by line (flushed), so a trace is
readable while the call runs and survives a worker crash (call records are copied every 0.5 s
by `TraceCopier`, adapter records at once). The file holds what the call's `Trace` keeps: every
key record however long the call, one `truncated` record where the cap began, and the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import re
from pathlib import Path
from typing import IO, Any

from ivrkit.trace import Trace

__all__ = ["TraceCopier", "TraceWriter", "to_jsonable"]

logger = logging.getLogger("ivrkit.livekit")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths, tuples and mappings as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict) or (hasattr(value, "items") and callable(value.items)):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "value") and type(value).__module__ != "builtins":  # enums
        return to_jsonable(value.value)
    return str(value)


class TraceWriter:
    """Appends events to one call's trace file. Never raises: a full disk must not end a call."""

    def __init__(self, directory: Path, room: str, job_id: str, *, start: float) -> None:
        self.path = directory / f"{_UNSAFE.sub('_', room)}--{_UNSAFE.sub('_', job_id)}.jsonl"
        self.start = start
        self._file: IO[str] | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as e:
            logger.error("cannot write call trace %s: %s; the call runs without a trace", self.path, e)

    def write(self, event: str, at: float | None = None, **fields: Any) -> None:
        if self._file is None:
            return
        record = {
            "ts": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "t": None if at is None else round(at - self.start, 4),
            "event": event,
            **{k: to_jsonable(v) for k, v in fields.items()},
        }
        try:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
        except (OSError, TypeError, ValueError) as e:
            logger.error("cannot write call trace %s: %s", self.path, e)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


class TraceCopier:
    """Copies a call's trace records to the file, each once, as the call goes — so a trace is
    readable while the call runs and survives a worker crash up to the last half second. The
    call's `Trace` only ever appends, so a position in its list is enough to copy each once."""

    def __init__(self, writer: TraceWriter, trace: Trace) -> None:
        self.writer = writer
        self.trace = trace
        self.written = 0

    def copy(self) -> None:
        events = self.trace.events
        for e in events[self.written:]:
            record = e.to_dict()
            kind = record.pop("kind", "event")
            t = record.pop("t", None)
            self.writer.write(kind, at=t, **record)
        self.written = len(events)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.copy()
