"""What every real-stack test module asks of the harness: skip or fail when the stack is
missing, a log folder that outlives the run, and a folder of flows whose prompts are tones.

Why shared: each e2e module (worker, SIP calls, SIP dial, SIP stack, dial pad) needs the same
three things, and CI's rule — with IVRKIT_STACK_REQUIRED=1 a missing stack fails, never skips —
must hold in every one of them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NoReturn

from ivrkit.voice.audio import tone, write_wav


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`; fail instead under IVRKIT_STACK_REQUIRED=1 (CI), where a broken
    install must not pass as a row of skips."""
    import pytest

    if os.environ.get("IVRKIT_STACK_REQUIRED") == "1":
        pytest.fail(f"IVRKIT_STACK_REQUIRED=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def log_dir(suffix: str = "", keep: int = 10) -> Path:
    """A fresh folder under IVRKIT_STACK_LOGS (default /tmp/ivrkit-stack-logs), named by time,
    pid and `suffix`; keeps the last `keep` (and any of the last hour). Not pytest's tmp_path:
    that keeps only 3 runs, which parallel runs rotate away."""
    base = Path(os.environ.get("IVRKIT_STACK_LOGS", "/tmp/ivrkit-stack-logs"))
    base.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in old[: max(0, len(old) - keep + 1)]:
        if time.time() - stale.stat().st_mtime > 3600:  # never a session that may still run
            shutil.rmtree(stale, ignore_errors=True)
    path = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{'-' + suffix if suffix else ''}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    note_output(path)
    return path


def tone_flows(flows: Iterable[Path], dest: Path, tones: Mapping[str, tuple[float, float]], rate: int = 48000) -> Path:
    """Copy `flows` (flow files, and any hook modules they use) into `dest`, with
    `tones/<name>.wav` for each (frequency Hz, seconds) of `tones`: prompts a test caller can
    tell apart by ear."""
    dest.mkdir(parents=True, exist_ok=True)
    for flow in flows:
        shutil.copy(flow, dest / flow.name)
    (dest / "tones").mkdir()
    for name, (hz, seconds) in tones.items():
        write_wav(dest / "tones" / f"{name}.wav", tone(hz, seconds, sample_rate=rate, amplitude=0.5))
    return dest


#: Trace fields that hold times and ids: random digits there could spell a PIN by chance.
TIME_AND_IDS = frozenset({"ts", "t", "call_t", "at", "arrived", "seq", "room", "caller", "call_id", "caller_info"})
#: A number with a fraction written in text ("cut 14.321 ms", "took 0.4321 s"): a measurement.
UNROUNDED = re.compile(r"\d+\.\d+")
#: What a leak check sees in place of a measurement.
MEASURED = "<measured>"
#: A number as a value inside JSON written into a plain log line (livekit-sip's "call statistics":
#: `"input_bytes":5678`): a counter, left out as the JSON-lines path leaves out all non-strings.
JSON_NUMBER = re.compile(r'("[^"\\]*"\s*:\s*)-?\d+(?:\.\d+)?(?=\s*[,}\]])')


def without_measurements(value: object) -> object:
    """`value` (JSON data) with every unrounded float replaced by `MEASURED`, also inside text,
    and the fields in `TIME_AND_IDS` left out: a measurement (`barge_in.cut_ms`, a duration in a
    log message) can spell a PIN by chance, and a leak check must never fail by chance. Whole
    numbers stay: a PIN that leaked as a number (a hook's result) is still found."""
    if isinstance(value, Mapping):
        return {k: without_measurements(v) for k, v in value.items() if k not in TIME_AND_IDS}
    if isinstance(value, (list, tuple)):
        return [without_measurements(v) for v in value]
    if isinstance(value, float):
        return value if value.is_integer() else MEASURED
    if isinstance(value, str):
        return UNROUNDED.sub(MEASURED, value)
    return value


def trace_text(trace: Iterable[Mapping[str, object]]) -> str:
    """A call trace as JSON without its times, ids and measurements: what a leak check searches
    for a PIN."""
    import json

    return json.dumps([without_measurements(record) for record in trace])


def log_text(text: str) -> str:
    """A worker's JSON-lines log without times, ids, numbers and measurements (a timestamp's
    microseconds can spell a PIN): each record's string fields, other lines as they are but for
    their measurements."""
    import json

    from .worker import json_object

    out = []
    for line in text.splitlines():
        record = json_object(line)
        if record is None:
            out.append(UNROUNDED.sub(MEASURED, JSON_NUMBER.sub(rf"\g<1>{MEASURED}", line)))
            continue
        out.append(json.dumps({k: without_measurements(v) for k, v in record.items()
                               if isinstance(v, str) and k not in TIME_AND_IDS and k not in ("timestamp", "job_id")}))
    return "\n".join(out)


#: Every PIN the e2e suite types into a sensitive collect, in one place: the session-end sweep
#: (tests/e2e/conftest.py) looks for each in every log and trace the session wrote. Typed by
#: test_worker.py (4321, 5678, and 1111 and 3333 by the concurrent callers), test_sip_calls.py
#: (4321, 9876), test_dialpad.py (4321) and test_hangup_everywhere.py (4321, 9876). Only PINs of
#: four digits or more: a shorter one is an ordinary number (test_worker.py's too-short "12").
TYPED_PINS = frozenset({"4321", "5678", "1111", "3333", "9876"})
#: A PIN as a whole token: not part of a longer run of letters, digits, `_` or `-` (an id, a
#: room name like `test-30246-4321`, a longer number).
_TOKEN = re.compile(r"(?<![\w-])(\d{4,})(?![\w-])")
#: Numbers that are process ids or ports, written inside messages ("worker pid=4321 started",
#: "HTTP server listening on :43213", "127.0.0.1:4321"): the system picks them, not a caller.
_ID_NUMBER = re.compile(r"\b(?:pid|ppid|port)\b[=: ]\s*\d+|(?:(?<=\s)|(?<=\d)|(?<=>)|(?<=localhost)|(?<=\])):\d{1,5}\b", re.I)
#: Directories the session's processes wrote logs or traces to (`note_output`).
_OUTPUT_DIRS: set[Path] = set()


def note_output(directory: Path) -> None:
    """Remember a folder of logs or traces for the session-end PIN sweep (`pins_in_output`)."""
    _OUTPUT_DIRS.add(directory.resolve())


def output_dirs() -> list[Path]:
    """The folders noted so far, outermost first, none inside another."""
    out: list[Path] = []
    for d in sorted(_OUTPUT_DIRS, key=lambda p: len(p.parts)):
        if not any(parent in out for parent in d.parents):
            out.append(d)
    return out


def pins_in(text: str, pins: Iterable[str] = TYPED_PINS) -> list[str]:
    """The `pins` that occur in `text` (already through `log_text`/`trace_text`) as whole tokens,
    outside process ids and ports."""
    wanted = set(pins)
    return sorted({m.group(1) for m in _TOKEN.finditer(_ID_NUMBER.sub("", text)) if m.group(1) in wanted})


def pins_in_file(path: Path, pins: Iterable[str] = TYPED_PINS) -> list[tuple[int, str]]:
    """(line number, PIN) for each line of a log (`*.log`) or trace (`*.jsonl`) holding a PIN,
    with the same filtering as the per-test checks: times, ids and measurements left out."""
    from .worker import json_object

    hits = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        record = json_object(line) if path.suffix == ".jsonl" else None
        text = trace_text([record]) if record is not None else log_text(line)
        hits.extend((n, pin) for pin in pins_in(text, pins))
    return hits


def pins_in_output(dirs: Iterable[Path], pins: Iterable[str] = TYPED_PINS) -> list[str]:
    """`file:line: PIN` for every PIN found in every `*.log` and `*.jsonl` under `dirs`."""
    found = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(p for p in d.rglob("*") if p.suffix in (".log", ".jsonl") and p.is_file()):
            found.extend(f"{path}:{n}: {pin}" for n, pin in pins_in_file(path, pins))
    return found
