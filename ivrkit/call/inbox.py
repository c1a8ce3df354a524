"""The call's one queue: events in, one consumer out.

Not an `asyncio.Queue`: that carries machinery a call never uses (bounded size, several getters
and putters, `join()`), about 2 KB per call, which is a fifth of what a waiting call holds. A
call has exactly one consumer and never blocks a producer, so a deque and one waiter do.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ivrkit.call.events import Event


class Inbox:
    """FIFO of a call's events with a single awaiting consumer."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, event: Event) -> None:
        self._items.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Event:
        """The oldest event, waiting for one if there is none (one consumer at a time)."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def take(self) -> Event | None:
        """The oldest event without waiting, or None."""
        return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)
