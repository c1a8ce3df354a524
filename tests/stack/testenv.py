"""What every real-stack test module asks of the harness: skip or fail when the stack is
missing, a log folder that outlives the run, and a folder of flows whose prompts are tones.

Why shared: each e2e module (worker, SIP calls, SIP dial, SIP stack, dial pad) needs the same
three things, and CI's rule — with IVRKIT_STACK_REQUIRED=1 a missing stack fails, never skips —
must hold in every one of them.
"""

from __future__ import annotations

import os
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


def trace_text(trace: Iterable[Mapping[str, object]]) -> str:
    """A call trace as JSON without its times and ids: what a leak check searches for a PIN."""
    import json

    return json.dumps([{k: v for k, v in record.items() if k not in TIME_AND_IDS} for record in trace])


def log_text(text: str) -> str:
    """A worker's JSON-lines log without times, ids and numbers (a timestamp's microseconds
    can spell a PIN): each record's string fields, other lines as they are."""
    import json

    from .worker import json_object

    out = []
    for line in text.splitlines():
        record = json_object(line)
        if record is None:
            out.append(line)
            continue
        out.append(json.dumps({k: v for k, v in record.items()
                               if isinstance(v, str) and k not in TIME_AND_IDS and k not in ("timestamp", "job_id")}))
    return "\n".join(out)
