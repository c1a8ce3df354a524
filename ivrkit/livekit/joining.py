"""Room joins, one at a time per process, never cancelled half-way.

livekit's native client (livekit 1.1.21) answers a join with a ConnectCallback and then waits
15 s for the SDK's ReadyForRoomEventRequest; past that it reports an "FFI Panic", and the
Python SDK answers every panic by sending SIGTERM to its own process, which drains the whole
worker. Two things led there:

1. Joins at the same moment from several threads (livekit-agents' thread executor: a job per
   thread, each its own event loop). Six threads joining at once panicked in 4 of 4 rounds
   against the e2e livekit-server, on an idle machine; the same six taking turns, 0 of 4, each
   join 70-100 ms (tests/e2e/test_room_joins.py repeats both). So joins in a process take turns,
   behind a process-wide lock: the sixth of a burst waits about half a second.
2. A join cancelled while the native client works on it (our own time limit, or the caller
   hanging up first) never sends the ready request: the same panic 15 s later
   (livekit/python-sdks#784). So a join, once started, runs in a task of its own that a time
   limit or a cancellation does not stop: it finishes, and `on_abandoned` then leaves the room.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from ivrkit.errors import ChannelError

__all__ = ["join"]

logger = logging.getLogger("ivrkit.livekit")

_TURN = threading.Lock()  # a threading lock: jobs of the thread executor each run their own loop
#: How often a join waiting for its turn looks again. Polling, not a blocking acquire on a
#: thread: a waiter that is cancelled then holds nothing, so the lock cannot be left taken.
_POLL = 0.005


async def _holding_the_turn(connect: Callable[[], Awaitable[None]]) -> None:
    try:
        await connect()
    finally:
        _TURN.release()


async def join(connect: Callable[[], Awaitable[None]], *, limit: float, what: str,
               on_abandoned: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run `connect()` in its turn, waiting at most `limit` seconds (its turn included).

    Cancelled or out of time while waiting for its turn, nothing was started. Once started,
    the join goes on in its own task past the limit or a cancellation; when it has ended,
    `on_abandoned()` (if given) leaves the room it joined. Raises ChannelError naming `what`
    when the limit passes; a join that fails raises its own error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not _TURN.acquire(blocking=False):
        if loop.time() >= deadline:
            raise ChannelError(f"{what} found no turn within {limit:g} s: another join of this process "
                               "was not answered (livekit's native client)")
        await asyncio.sleep(_POLL)
    task = asyncio.ensure_future(_holding_the_turn(connect))
    try:
        await asyncio.wait_for(asyncio.shield(task), max(0.0, deadline - loop.time()))
    except TimeoutError:
        _abandon(task, on_abandoned)
        raise ChannelError(f"{what} was not answered within {limit:g} s (livekit's native client)") from None
    except asyncio.CancelledError:
        _abandon(task, on_abandoned)
        raise


_abandoned: set[asyncio.Future[None]] = set()  # referenced until done, or the loop may drop them


def _abandon(task: asyncio.Future[None], on_abandoned: Callable[[], Awaitable[None]] | None) -> None:
    async def finish() -> None:
        try:
            await task
        except Exception as e:
            logger.info("an abandoned room join ended in %s: %s", type(e).__name__, e)
            return
        if on_abandoned is not None:
            await on_abandoned()

    follow = asyncio.ensure_future(finish())
    _abandoned.add(follow)
    follow.add_done_callback(_abandoned.discard)
