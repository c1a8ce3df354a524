"""The flow compiled once into a `transitions` state machine, shared by every call on it.

Why one machine per flow: building it (states, edges, hook resolution) is paid once when the
flow loads, and a call only adds itself as a *model* — the measured cost of a machine per call
is ~127 KiB and a build per call; a model costs a few hundred bytes here.

This is the only module that imports `transitions`. It uses a plain `Machine(auto_transitions=
False)` with no callbacks, conditions, queue or timeouts (all timers go through the call's
`Clock`): the call does its work after a move, in its own order (one queue, one consumer), so
a move has nothing to await and no other move can interleave with it. `go` therefore makes the
move itself from the machine's tables — the edge check and the state write that are all a
trigger does here — instead of through the stock trigger pipeline, which cost more per move
than the whole hand-written baseline of bench row 1 costs per key. A move touches nothing shared
but the tables it reads, so calls on several threads (the worker's thread executor) may share
one machine.

Edges. Every state gets one trigger per destination, `@<dest>`; a move is allowed only along
an edge, so a call can never jump somewhere the flow file does not lead (a move without an edge
is a bug, reported as `CallError`). The edges of a state are:
- its static targets as written (`State.targets()`: menu options, goto branches, next,
  on_max_retries, on_error);
- its error path: `on_error`, the flow's `error_state`, and the built-in error state
  `BUILTIN_ERROR` ("Sorry, something went wrong." then hang up), from every state;
- itself, when it is a collect with `confirm` (2 = re-enter);
- **dynamic targets**: a state with a `run` hook may go to *any* state, because the hook decides
  at call time by returning a state name. The call checks that the name exists before moving
  (an unknown name is a hook error → error path), so the edge set stays exactly the flow's
  states. Likewise a state with a `back_key` may go back to any menu/collect state.

Memory per call: the stock `add_model` binds a `trigger`, `may_trigger`, one partial per
trigger and one `is_<state>` per state onto *every model* — kilobytes per call for a big flow.
`_SharedMachine` skips that binding: calls move through `FlowMachine.go(call, dest)`, and the
only thing written on the model is its `state` attribute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from transitions import Machine

from ivrkit.errors import CallError, FlowError, HookError, HookImportError
from ivrkit.flow.hook_refs import resolve_hook
from ivrkit.flow.model import Flow, HookRef, State

log = logging.getLogger("ivrkit.machine")

#: The machine state a call is in while it plays the built-in "something went wrong" and hangs up.
BUILTIN_ERROR = "_ivrkit_error"  # the loader refuses state names starting with _ivrkit
#: Before the start state is entered (while call_start hooks run).
INITIAL = "_ivrkit_start"


class Model(Protocol):
    state: str


class _SharedMachine(Machine):
    """Machine without per-model convenience bindings (see module docstring)."""

    def _checked_assignment(self, model: Any, name: str, func: Any) -> None:
        return None

    def _add_trigger_to_model(self, trigger: str, model: Any) -> None:
        return None

    def _add_model_to_state(self, state: Any, model: Any) -> None:
        return None


def trigger_name(dest: str) -> str:
    return "@" + dest


class FlowMachine:
    """A `Flow` compiled into one shared `Machine`; calls `attach` themselves as models.

    `hook(ref)` returns the resolved callable of a flow hook (resolved once, at compile time; an
    unresolvable hook raises `HookError` when a call reaches it, so that call takes its error
    path — the loader reports the same problem with file and line before any call starts).
    """

    __slots__ = ("flow", "_machine", "_hooks", "_hook_errors", "sensitive", "input_states", "speech", "__weakref__")

    def __init__(
        self,
        flow: Flow,
        *,
        search_paths: Iterable[str | Path] = (),
        resolve: Callable[[HookRef], Callable[..., Any]] | None = None,
    ) -> None:
        self.flow = flow
        if flow.start not in flow.states:
            raise CallError(f"{flow.file}: start state '{flow.start}' is not defined")
        for reserved in (BUILTIN_ERROR, INITIAL):
            if reserved in flow.states:
                raise CallError(f"{flow.file}: the state name '{reserved}' is reserved by ivrkit")
        #: names of variables that hold sensitive input; masked in prompts' log_text and traces.
        self.sensitive: frozenset[str] = frozenset(
            s.collect.into for s in flow.states.values() if s.collect is not None and s.collect.sensitive
        )
        self.input_states = frozenset(
            n for n, s in flow.states.items() if s.menu is not None or s.collect is not None
        )
        #: some state takes speech; a call on a keys-only flow never listens (nor asks per key)
        self.speech = any(s.settings.speech for s in flow.states.values())
        self._hooks: dict[HookRef, Callable[..., Any]] = {}
        self._hook_errors: dict[HookRef, str] = {}
        paths = [*flow.python_path, *search_paths]
        resolver = resolve or (lambda ref: resolve_hook(ref, paths))
        for ref in _hook_refs(flow):
            if ref in self._hooks or ref in self._hook_errors:
                continue
            try:
                self._hooks[ref] = resolver(ref)
            except (HookImportError, FlowError) as exc:
                self._hook_errors[ref] = str(exc)
                log.error("%s: %s", ref.where or flow.file, exc)
        self._machine = self._build()

    def _build(self) -> _SharedMachine:
        flow = self.flow
        names = list(flow.states)
        all_states = [*names, BUILTIN_ERROR]
        sources: dict[str, set[str]] = {name: set() for name in all_states}
        for state in flow.states.values():
            for dest in self.edges(state):
                sources[dest].add(state.name)
        sources[flow.start].add(INITIAL)
        sources[BUILTIN_ERROR].add(INITIAL)
        if flow.error_state in sources:
            sources[flow.error_state].add(INITIAL)
        transitions = [
            {"trigger": trigger_name(dest), "source": sorted(srcs), "dest": dest}
            for dest, srcs in sources.items()
            if srcs
        ]
        return _SharedMachine(
            model=None,
            states=[INITIAL, *all_states],
            initial=INITIAL,
            transitions=transitions,
            auto_transitions=False,
            name=f"{flow.name}: ",
        )

    def edges(self, state: State) -> set[str]:
        """Every state `state` may move to (static targets, error path, dynamic targets)."""
        flow = self.flow
        out = {t for t in state.targets() if t in flow.states}
        out.add(BUILTIN_ERROR)
        if flow.error_state is not None and flow.error_state in flow.states:
            out.add(flow.error_state)
        if state.collect is not None and state.collect.confirm is not None:
            out.add(state.name)
        if state.run is not None:
            out.update(flow.states)  # dynamic: the hook may return any state name
        back = (state.menu.back_key if state.menu else None) or (state.collect.back_key if state.collect else None)
        if back:
            out.update(self.input_states)
        return out

    # --- per call ------------------------------------------------------------------------------

    def attach(self, model: Model) -> None:
        """Add a call as a model; it starts in `INITIAL` (before the flow's start state)."""
        self._machine.add_model(model, initial=INITIAL)

    def detach(self, model: Model) -> None:
        """Remove a call (idempotent); the machine keeps nothing else of it."""
        if model in self._machine.models:
            self._machine.remove_model(model)

    def go(self, model: Model, dest: str) -> None:
        """Move `model` to `dest` along a flow edge. Raises `CallError` if there is no such edge.

        Exactly what `event.trigger(model)` does on this machine (no callbacks, conditions or
        queue: check the edge, set the state), read from its tables. The stock trigger costs
        ~86,000 instructions per move (an `EventData`, ten logging calls, seven empty callback
        lists); `AsyncMachine`'s ~150,000 (coroutines, a context variable, task bookkeeping)."""
        event = self._machine.events.get(trigger_name(dest))
        if event is None:
            raise CallError(f"{self.flow.file}: no state '{dest}' in flow '{self.flow.name}'")
        if model.state not in event.transitions:
            raise CallError(f"{self.flow.file}: flow '{self.flow.name}' has no edge {model.state} -> {dest}")
        model.state = dest  # `set_state(dest, model)` without its Enum/State/all-models generality

    def may_go(self, source: str, dest: str) -> bool:
        event = self._machine.events.get(trigger_name(dest))
        return event is not None and source in event.transitions

    @property
    def model_count(self) -> int:
        return len(self._machine.models)

    # --- hooks ---------------------------------------------------------------------------------

    def hook(self, ref: HookRef, state: State) -> Callable[..., Any]:
        fn = self._hooks.get(ref)
        if fn is not None:
            return fn
        why = self._hook_errors.get(ref, "was not resolved when the flow was compiled")
        raise HookError(why, hook=str(ref), state=state.name, where=ref.where or state.where)


def _hook_refs(flow: Flow) -> list[HookRef]:
    refs = [*flow.call_start, *flow.call_end]
    for state in flow.states.values():
        if state.run is not None:
            refs.append(state.run)
        if state.collect is not None and state.collect.validate is not None:
            refs.append(state.collect.validate)
    return refs

