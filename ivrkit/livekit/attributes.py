"""Where the call is, shown to the room as the agent's participant attributes.

Why: a web dial pad, a supervisor's dashboard or a test client can then see the call's state and
the prompt it is hearing without reading the worker's logs. `ivrkit.state` is the state the
call is in; `ivrkit.prompt` the (masked) text of the prompt last started — the same `log_text`
logs carry, so a sensitive value never reaches the room; `ivrkit.sensitive` is "true" while the
state is a sensitive collect (a PIN entry), always published together with `ivrkit.state`, so a
client that shows the keys it sends (the dial pad) can mask them exactly then. `ivrkit.flow`
names the flow (the dial pad fetches its picture by that name) and `ivrkit.edge` is the id of
the graph edge the last move took (`ivrkit.graph`: `main:key:1`, `pin:collected`,
`welcome:goto:2`; empty when no edge stands for the move), so the picture marks it. An edge id
holds state names, kinds and the flow's own menu keys or arm numbers — never what a caller
typed into a collect. `ivrkit.listening` says what the call listens for while a state takes
speech (`listening_attributes`: the option words, "4 digits"), empty when it takes keys only, so
the dial pad can tell its user when to speak.

Publishing is a round trip to the server; the call loop never waits for it. Updates made while
one is in flight coalesce (latest value wins) and go out with the next request, from one task
at a time, which `aclose()` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection

from ivrkit.channel import Listen
from ivrkit.coverage.taken import move_edge
from ivrkit.flow.model import Flow
from ivrkit.hooks import Hooks
from ivrkit.trace import TraceEvent

__all__ = ["EDGE_ATTRIBUTE", "FLOW_ATTRIBUTE", "LISTENING_ATTRIBUTE", "PROMPT_ATTRIBUTE", "SENSITIVE_ATTRIBUTE",
           "STATE_ATTRIBUTE", "AttributePublisher", "listening_attributes", "progress_hooks", "sensitive_states",
           "state_attributes"]

STATE_ATTRIBUTE = "ivrkit.state"
PROMPT_ATTRIBUTE = "ivrkit.prompt"
SENSITIVE_ATTRIBUTE = "ivrkit.sensitive"
FLOW_ATTRIBUTE = "ivrkit.flow"
EDGE_ATTRIBUTE = "ivrkit.edge"
LISTENING_ATTRIBUTE = "ivrkit.listening"
#: One publish waits at most this long for the server.
PUBLISH_LIMIT = 2.0
#: A failed or slow publish keeps its values pending (under any newer ones) and is tried again
#: this many seconds later, then twice and three times that, up to `RETRIES` times in a row;
#: past that they go out with the next update. Dropping them lost values published once —
#: `ivrkit.flow` at the start of a call — for good (a dial pad then never drew the flow: CI,
#: Dec 2026, one publish timed out on a busy box).
RETRY_AFTER = 1.0
RETRIES = 3


def sensitive_states(flow: Flow) -> frozenset[str]:
    """The states whose keys the call masks: its sensitive collects."""
    return frozenset(name for name, s in flow.states.items() if s.collect is not None and s.collect.sensitive)


def state_attributes(state: str, sensitive: Collection[str]) -> dict[str, str]:
    """`ivrkit.state` with its `ivrkit.sensitive`, to be published in one update."""
    return {STATE_ATTRIBUTE: state, SENSITIVE_ATTRIBUTE: "true" if state in sensitive else "false"}


def listening_attributes(request: Listen | None) -> dict[str, str]:
    """`ivrkit.listening`: what may be said now — "billing, bills, agent", "4 digits",
    "yes, no; 1-20 digits" — or "" when the call is not listening. Only the flow's own words
    and digit counts: never anything the caller said."""
    if request is None:
        return {LISTENING_ATTRIBUTE: ""}
    parts = [", ".join(request.phrases)] if request.phrases else []
    if request.digits:
        low, high = request.min_digits, request.max_digits
        parts.append(f"{low} digit{'s' if low != 1 else ''}" if low == high else f"{low}-{high} digits")
    return {LISTENING_ATTRIBUTE: "; ".join(parts) or "speech"}


class AttributePublisher:
    """Latest-value-wins publisher over `rtc.LocalParticipant.set_attributes`."""

    def __init__(
        self,
        publish: Callable[[dict[str, str]], Awaitable[None]],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self._publish = publish
        self._log = log
        self._retry_after = retry_after
        self._pending: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def update(self, attributes: dict[str, str]) -> None:
        if self._closed:
            return
        self._pending.update(attributes)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush(), name="ivrkit-attributes")

    async def _flush(self) -> None:
        failures = 0
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                await asyncio.wait_for(self._publish(batch), PUBLISH_LIMIT)
                failures = 0
            except Exception as e:  # a dashboard's view must never break the call
                failures += 1
                self._pending = {**batch, **self._pending}
                if failures > RETRIES:
                    self._log.warning("publishing participant attributes %s failed %d times in a row (%r); they go "
                                      "out with the next update", sorted(self._pending), failures, e)
                    return
                self._log.debug("publishing participant attributes %s failed (%r); trying again in %g s",
                                sorted(batch), e, self._retry_after * failures)
                await asyncio.sleep(self._retry_after * failures)

    async def aclose(self) -> None:
        self._closed = True
        self._pending.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None


def progress_hooks(flow: Flow, show: Callable[[dict[str, str]], None]) -> Hooks:
    """Observers that `show` (publish) where the call is: the flow's name when the call starts,
    then after each move the state entered and the edge that led there, in one update so the
    picture lights both together (`ivrkit.sensitive` with the state, as always). They see the
    call's masked trace records, as every observer."""
    sensitive = sensitive_states(flow)

    async def started(_: TraceEvent) -> None:
        show({FLOW_ATTRIBUTE: flow.name})

    async def moved(event: TraceEvent) -> None:
        data = event.data
        to = str(data.get("to"))
        edge = move_edge(flow, str(data.get("from")), to, str(data.get("why", "")))
        show({**state_attributes(to, sensitive), EDGE_ATTRIBUTE: edge or ""})

    return Hooks(call_start=[started], transition=[moved])
