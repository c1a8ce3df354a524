"""What a call leaves behind: its trace, masked, and the observers' view of it.

Every record passes through here, so this is the one place that must never let a sensitive
digit through: `mask()` replaces whatever `secrets()` answers (the values of sensitive
variables, and the digits of a sensitive entry in progress or being validated) in any text, and
callers record keys of sensitive input as `*` themselves. Observers (`Hooks`) are notified
after the handler that made the records has finished, from `deliver()`, so user code never runs
inside a decision.

A `MetricsSink` (the worker's Prometheus series, `ivrkit.metrics`) sees every record at once,
synchronously, as it is made — the same masked records the trace keeps (and those past the
trace's cap) — plus how long each flow hook ran, which the trace does not say. It is plain
code of ivrkit's own, not user code: no time limit, no await; a sink that raises is logged once
and the call goes on.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ivrkit.clock import Clock
from ivrkit.hooks import Hooks, run_limited
from ivrkit.prompts import MASK
from ivrkit.trace import MAX_EVENTS, Trace, TraceEvent, new_event

log = logging.getLogger("ivrkit.call")

#: Trace kinds that observers watch, and the hook point each belongs to.
POINTS = {"call_start": "call_start", "state": "state_enter", "key": "digits", "collect": "digits",
          "wait": "digits", "no_input": "digits", "no_match": "digits",
          "listen": "digits", "speech_start": "digits", "speech": "digits",
          "prompt": "prompt", "prompt_end": "prompt", "prompt_skip": "prompt",
          "transition": "transition", "call_end": "call_end"}
NO_HOOKS = Hooks()


class MetricsSink(Protocol):
    """What counts a call's records as they happen (`ivrkit.metrics.CallMetrics`)."""

    def record(self, event: TraceEvent) -> None:
        """One record, as the trace got it (masked)."""

    def hook_ran(self, hook: str, state: str | None, seconds: float, outcome: str) -> None:
        """A flow hook `returned`, `raised` or ran past its limit (`timeout`) after `seconds`
        of call-clock time."""


class Recorder:
    """The call's trace, its masking, its observer notifications and its metrics sink."""

    __slots__ = ("trace", "state", "label", "metrics", "_clock", "_hooks", "_secrets", "pending", "_events")

    def __init__(self, clock: Clock, hooks: Hooks, secrets: Callable[[], Iterable[str]], label: str,
                 metrics: MetricsSink | None = None) -> None:
        self.trace = Trace()
        #: The state records are filed under (None before the start state).
        self.state: str | None = None
        self._clock = clock
        self._hooks = hooks
        self._secrets = secrets
        self.label = label  # the flow's name, for log lines
        self.metrics = metrics
        #: Records waiting for `deliver()` to hand them to their observers (empty: nothing to do).
        self.pending: list[TraceEvent] = []
        self._events = self.trace.events

    def record(self, kind: str, data: Mapping[str, Any]) -> None:
        """Append a record (already masked by the caller where it holds input).

        Below the trace's cap the record is appended here, as `Trace.record` would (same `seq`),
        without a second call per record; at the cap `Trace.record` decides what is kept."""
        events = self._events
        seq = len(events) + 1
        if seq <= MAX_EVENTS:
            event: TraceEvent = new_event(TraceEvent, (seq, self._clock.now(), kind, self.state, data))
            events.append(event)
        else:
            event = self.trace.record(self._clock.now(), kind, self.state, data)
        if self.metrics is not None:
            try:
                self.metrics.record(event)
            except Exception:
                self._metrics_failed()
        if self._hooks is not NO_HOOKS:
            point = POINTS.get(kind)
            if point is not None and getattr(self._hooks, point):
                self.pending.append(event)

    def hook_ran(self, hook: str, seconds: float, outcome: str) -> None:
        """Tell the metrics sink how a flow hook went (the trace has no record of its start)."""
        if self.metrics is not None:
            try:
                self.metrics.hook_ran(hook, self.state, seconds, outcome)
            except Exception:
                self._metrics_failed()

    def _metrics_failed(self) -> None:
        """A metrics bug must not end a call: log it (once per call) and stop counting it."""
        log.exception("flow %s: call metrics failed; this call is no longer counted", self.label)
        self.metrics = None

    def mask(self, text: str) -> str:
        """`text` with every secret of the call replaced by `****`."""
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, MASK)
        return text

    def log_traceback(self, error: BaseException, context: str) -> None:
        """Log, at DEBUG, the masked traceback of what caused `error` (a hook's own exception):
        the error line already names the place; the full traceback is there when asked for."""
        cause = error.__cause__
        if cause is not None and cause.__traceback__ is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("%s: traceback (sensitive values masked):\n%s", context,
                      self.mask("".join(traceback.format_exception(cause))).rstrip())

    async def deliver(self) -> None:
        """Hand the records made since the last delivery to their observers, each under the
        hooks' time limit; one that fails is logged and traced, and the call goes on."""
        pending, self.pending = self.pending, []
        for event in pending:
            point = POINTS[event.kind]
            for observer in getattr(self._hooks, point):
                try:
                    await run_limited(observer(event), clock=self._clock, timeout=self._hooks.timeout)
                except Exception as exc:  # a HookTimeout too
                    name = getattr(observer, "__qualname__", repr(observer))
                    log.error("flow %s: %s observer %s failed: %s", self.label, point, name, exc)
                    self.trace.record(self._clock.now(), "observer_error", event.state,
                                      {"point": point, "observer": name, "error": self.mask(f"{type(exc).__name__}: {exc}")})
