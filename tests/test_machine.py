"""FlowMachine: one shared transitions machine per flow, edges as the flow file writes them."""

from __future__ import annotations

import sys

import pytest

from ivrkit.errors import CallError, HookError
from ivrkit.flow.model import Collect, Flow, HookRef, Menu, State
from ivrkit.machine import BUILTIN_ERROR, INITIAL, FlowMachine
from ivrkit.prompts import Prompt

P = Prompt.text


def lookup(ctx: object) -> None:
    return None


def make_flow(*states: State, error_state: str | None = None) -> Flow:
    return Flow(name="m", start=states[0].name, states={s.name: s for s in states}, file="m.yaml",
                error_state=error_state)


FLOW = make_flow(
    State("main", "m.yaml:1", menu=Menu(P("menu"), {"1": "pin", "2": "bye"}, back_key=None, on_max_retries="bye")),
    State("pin", "m.yaml:5", collect=Collect(P("pin"), into="pin", sensitive=True, back_key="*",
                                             confirm=P("ok?")), next="hook"),
    State("hook", "m.yaml:9", run=HookRef(__name__, "lookup"), next="bye"),
    State("bye", "m.yaml:12", say=P("bye"), hangup=True),
    State("oops", "m.yaml:14", say=P("oops"), hangup=True),
    error_state="oops",
)


class Model:
    __slots__ = ("state",)
    state: str


def test_edges_are_the_flow_plus_error_path_and_declared_dynamic_targets() -> None:
    fm = FlowMachine(FLOW)
    assert fm.edges(FLOW.states["main"]) == {"pin", "bye", "oops", BUILTIN_ERROR}
    # collect: next, error path, itself (confirm: 2 re-enters), back to any menu/collect state
    assert fm.edges(FLOW.states["pin"]) == {"hook", "oops", BUILTIN_ERROR, "pin", "main"}
    # a run hook may return any state name
    assert fm.edges(FLOW.states["hook"]) == {*FLOW.states, BUILTIN_ERROR}
    assert fm.may_go("main", "pin") and not fm.may_go("main", "hook") and not fm.may_go("bye", "main")
    assert fm.may_go(INITIAL, "main") and fm.may_go(INITIAL, BUILTIN_ERROR)
    assert fm.sensitive == {"pin"} and fm.input_states == {"main", "pin"}


def test_models_share_one_machine_and_move_only_along_edges() -> None:
    fm = FlowMachine(FLOW)
    a, b = Model(), Model()  # __slots__ only: nothing but `state` may be written on a model
    fm.attach(a)
    fm.attach(b)
    assert a.state == b.state == INITIAL and fm.model_count == 2
    fm.go(a, "main")
    fm.go(a, "pin")
    assert a.state == "pin" and b.state == INITIAL
    with pytest.raises(CallError, match="no edge pin -> bye"):
        fm.go(a, "bye")
    with pytest.raises(CallError, match="no state 'nowhere'"):
        fm.go(a, "nowhere")
    assert a.state == "pin"
    fm.go(a, BUILTIN_ERROR)
    fm.detach(a)
    fm.detach(a)  # idempotent
    assert fm.model_count == 1
    fm.detach(b)
    assert fm.model_count == 0


def test_unresolvable_hook_becomes_a_hook_error_at_call_time() -> None:
    flow = make_flow(State("s", "m.yaml:3", run=HookRef("no_such_module_xyz", "f", where="m.yaml:3:10"), next="s"))
    fm = FlowMachine(flow)
    with pytest.raises(HookError, match=r"m.yaml:3:10: hook no_such_module_xyz:f in state 's': cannot import"):
        fm.hook(flow.states["s"].run, flow.states["s"])  # type: ignore[arg-type]


def test_hooks_are_resolved_once_at_compile_time() -> None:
    fm = FlowMachine(FLOW)
    ref = FLOW.states["hook"].run
    assert ref is not None
    assert fm.hook(ref, FLOW.states["hook"]) is sys.modules[__name__].lookup


def test_bad_flows_are_refused() -> None:
    with pytest.raises(CallError, match="start state"):
        FlowMachine(Flow(name="x", start="nope", states={}, file="x.yaml"))
    with pytest.raises(CallError, match="reserved"):
        FlowMachine(make_flow(State(BUILTIN_ERROR, "x.yaml:1", hangup=True)))


def test_attach_binds_nothing_per_call() -> None:
    """The stock add_model puts a partial per trigger and per state on every model; we do not."""

    class Open:
        state: str

    fm = FlowMachine(FLOW)
    m = Open()
    fm.attach(m)
    assert vars(m) == {"state": INITIAL}
    fm.detach(m)


def test_one_machine_for_a_large_flow_is_cheap_to_attach() -> None:
    states = [State(f"s{i}", f"m.yaml:{i}", menu=Menu(P("x"), {"1": f"s{(i + 1) % 300}"})) for i in range(300)]
    fm = FlowMachine(make_flow(*states))
    models = [Model() for _ in range(1000)]
    for m in models:
        fm.attach(m)
    assert fm.model_count == 1000
    for m in models:
        fm.detach(m)
    assert fm.model_count == 0
