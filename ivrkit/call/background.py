"""The one background task a call may have at a time: a hook or a channel action.

The call never awaits user code or a channel action in its consumer (a key or a hang-up must be
handled the moment it is read), so such work runs as a task whose outcome comes back as a
`TaskDone` event, in queue order. Each start bumps a generation: the outcome of a task that was
cancelled (the caller moved on or hung up) is recognised as stale and ignored. What to do with
the result is given at start as `then` (an error takes the call's error path), so the call's
decision stays visible where the task is started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ivrkit.call.events import Event, TaskDone

T = TypeVar("T")
#: What the call does with a task's result (its error takes the call's error path instead).
Then = Callable[[Any], T]


class Background:
    """Runs, cancels and reports the call's background task (see the module docstring)."""

    __slots__ = ("_post", "_task", "_gen", "_then", "_thread")

    def __init__(self, post: Callable[[Event], None]) -> None:
        self._post = post
        self._task: asyncio.Task[None] | None = None
        self._gen = 0
        self._then: Then[Any] | None = None
        self._thread: asyncio.Future[Any] | None = None  # a sync hook's thread, for test idling

    def start(self, job: Callable[[], Awaitable[Any]], then: Then[Any]) -> None:
        """Run `job()`; its outcome is posted as `TaskDone`, and `finish` hands back `then`."""
        self._gen += 1
        gen = self._gen
        self._then = then
        post = self._post

        async def runner() -> None:
            try:
                result = await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                post(TaskDone(gen, None, exc))
            else:
                post(TaskDone(gen, result, None))

        self._task = asyncio.get_running_loop().create_task(runner())

    def cancel(self) -> asyncio.Task[None] | None:
        """Cancel the current task and ignore its outcome; returns the last task started (the end
        of a call awaits it, so no task outlives its call)."""
        self._gen += 1
        self._then = None
        self._thread = None
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        return task

    def finish(self, done: TaskDone) -> Then[Any] | None:
        """The continuation for `done`, or None when `done` is stale."""
        if done.gen != self._gen or self._then is None:
            return None
        then, self._then = self._then, None
        self._task = None
        self._thread = None
        return then

    @property
    def running(self) -> bool:
        """A task was started and its outcome not handed back yet (a hold prompt plays on)."""
        return self._then is not None

    def on_thread(self, fut: asyncio.Future[Any]) -> None:
        self._thread = fut

    @property
    def thread(self) -> asyncio.Future[Any] | None:
        """The running sync hook's thread future, if any (harnesses wait for it to settle)."""
        return self._thread if self._thread is not None and not self._thread.done() else None
