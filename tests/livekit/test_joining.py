"""Room joins take turns in a process and are never cancelled half-way (ivrkit.livekit.joining):
a join livekit's native client is working on must end, or the native client panics 15 s later
and the Python SDK stops the whole worker."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ivrkit.errors import ChannelError
from ivrkit.livekit import joining


def test_joins_from_threads_with_their_own_loops_take_turns() -> None:
    """As livekit-agents' thread executor runs jobs: one event loop per thread. A join holds
    its turn until the first has ended, whatever the threads' timing."""
    inside = 0
    most = 0
    count = threading.Lock()
    started = threading.Barrier(4)

    async def connect() -> None:
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
        for _ in range(20):  # hand the GIL and the loop around while "connecting"
            await asyncio.sleep(0)
        with count:
            inside -= 1

    def run() -> None:
        async def main() -> None:
            started.wait()
            await joining.join(connect, limit=30, what="joining room 'r'")
        asyncio.run(main())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 1
    assert not joining._TURN.locked()


async def test_a_join_past_its_limit_goes_on_and_then_leaves_the_room() -> None:
    answered = asyncio.Event()
    left = asyncio.Event()

    async def connect() -> None:
        await answered.wait()

    async def leave() -> None:
        left.set()

    with pytest.raises(ChannelError, match=r"joining room 'r1' was not answered within 0 s \(livekit's native client\)"):
        await joining.join(connect, limit=0, what="joining room 'r1'", on_abandoned=leave)
    assert joining._TURN.locked(), "the abandoned join keeps its turn until it ends"
    answered.set()  # the native client answers late: the join ends and the room is left
    await asyncio.wait_for(left.wait(), 5)
    assert not joining._TURN.locked()


async def test_a_cancelled_join_is_finished_not_cut_and_its_room_left() -> None:
    answered = asyncio.Event()
    connecting = asyncio.Event()
    left = asyncio.Event()

    async def connect() -> None:
        connecting.set()
        await answered.wait()

    async def leave() -> None:
        left.set()

    waiter = asyncio.create_task(joining.join(connect, limit=30, what="joining room 'r1'", on_abandoned=leave))
    await connecting.wait()
    waiter.cancel()  # the caller hung up while the agent joined
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not left.is_set()
    answered.set()
    await asyncio.wait_for(left.wait(), 5)


async def test_a_failed_join_raises_its_error_and_frees_the_turn() -> None:
    async def connect() -> None:
        raise ConnectionError("server refused")

    with pytest.raises(ConnectionError, match="server refused"):
        await joining.join(connect, limit=30, what="joining room 'r1'")
    assert not joining._TURN.locked()


async def test_a_join_waiting_for_its_turn_when_cancelled_takes_no_turn() -> None:
    """A waiter cancelled before its turn came never runs its join and leaves the lock free."""
    release = asyncio.Event()
    ran: list[str] = []

    async def first() -> None:
        await release.wait()

    async def second() -> None:
        ran.append("second")

    holder = asyncio.create_task(joining.join(first, limit=30, what="a"))
    await asyncio.sleep(0)
    assert joining._TURN.locked()
    waiter = asyncio.create_task(joining.join(second, limit=30, what="b"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert not joining._TURN.locked()
    assert ran == []


async def test_a_join_that_finds_no_turn_within_its_limit_starts_nothing() -> None:
    release = asyncio.Event()
    ran: list[str] = []

    async def second() -> None:
        ran.append("second")

    holder = asyncio.create_task(joining.join(release.wait, limit=30, what="a"))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    with pytest.raises(ChannelError, match=r"joining room 'r2' found no turn within 0 s"):
        await joining.join(second, limit=0, what="joining room 'r2'")
    release.set()
    await holder
    assert ran == [] and not joining._TURN.locked()
