"""How a job learns that its worker is stopping, so a live call ends promptly instead of running on.

Why: when livekit-agents 1.8.9 closes a job (`ivrkit dev` stopped; `ivrkit start` once its
drain is over), the worker sends the job a `ShutdownRequest`. The job's runner (`_JobProc`,
ipc/job_proc_lazy_main.py) only resolves its private shutdown future and then waits up to 15 s
for the entrypoint to return, then cancels it; nothing tells the entrypoint. `add_shutdown_callback`
callbacks run only *after* the entrypoint has returned, so they cannot help. An IVR call never
returns on its own while the caller listens: the call ran on in silence for 15 s, was cancelled
(no hang-up, no trace end saying why) and the worker's exit waited for it.

This module reads that future — the one signal livekit-agents has — from the job's context: the
`on_shutdown` function the runner gave the `JobContext` closes over the runner itself. Read-only:
livekit's own shutdown sequence is unchanged. A request from the worker (not from the job's own
`ctx.shutdown`, nor "room disconnected", which the channel already treats as the caller gone) is
passed on as "the worker stopped". livekit-agents sends the same request, without a reason,
when livekit-server terminates one job (`JobTermination`) while the worker goes on; ivrkit
cannot tell the two apart, and such a call is traced "the worker stopped" too. Pinned to 1.8.9 (pyproject.toml); should a later version move
things, `watch` logs one warning and jobs stop as before (after livekit's 15 s), and
tests/livekit/test_stopping.py fails on the real runner.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["WORKER_STOPPED", "Stopping", "shutdown_future", "watch"]

logger = logging.getLogger("ivrkit.livekit")

#: The reason a call's trace and log give when the worker's shutdown ended it.
WORKER_STOPPED = "the worker stopped"
#: What livekit-agents 1.8.9 calls a `ShutdownRequest` sent without a reason (all of them).
_PARENT_SHUTDOWN = "parent process shutdown"
#: Its reason when the job's room connection dropped: the channel handles that as a hang-up.
_ROOM_DISCONNECTED = "room disconnected"

_warned = False


def shutdown_future(ctx: Any) -> asyncio.Future[Any] | None:
    """The job runner's shutdown future for `ctx` (a livekit-agents `JobContext`), or None when
    it cannot be found (not made by livekit-agents 1.8.9's `_JobProc`, e.g. a test's stand-in)."""
    on_shutdown = getattr(ctx, "_on_shutdown", None)
    if not inspect.isfunction(on_shutdown):
        return None
    runner = inspect.getclosurevars(on_shutdown).nonlocals.get("self")
    future = getattr(runner, "_shutdown_fut", None)
    return future if isinstance(future, asyncio.Future) else None


def watch(ctx: Any, stop: Callable[[str], None]) -> Callable[[], None]:
    """Call `stop(reason)` once when the worker asks this job to end (at once if it has already).
    Returns the function that stops watching (call it when the call is over)."""
    global _warned
    future = shutdown_future(ctx)
    if future is None:
        if not _warned and hasattr(ctx, "_on_shutdown"):
            _warned = True
            logger.warning("cannot follow livekit-agents' job shutdown (not 1.8.9?): a worker that stops "
                           "lets its calls run on until livekit-agents cancels them")
        return lambda: None

    def on_done(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        info = fut.result()
        if getattr(info, "user_initiated", True):
            return  # the job's own ctx.shutdown: the call is over already
        reason = str(getattr(info, "reason", ""))
        if reason == _ROOM_DISCONNECTED:
            return
        stop(WORKER_STOPPED if reason in ("", _PARENT_SHUTDOWN) else f"{WORKER_STOPPED} ({reason})")

    future.add_done_callback(on_done)

    def unwatch() -> None:
        future.remove_done_callback(on_done)

    return unwatch


class Stopping:
    """One job's stop request, followed from the job's start: `requested` is set when the worker
    asks the job to end, and the call, once it runs (`follow(call.stop)`), is stopped — at once
    if the request came while the job was still waiting for its caller."""

    def __init__(self, ctx: Any) -> None:
        self.reason: str | None = None
        self.requested = asyncio.Event()
        self._stop: Callable[[str], None] | None = None
        self._unwatch = watch(ctx, self._on_request)

    def _on_request(self, reason: str) -> None:
        self.reason = reason
        self.requested.set()
        if self._stop is not None:
            self._stop(reason)

    def follow(self, stop: Callable[[str], None]) -> None:
        self._stop = stop
        if self.reason is not None:
            stop(self.reason)

    def close(self) -> None:
        self._stop = None
        self._unwatch()
