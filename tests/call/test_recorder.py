"""The recorder alone: records filed under the state, secrets masked, observers after the fact."""

from __future__ import annotations

from ivrkit.call.recorder import NO_HOOKS, Recorder
from ivrkit.hooks import Hooks
from ivrkit.testing import VirtualClock
from ivrkit.trace import TraceEvent


def test_records_carry_the_clock_and_the_state() -> None:
    clock = VirtualClock(12.0)
    rec = Recorder(clock, NO_HOOKS, lambda: (), "demo")
    rec.record("call_start", {})
    rec.state = "main"
    rec.record("state", {"where": "f.yaml:3"})
    assert [(e.t, e.state, e.kind) for e in rec.trace] == [(12.0, None, "call_start"), (12.0, "main", "state")]
    assert not rec.pending


def test_mask_replaces_every_secret() -> None:
    secrets = ["4321", ""]
    rec = Recorder(VirtualClock(), NO_HOOKS, lambda: secrets, "demo")
    assert rec.mask("pin 4321 rejected (4321)") == "pin **** rejected (****)"
    secrets.append("99")
    assert rec.mask("99 bottles") == "**** bottles"


async def test_observers_get_their_points_on_delivery_and_a_failing_one_is_traced() -> None:
    seen: list[TraceEvent] = []

    async def watch(event: TraceEvent) -> None:
        seen.append(event)

    async def broken(event: TraceEvent) -> None:
        raise RuntimeError("pin 4321 broke it")

    rec = Recorder(VirtualClock(), Hooks(state_enter=[watch, broken]), lambda: ["4321"], "demo")
    rec.state = "main"
    rec.record("state", {"where": "x"})
    rec.record("prompt", {"id": 1})  # no observer point
    assert rec.pending and seen == []  # not during the handler that recorded it
    await rec.deliver()
    assert [e.kind for e in seen] == ["state"] and not rec.pending
    error = rec.trace.of_kind("observer_error")[0].data
    assert error["point"] == "state_enter" and error["error"] == "RuntimeError: pin **** broke it"
