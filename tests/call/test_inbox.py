"""The call's one queue: order, a waiting consumer woken, nothing lost on cancellation."""

from __future__ import annotations

import asyncio

import pytest

from ivrkit.call.events import Event
from ivrkit.call.inbox import Inbox
from ivrkit.channel import Hangup, Key


async def test_events_come_out_in_the_order_they_went_in() -> None:
    inbox = Inbox()
    events: list[Event] = [Key("1", 0.0), Key("2", 0.1), Hangup(0.2)]
    for e in events:
        inbox.put(e)
    assert len(inbox) == 3
    assert [await inbox.get() for _ in events] == events
    assert inbox.take() is None and len(inbox) == 0


async def test_a_waiting_consumer_is_woken_by_a_put() -> None:
    inbox = Inbox()
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not getter.done()
    inbox.put(Key("5", 1.0))
    assert await getter == Key("5", 1.0)


async def test_a_cancelled_get_loses_nothing() -> None:
    inbox = Inbox()
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    inbox.put(Key("7", 2.0))  # no waiter left to wake: kept for the next get
    assert inbox.take() == Key("7", 2.0)
