"""The public API: `ivrkit.__all__` is complete, sorted, and importing it pulls in no adapter."""

from __future__ import annotations

import subprocess
import sys

import ivrkit


def test_all_is_sorted_and_complete() -> None:
    assert ivrkit.__all__ == sorted(ivrkit.__all__)
    public = {name for name in vars(ivrkit) if not name.startswith("_") and name != "annotations"}
    modules = {name for name, value in vars(ivrkit).items() if type(value) is type(ivrkit)}
    assert public - modules <= set(ivrkit.__all__)
    for name in ivrkit.__all__:
        assert hasattr(ivrkit, name), name


def test_importing_the_engine_never_imports_livekit() -> None:
    code = "import sys, ivrkit; bad = sorted(m for m in sys.modules if m.split('.')[0] == 'livekit' or m.startswith('ivrkit.livekit') or m == 'ivrkit.console'); print(bad); sys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
