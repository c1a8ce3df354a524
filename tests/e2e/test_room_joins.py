"""Room joins from many threads of one process, against the real livekit-server.

livekit's native client panicked when job threads joined rooms at the same moment ("timed out
waiting for ReadyForRoomEventRequest after ConnectCallback"), and the Python SDK answers a panic
by stopping its whole process: the worker drained, its call was lost (seen in CI, in
tests/e2e/test_scale_out.py). ivrkit's joins take turns (ivrkit.livekit.joining); here six
threads, each with its own event loop as in livekit-agents' thread executor, join at once
through it, three rounds. `python bench/joins.py` runs the same beside straight joins.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from stack.stack import Stack

REPO = Path(__file__).resolve().parents[2]
JOINERS = REPO / "tests" / "stack" / "joiners.py"
THREADS = 6


def joined_in_turns(stack: Stack, round_: int) -> dict[str, dict[str, object]]:
    stamp = time.monotonic_ns() % 10**9
    tokens = [stack.token(f"agent-{i}", f"joins-{stamp}-{i}") for i in range(THREADS)]
    proc = stack.start([sys.executable, str(JOINERS), "--url", stack.url, "--stay", "0.5"],
                       name=f"joiners-{round_}", env={**stack.env(), "LIVEKIT_TOKENS": json.dumps(tokens),
                                                       "PYTHONPATH": str(REPO)}, cwd=REPO)
    deadline = time.monotonic() + 60
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = proc.log_text()
    assert "FFI Panic" not in log, log[-2000:]
    assert proc.returncode == 0, log[-2000:]
    lines = [line for line in log.splitlines() if line.startswith('{"joined"')]
    assert lines, log[-2000:]
    result: dict[str, dict[str, object]] = json.loads(lines[-1])
    return result


def test_six_threads_joining_at_once_take_turns_and_all_join(stack: Stack) -> None:
    for round_ in range(3):
        result = joined_in_turns(stack, round_)
        assert result["failed"] == {}
        assert sorted(result["joined"]) == [str(i) for i in range(THREADS)]
        waits = sorted(float(str(s)) for s in result["joined"].values())
        print(f"round {round_}: joined after {waits} s")
