"""Prometheus series of the calls a worker runs, counted from each call's trace records as they
are made.

Why from the trace: the trace (`ivrkit.trace`) is already the masked, ordered account of a call —
every key exactly once, sensitive digits as `*` — so series made from it can show nothing the
trace does not, and there is no second place to get masking right. The call's `Recorder` hands
each record to `CallMetrics.record` the moment it is made (synchronously, no observer task, no
time limit: this is ivrkit's own code), plus how long each flow hook ran (`hook_ran`), the one
thing the trace does not say. Observer hooks (`ivrkit.hooks.Hooks`) were the other choice; they
see only some kinds (no hook, transfer, dial, error or timeout records) and each notification is
awaited under a time limit, which would put a task and a timer on every key.

Labels are bounded by the flow file, never by what a caller does: `flow` and `state` (names from
the flow), `hook` (a flow's `module:function`), `key` (only a menu key: 0-9 * # A-D, anything
else `other`), and small fixed sets for `ended_by`, `reason` and `outcome`. No caller number,
dialled number, collected value or free text ever becomes a label (tests/test_metrics.py runs a
PIN and an account number through a call and looks for them in the exposition).

Cheap on the key path: a flow's labelled children are made on first use and kept
(`FlowSeries`), and a record only adds to the call's own pending counts (`CallMetrics.flush`
publishes them: the worker every `FLUSH_SECONDS` and at the call's end), so a record costs a
couple of dict operations; records that no series counts (prompt_end, wait, ...) cost one
failed dict lookup. bench/keypress.py --metrics measures it side by side.

The series (all counters end in `_total`, times are seconds):

  ivrkit_calls_started_total{flow}                 calls that reached the engine
  ivrkit_calls_ended_total{flow,ended_by}          hangup, caller_hangup, transfer, error, cancelled, stopped
  ivrkit_calls_active{flow}                        gauge: calls in progress
  ivrkit_state_entries_total{flow,state}           every entry (re-entries too)
  ivrkit_caller_hangups_total{flow,state}          the caller hung up while in `state`: drop-off
  ivrkit_menu_choices_total{flow,state,key}        a menu key that chose an option
  ivrkit_menu_invalid_keys_total{flow,state,key}   a menu key that was no option (a no-match)
  ivrkit_no_input_total{flow,state}                no key in time (menu, collect, confirm)
  ivrkit_no_match_total{flow,state}                an invalid key or entry
  ivrkit_retries_exhausted_total{flow,state,reason}  the last retry used (reason: no_input|no_match)
  ivrkit_collects_total{flow,state,reason}         a collect ended (terminator, max_digits, timeouts, ...)
  ivrkit_validation_failures_total{flow,state}     a `validate:` hook answered False
  ivrkit_transfers_total{flow,state,outcome}       outcome: connected, failed, caller_hangup, stopped
  ivrkit_dials_total{flow,state,outcome}           outcome: connected, failed, caller_hangup, stopped
  ivrkit_errors_total{flow,state}                  the call took its error path
  ivrkit_hook_duration_seconds{flow,hook}          histogram: a flow hook's run, however it ended
  ivrkit_hook_failures_total{flow,hook,outcome}    outcome: raised, timeout
  ivrkit_key_to_prompt_seconds{flow,state}         histogram: a used key's arrival to the start of
                                                   the prompt that answered it (handed to the channel)
  ivrkit_prompt_render_seconds{flow}               histogram: a prompt turned into audio (the
                                                   worker's `observe_render`; cache, TTS or offline)

The engine never imports this module (`import ivrkit` loads no prometheus_client): the worker
(`ivrkit.livekit.job`) and tests create `CallMetrics` and pass it to `Call(metrics=...)` /
`FlowTester(metrics=...)`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ivrkit.channel import DTMF_KEYS
from ivrkit.digits import EndReason
from ivrkit.flow.model import Flow
from ivrkit.trace import TraceEvent

__all__ = ["CallMetrics", "FlowSeries", "IvrMetrics", "default_metrics"]

#: Key to prompt: what a caller notices starts near 100-250 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
HOOK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RENDER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

#: How often the worker publishes a call's pending counts (and at its end): the most a
#: scrape can lag behind the call.
FLUSH_SECONDS = 1.0

_ENDED_BY = frozenset({"caller_hangup", "hangup", "transfer", "error", "cancelled", "stopped"})
_COLLECT_REASONS = frozenset(r.value for r in EndReason)
_MENU_KEY = "key "  # a transition's `why` for a menu choice: "key 1"


def _bounded(value: Any, allowed: frozenset[str]) -> str:
    text = str(value)
    return text if text in allowed else "other"


class IvrMetrics:
    """The metric families, registered once on `registry` (the worker: the process's default
    registry, which livekit-agents' own series use too; a test: a fresh one)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, ("flow", *labels), registry=registry)

        self.registry = registry
        self.calls_started = counter("ivrkit_calls_started", "Calls that reached the flow engine")
        self.calls_ended = counter("ivrkit_calls_ended", "Calls ended, by how they ended", "ended_by")
        self.calls_active = Gauge("ivrkit_calls_active", "Calls in progress", ("flow",), registry=registry,
                                  multiprocess_mode="livesum")
        self.state_entries = counter("ivrkit_state_entries", "State entries, re-entries included", "state")
        self.caller_hangups = counter("ivrkit_caller_hangups", "Callers who hung up, by the state they were in "
                                      "(drop-off)", "state")
        self.menu_choices = counter("ivrkit_menu_choices", "Menu keys that chose an option", "state", "key")
        self.menu_invalid_keys = counter("ivrkit_menu_invalid_keys", "Menu keys that were no option", "state", "key")
        self.no_input = counter("ivrkit_no_input", "No key in time", "state")
        self.no_match = counter("ivrkit_no_match", "An invalid key or entry", "state")
        self.retries_exhausted = counter("ivrkit_retries_exhausted", "The last retry was used", "state", "reason")
        self.collects = counter("ivrkit_collects", "Collects ended, by why", "state", "reason")
        self.validation_failures = counter("ivrkit_validation_failures", "validate: hooks that answered False",
                                           "state")
        self.transfers = counter("ivrkit_transfers", "Transfers, by outcome", "state", "outcome")
        self.dials = counter("ivrkit_dials", "Dial-outs, by outcome", "state", "outcome")
        self.errors = counter("ivrkit_errors", "Errors that took the call's error path", "state")
        self.hook_duration = Histogram("ivrkit_hook_duration_seconds", "Flow hook run time", ("flow", "hook"),
                                       registry=registry, buckets=HOOK_BUCKETS)
        self.hook_failures = counter("ivrkit_hook_failures", "Flow hooks that raised or ran past their limit",
                                     "hook", "outcome")
        self.key_to_prompt = Histogram("ivrkit_key_to_prompt_seconds", "A used key's arrival to the start of the "
                                       "prompt that answered it", ("flow", "state"), registry=registry,
                                       buckets=LATENCY_BUCKETS)
        self.prompt_render = Histogram("ivrkit_prompt_render_seconds", "Time to turn a prompt into audio",
                                       ("flow",), registry=registry, buckets=RENDER_BUCKETS)
        self._flows: dict[str, FlowSeries] = {}
        self._lock = threading.Lock()  # thread-executor calls share one IvrMetrics

    def flow(self, name: str) -> FlowSeries:
        """The series of one flow (made once per flow and process)."""
        series = self._flows.get(name)
        if series is None:
            with self._lock:
                series = self._flows.setdefault(name, FlowSeries(self, name))
        return series

    def call(self, flow: Flow) -> CallMetrics:
        """A new call's sink on `flow`, for `Call(metrics=...)`."""
        return CallMetrics(self.flow(flow.name), frozenset(n for n, st in flow.states.items() if st.menu is not None))


@functools.cache
def default_metrics() -> IvrMetrics:
    """This process's families on the default registry (what the worker's /metrics serves)."""
    return IvrMetrics()


class FlowSeries:
    """One flow's labelled children, each made on first use and kept, so counting a record is a
    dict lookup rather than `labels()` (which checks and locks on every call)."""

    __slots__ = ("families", "name", "_children")

    def __init__(self, families: IvrMetrics, name: str) -> None:
        self.families = families
        self.name = name
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, family: Counter | Gauge | Histogram, *labels: str) -> Any:
        key = (family, *labels)
        found = self._children.get(key)
        if found is None:  # a benign race between threads: labels() returns the same child
            found = self._children[key] = family.labels(self.name, *labels)
        return found

    def observe_render(self, seconds: float) -> None:
        """A prompt of this flow took `seconds` to become audio (the worker's synthesizer)."""
        self.child(self.families.prompt_render).observe(seconds)


class CallMetrics:
    """One call's records folded into its flow's series as they are made (`MetricsSink`).

    It keeps the little a series needs across records: the last used key's arrival (for key to
    prompt), the last menu key (for an invalid-key count) and a transfer or dial waiting for its
    outcome. `menus`: the flow's menu states, the only ones whose keys may become labels.

    Counts wait in plain dicts until `flush()`: a prometheus_client `inc()` takes a lock and an
    `observe()` walks the buckets under one (1.7 and 5.6 µs measured on this machine), which
    a key would otherwise pay three times; a flush adds them up, one `inc(n)` per child.
    """

    __slots__ = ("series", "menus", "_m", "_key_at", "_menu_key", "_action", "_counts", "_observed", "_ended")

    def __init__(self, series: FlowSeries, menus: frozenset[str] = frozenset()) -> None:
        self.series = series
        self.menus = menus
        self._m = series.families
        self._key_at: float | None = None
        self._menu_key: tuple[str, str] | None = None  # (state, key) of the menu key just used
        self._action: tuple[Counter, str] | None = None  # (transfers|dials, state) awaiting its outcome
        self._counts: dict[tuple[Any, ...], float] = {}  # (family, *labels) -> amount since the last flush
        self._observed: list[tuple[tuple[Any, ...], float]] = []  # ((family, *labels), value) since then
        self._ended = False  # after call_end, every count is published at once

    def record(self, event: TraceEvent) -> None:
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, event.state or "")
            if self._ended:  # call_end hooks and their errors come after the last flush
                self.flush()

    def flush(self) -> None:
        """Publish what was counted since the last flush to the registry (the worker: every
        `FLUSH_SECONDS` and at the call's end; a test: at the call's end, or when it asks)."""
        child = self.series.child
        counts, self._counts = self._counts, {}
        for (family, *labels), amount in counts.items():
            series = child(family, *labels)  # made even when the sum is 0 (a call shorter than a flush)
            if amount:
                series.inc(amount)
        observed, self._observed = self._observed, []
        for (family, *labels), value in observed:
            child(family, *labels).observe(value)

    def _count(self, family: Counter | Gauge, *labels: str, amount: float = 1.0) -> None:
        key = (family, *labels)  # the child is looked up at the flush, once per series
        counts = self._counts
        counts[key] = counts.get(key, 0.0) + amount

    def _observe(self, value: float, family: Histogram, *labels: str) -> None:
        self._observed.append(((family, *labels), value))

    def hook_ran(self, hook: str, state: str | None, seconds: float, outcome: str) -> None:
        self._observe(seconds, self._m.hook_duration, hook)
        if outcome != "returned":
            self._count(self._m.hook_failures, hook, outcome)
        if self._ended:
            self.flush()

    # --- one method per record kind ------------------------------------------------------------

    def _call_start(self, event: TraceEvent, state: str) -> None:
        self._count(self._m.calls_started)
        self._count(self._m.calls_active)

    def _call_end(self, event: TraceEvent, state: str) -> None:
        ended_by = _bounded(event.data.get("ended_by"), _ENDED_BY)
        self._count(self._m.calls_ended, ended_by)
        self._count(self._m.calls_active, amount=-1.0)
        if ended_by == "caller_hangup":
            self._count(self._m.caller_hangups, state)
        if self._action is not None:
            # A transfer or dial the worker's stop cut short did not fail: nobody tried it to the end.
            outcome = {"hangup": "connected", "caller_hangup": "caller_hangup",
                       "stopped": "stopped"}.get(ended_by, "failed")
            self._action_outcome(outcome)
        self._ended = True  # record() flushes

    def _state(self, event: TraceEvent, state: str) -> None:
        self._count(self._m.state_entries, state)
        self._menu_key = None

    def _key(self, event: TraceEvent, state: str) -> None:
        data = event.data
        if "consumed" not in data:
            return  # discarded: no state used it, nothing answers it
        self._key_at = data["arrived"]
        self._menu_key = (state, str(data["digit"])) if state in self.menus else None

    def _prompt(self, event: TraceEvent, state: str) -> None:
        if self._key_at is not None:
            self._observe(max(0.0, event.t - self._key_at), self._m.key_to_prompt, state)
            self._key_at = None

    def _timeout(self, event: TraceEvent, state: str) -> None:
        self._key_at = None  # what follows answers the timeout, not the last key

    def _transition(self, event: TraceEvent, state: str) -> None:
        data = event.data
        why = str(data.get("why", ""))
        if why.startswith(_MENU_KEY):  # only a menu choice moves "key 1"
            key = _bounded(why[len(_MENU_KEY):], DTMF_KEYS)
            self._count(self._m.menu_choices, str(data.get("from", "")), key)
        if self._action is not None:
            self._action_outcome("failed" if why == "error" else "connected")
        self._menu_key = None

    def _no_input(self, event: TraceEvent, state: str) -> None:
        self._failed(self._m.no_input, "no_input", event, state)

    def _no_match(self, event: TraceEvent, state: str) -> None:
        self._failed(self._m.no_match, "no_match", event, state)
        if self._menu_key is not None and self._menu_key[0] == state:
            self._count(self._m.menu_invalid_keys, state, _bounded(self._menu_key[1], DTMF_KEYS))
        self._menu_key = None

    def _failed(self, family: Counter, what: str, event: TraceEvent, state: str) -> None:
        self._count(family, state)
        count, retries = event.data.get("count"), event.data.get("retries")
        if isinstance(count, int) and isinstance(retries, int) and count >= retries:
            self._count(self._m.retries_exhausted, state, what)

    def _collect(self, event: TraceEvent, state: str) -> None:
        reason = _bounded(event.data.get("reason"), _COLLECT_REASONS)
        self._count(self._m.collects, state, reason)

    def _hook(self, event: TraceEvent, state: str) -> None:
        if event.data.get("result") is False:  # a validate hook said no
            self._count(self._m.validation_failures, state)

    def _transfer(self, event: TraceEvent, state: str) -> None:
        self._action = (self._m.transfers, state)

    def _dial(self, event: TraceEvent, state: str) -> None:
        self._action = (self._m.dials, state)

    def _transfer_done(self, event: TraceEvent, state: str) -> None:
        if self._action is not None:
            self._action_outcome("connected" if event.data.get("ok") else "failed")

    def _error(self, event: TraceEvent, state: str) -> None:
        self._count(self._m.errors, state)
        if self._action is not None:
            self._action_outcome("failed")

    def _action_outcome(self, outcome: str) -> None:
        assert self._action is not None
        family, state = self._action
        self._count(family, state, outcome)
        self._action = None


_HANDLERS: dict[str, Callable[[CallMetrics, TraceEvent, str], None]] = {
    "call_start": CallMetrics._call_start,
    "call_end": CallMetrics._call_end,
    "state": CallMetrics._state,
    "key": CallMetrics._key,
    "prompt": CallMetrics._prompt,
    "timeout": CallMetrics._timeout,
    "transition": CallMetrics._transition,
    "no_input": CallMetrics._no_input,
    "no_match": CallMetrics._no_match,
    "collect": CallMetrics._collect,
    "hook": CallMetrics._hook,
    "transfer": CallMetrics._transfer,
    "dial": CallMetrics._dial,
    "transfer_done": CallMetrics._transfer_done,
    "error": CallMetrics._error,
}
