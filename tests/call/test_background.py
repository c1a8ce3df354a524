"""The call's background task alone: outcomes as events, stale ones recognised, no task left."""

from __future__ import annotations

import asyncio

from ivrkit.call.background import Background
from ivrkit.call.events import Event, TaskDone


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_outcome_is_posted_and_handed_to_its_continuation() -> None:
    posted: list[Event] = []
    bg = Background(posted.append)

    async def job() -> int:
        return 42

    seen: list[int] = []
    bg.start(job, seen.append)
    await settle()
    assert posted == [TaskDone(1, 42, None)]
    then = bg.finish(posted[0])  # type: ignore[arg-type]
    assert then is not None
    then(42)  # the call hands the continuation the result (an error takes its error path)
    assert seen == [42]
    assert bg.finish(posted[0]) is None  # type: ignore[arg-type]  # handed over once


async def test_an_error_is_an_outcome_too() -> None:
    posted: list[Event] = []
    bg = Background(posted.append)

    async def job() -> None:
        raise ValueError("no")

    bg.start(job, lambda d: None)
    await settle()
    done = posted[0]
    assert isinstance(done, TaskDone) and isinstance(done.error, ValueError) and done.result is None


async def test_a_cancelled_task_posts_nothing_and_a_stale_outcome_is_ignored() -> None:
    posted: list[Event] = []
    bg = Background(posted.append)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "late"

    async def quick() -> str:
        return "now"

    bg.start(slow, lambda d: None)
    await settle()
    task = bg.cancel()
    assert task is not None
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and posted == []
    bg.start(quick, lambda d: None)
    await settle()
    assert bg.finish(TaskDone(1, "late", None)) is None  # generation 1 was cancelled
    assert bg.finish(posted[0]) is not None  # type: ignore[arg-type]


async def test_a_sync_hook_thread_is_reported_until_it_is_done() -> None:
    bg = Background(lambda e: None)
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    bg.on_thread(fut)
    assert bg.thread is fut
    fut.set_result(None)
    assert bg.thread is None
