"""A job learns that its worker is stopping: on livekit-agents 1.8.9's own job runner (`_JobProc`,
the code both executors run), fed the `ShutdownRequest` a stopping worker sends, the entrypoint
is told at once, with the reason; the job's own `ctx.shutdown` is not taken for one."""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import JobExecutorType, JobProcess
from livekit.agents.ipc import proto
from livekit.agents.ipc.job_proc_lazy_main import _JobProc
from livekit.agents.job import JobAcceptArguments, RunningJobInfo
from livekit.agents.utils import aio
from livekit.protocol import agent, models

from ivrkit.livekit.stopping import WORKER_STOPPED, Stopping, shutdown_future, watch


class Client:
    """Where the runner sends its answers (the worker's end of the IPC channel)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, msg: Any) -> None:
        self.sent.append(type(msg).__name__)


def _start(entry: Any) -> tuple[_JobProc, aio.Chan[Any], Client]:
    runner = _JobProc(lambda proc: None, entry, None, session_end_timeout=1.0, executor_type=JobExecutorType.THREAD)
    client = Client()
    runner._client = client  # type: ignore[assignment]
    runner._job_proc = JobProcess(executor_type=JobExecutorType.THREAD, user_arguments=None, http_proxy=None)
    runner._inf_client = None  # type: ignore[assignment]
    chan: aio.Chan[Any] = aio.Chan()
    job = agent.Job(id="mock-job-1", room=models.Room(sid="RM_1", name="r1"), type=agent.JobType.JT_ROOM)
    info = RunningJobInfo(worker_id="w", accept_arguments=JobAcceptArguments(identity="a", name="", metadata=""),
                          job=job, url="ws://127.0.0.1:1", token="", fake_job=True)
    start = proto.StartJobRequest()
    start.running_job = info
    chan.send_nowait(start)
    return runner, chan, client


async def test_the_workers_shutdown_request_reaches_the_entrypoint_at_once() -> None:
    told: list[str] = []
    stopped = asyncio.Event()
    found: list[bool] = []

    async def entry(ctx: Any) -> None:
        found.append(shutdown_future(ctx) is runner._shutdown_fut)
        stopping = Stopping(ctx)
        stopping.follow(lambda reason: (told.append(reason), stopped.set()))
        await stopped.wait()  # a call runs until it is stopped
        stopping.close()
        ctx.shutdown("call ended")

    runner, chan, client = _start(entry)
    main = asyncio.create_task(runner.entrypoint(chan))
    while not found:
        await asyncio.sleep(0)
    assert found == [True]
    chan.send_nowait(proto.ShutdownRequest())  # what a stopping worker sends (it gives no reason)
    await asyncio.wait_for(main, 5.0)  # the runner ends as soon as the entrypoint returns
    assert told == [WORKER_STOPPED]
    assert client.sent[:1] == ["ShutdownRequestAck"] and "Exiting" in client.sent


async def test_the_jobs_own_shutdown_is_not_a_stop() -> None:
    told: list[str] = []

    async def entry(ctx: Any) -> None:
        watch(ctx, told.append)
        ctx.shutdown("flow 'x' ended: hangup")

    runner, chan, client = _start(entry)
    main = asyncio.create_task(runner.entrypoint(chan))
    await asyncio.wait_for(main, 5.0)
    assert told == [] and "Exiting" in client.sent


def test_a_context_not_made_by_the_runner_has_no_future() -> None:
    assert shutdown_future(object()) is None
    assert watch(object(), lambda reason: None)() is None  # nothing to watch, nothing to undo
