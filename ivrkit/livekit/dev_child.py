"""How a parent process hands the worker's options to a child: one environment variable.

`ivrkit dev` (`reload.supervise`) starts the worker (`python -m ivrkit.livekit.worker`) and the
flow check (`python -m ivrkit.livekit.reload`) as children; `ivrkit start`'s guard
(`guard.guard`) starts the worker. Each child reads the same `WorkerOptions` back. Both ends of
that protocol live here, so the parents and the worker need not import each other.
"""

from __future__ import annotations

import base64
import os
import pickle

from ivrkit.livekit.settings import WorkerOptions

__all__ = ["child_environment", "options_from_environment"]

OPTIONS_ENV = "IVRKIT_WORKER_OPTIONS"


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
