"""Which calls this worker takes, decided exactly at dispatch — also in bursts.

Why not livekit-agents' own rule: it compares a load figure, refreshed on a thread, plus an
*estimate* for jobs accepted but not yet running (for a worker with no call yet: the load
threshold divided by the number of idle processes), so a burst of calls could take one more
than `--max-calls`, or fewer. An IVR call is cheap and even, so the count is the capacity:

- a call is **served** while fewer than `max_calls` calls are served or accepted;
- past that, up to `busy_calls` more are **busy**: answered with the busy flow (by default
  "All our lines are busy. Please call again later." and hang up), so the caller hears why
  instead of waiting in silence — LiveKit does not offer a call that no worker accepted again;
- past that, the worker **refuses** it, and LiveKit offers it to another worker.

The load this worker reports is what makes LiveKit offer it calls at all: livekit-server
(v1.13.5, `AgentHandler.JobRequestAffinity`) sends a job request only to workers whose load is
below its target load, 0.7 by default (`agents.target_load`). So the worker reports
`SERVER_TARGET_LOAD x taken / (max_calls + busy_calls)`: it is offered calls until every served
and busy place is taken. (Reporting served / max_calls, as before, made the server stop offering
calls at 70 % of `--max-calls`: with `--max-calls 10`, the 8th caller and later never got an
agent.)

Counting: jobs running (`server.active_jobs`, each tagged with its verdict in its agent
participant's attributes) plus jobs accepted whose assignment has not arrived yet (forgotten
when they start running, or after `ASSIGN_GRACE` seconds if they never do). The request
callback runs on the worker's event loop, so a check and its count happen at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ADMISSION", "Admission", "Verdict"]

#: Agent participant attribute carrying the verdict into the job (thread or process executor).
ADMISSION = "ivrkit.admission"
#: An accepted job not running after this long is forgotten (livekit-agents gives up at 7.5 s).
ASSIGN_GRACE = 15.0
#: livekit-server offers a worker a job only while the worker's load is below this (its
#: `agents.target_load`, default 0.7 in v1.13.5).
SERVER_TARGET_LOAD = 0.7

Verdict = Literal["serve", "busy", "refuse"]


@dataclass
class Admission:
    """The `on_request` callback of the worker's `rtc_session` (see the module docstring)."""

    max_calls: int
    busy_calls: int
    clock: Callable[[], float] = time.monotonic
    server: Any = None  # the AgentServer, bound once built (`active_jobs`)
    _pending: dict[str, tuple[Verdict, float]] = field(default_factory=dict)

    def decide(self, job_id: str, running: Iterable[tuple[str, Verdict]]) -> Verdict:
        """The verdict for `job_id`, given the jobs running (id, verdict); records it."""
        now = self.clock()
        counts: dict[str, int] = {"serve": 0, "busy": 0}
        ids = set()
        for rid, running_as in running:
            ids.add(rid)
            if running_as in counts:
                counts[running_as] += 1
        for pid, (accepted_as, at) in list(self._pending.items()):
            if pid in ids or now - at > ASSIGN_GRACE:
                del self._pending[pid]
            else:
                counts[accepted_as] += 1
        verdict: Verdict
        if counts["serve"] < self.max_calls:
            verdict = "serve"
        elif counts["busy"] < self.busy_calls:
            verdict = "busy"
        else:
            return "refuse"
        self._pending[job_id] = (verdict, now)
        return verdict

    def load(self, server: Any = None) -> float:
        """The load to report: reaches the server's target load when every place is taken.

        livekit-agents calls this on an executor thread while `decide` changes the pending jobs
        on the event loop: it reads a copy (taken in one step under the GIL), never the dict."""
        running = {rid for rid, v in self._running() if v in ("serve", "busy")}
        pending = tuple(self._pending)
        taken = len(running) + sum(1 for pid in pending if pid not in running)
        return SERVER_TARGET_LOAD * min(taken / (self.max_calls + self.busy_calls), 1.0)

    def _running(self) -> list[tuple[str, Verdict]]:
        jobs = self.server.active_jobs if self.server is not None else []
        return [(j.job.id, (j.accept_arguments.attributes or {}).get(ADMISSION, "serve")) for j in jobs]

    async def __call__(self, request: Any) -> None:
        verdict = self.decide(request.id, self._running())
        if verdict == "refuse":
            await request.reject(terminate=False)  # LiveKit offers it to another worker
        else:
            await request.accept(attributes={ADMISSION: verdict})
