"""The benchmarks' smoke mode: every bench/ script runs at tiny sizes and prints its table.

Why in the test suite: benchmark scripts that nobody runs rot silently when the engine's API
moves. This only checks that each script runs to the end and prints what it promises (the
machine header, a table and a JSON line with results) — never a timing: figures from a smoke run
mean nothing, and perf claims live only in bench/README.md.

The real-server rows (5, 6, 10) need root, network namespaces and the built livekit-server; without
them they skip with the reason (or fail under IVRKIT_STACK_REQUIRED=1, like the e2e tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(Path(__file__).resolve().parent))

# script, needs the real stack, subprocess time limit (s)
SCRIPTS = [
    ("keypress.py", False, 120),
    ("load.py", False, 120),
    ("memory.py", False, 180),
    ("completion.py", False, 120),
    ("report.py", False, 120),
    ("amd.py", False, 120),
    ("inband.py", False, 120),
    ("speech.py", False, 180),
    ("server_latency.py", True, 300),
    ("concurrency.py", True, 120),
    ("soak.py", True, 300),
    ("inband_cost.py", True, 300),
    ("joins.py", True, 120),
    ("prompt_cpu.py", True, 200),
]


def _stack_missing() -> str | None:
    from stack.stack import missing_prerequisites  # tests/stack, the real-server harness

    return missing_prerequisites()


@pytest.mark.parametrize(("script", "needs_stack", "limit"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_bench_script_smoke(script: str, needs_stack: bool, limit: int) -> None:
    if needs_stack:
        reason = _stack_missing()
        if reason:
            if os.environ.get("IVRKIT_STACK_REQUIRED") == "1":
                pytest.fail(f"IVRKIT_STACK_REQUIRED=1 but {reason}", pytrace=False)
            pytest.skip(f"bench/{script} needs the real stack: {reason}")
    env = {**os.environ, "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=limit, check=False)
    output = f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"bench/{script} --smoke exited {proc.returncode}\n{output}"
    lines = proc.stdout.splitlines()
    assert any(line.startswith("machine: ") for line in lines), f"no machine header\n{output}"
    assert any(line.startswith("python: ") and "ivrkit commit: " in line for line in lines), output
    assert any(line.startswith("|--") or line.startswith("|-") for line in lines), f"no table printed\n{output}"
    json_lines = [line for line in lines if line.startswith("JSON ")]
    assert len(json_lines) == 1, f"expected one JSON line\n{output}"
    data = json.loads(json_lines[0][5:])
    assert data["bench"] == script.removesuffix(".py")
    assert data["results"], f"no result rows in the JSON\n{output}"
    assert data["machine"]["cores"] >= 1 and data["machine"]["python"]


def test_keypress_metrics_variant_smoke() -> None:
    """`bench/keypress.py --metrics` (the Prometheus series' cost per key, bench/README.md row 1b)."""
    env = {**os.environ, "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / "keypress.py"), "--metrics", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    json_lines = [line for line in proc.stdout.splitlines() if line.startswith("JSON ")]
    assert len(json_lines) == 1, proc.stdout[-4000:]
    data = json.loads(json_lines[0][5:])
    assert data["bench"] == "keypress_metrics"
    assert [r["keys"] for r in data["results"]] == ["all keys", "menu key", "PIN digit", "PIN 4th digit (completes)"]
    assert all(r["with_median_us"] > 0 and r["without_median_us"] > 0 for r in data["results"])
