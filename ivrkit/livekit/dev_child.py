"""How a parent process hands the worker's options to a child: one environment variable.

`ivrkit dev` (`reload.supervise`) starts the worker (`python -m ivrkit.livekit.worker`) and the
flow check (`python -m ivrkit.livekit.reload`) as children; `ivrkit start`'s guard
(`guard.guard`) starts the worker. Each child reads the same `WorkerOptions` back. Both ends of
that protocol live here, so the parents and the worker need not import each other.
"""

from __future__ import annotations

import base64
import ctypes
import os
import pickle
import signal
import subprocess
import sys

from ivrkit.livekit.settings import WorkerOptions

__all__ = ["child_environment", "options_from_environment", "start_worker"]

OPTIONS_ENV = "IVRKIT_WORKER_OPTIONS"
_PR_SET_PDEATHSIG = 1


def child_environment(opts: WorkerOptions) -> dict[str, str]:
    """Environment for a child process (a dev-mode or guarded worker) carrying `opts`."""
    return {**os.environ, OPTIONS_ENV: base64.b64encode(pickle.dumps(opts)).decode()}


def options_from_environment() -> WorkerOptions | None:
    """The options a parent passed, or None when this process was not started by one.

    The variable is removed once read, so processes this one starts (livekit-agents' job
    processes) do not take themselves for such children too.
    """
    encoded = os.environ.pop(OPTIONS_ENV, None)
    if not encoded:
        return None
    opts: WorkerOptions = pickle.loads(base64.b64decode(encoded))
    return opts


def start_worker(opts: WorkerOptions) -> subprocess.Popen[bytes]:
    """Start the worker (`python -m ivrkit.livekit.worker`) as a child carrying `opts`.

    In a session of its own, so a Ctrl-C in the terminal reaches only the parent, which passes
    on exactly one signal: livekit-agents takes a second signal as "exit now" (`os._exit`, its
    calls left in silence), and the terminal's SIGINT plus the parent's own would be two. It
    gets SIGTERM when the parent dies (Linux), so it is never orphaned."""
    return subprocess.Popen([sys.executable, "-m", "ivrkit.livekit.worker"], env=child_environment(opts),
                            start_new_session=True, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """Runs in the worker child before exec: it gets SIGTERM if its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: an orphaned worker still drains and exits on its own SIGTERM
