"""The agent's participant attributes: latest value wins, the call never waits, nothing leaks;
what the worker shows of a call's progress (flow, state, the edge just taken).

The real `set_attributes` round trip is covered end to end by tests/e2e/test_dialpad.py (the
page shows the state and prompt the worker publishes); here the publish function is ours.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivrkit.flow.loader import load_flow_text
from ivrkit.graph.model import build_graph
from ivrkit.livekit.attributes import (
    EDGE_ATTRIBUTE,
    FLOW_ATTRIBUTE,
    RETRIES,
    SENSITIVE_ATTRIBUTE,
    STATE_ATTRIBUTE,
    AttributePublisher,
    progress_hooks,
)
from ivrkit.machine import BUILTIN_ERROR, FlowMachine
from ivrkit.testing import FlowTester
from tests.graph.helpers import EVERY_EDGE


class Server:
    """Answers each publish only when the test lets it, so coalescing is observable."""

    def __init__(self, fail: bool = False) -> None:
        self.received: list[dict[str, str]] = []
        self.gate = asyncio.Event()
        self.fail = fail

    async def publish(self, attributes: dict[str, str]) -> None:
        self.received.append(dict(attributes))
        await self.gate.wait()
        self.gate.clear()
        if self.fail:
            raise RuntimeError("server said no")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_updates_made_while_one_is_in_flight_coalesce_latest_wins() -> None:
    server = Server()
    pub = AttributePublisher(server.publish, logging.getLogger("test"))
    pub.update({"ivrkit.state": "main", "ivrkit.prompt": "Main menu"})
    await settle()
    pub.update({"ivrkit.state": "sales"})
    pub.update({"ivrkit.state": "pin", "ivrkit.prompt": "Enter your PIN: ****"})
    server.gate.set()
    await settle()
    server.gate.set()
    await settle()
    assert server.received == [
        {"ivrkit.state": "main", "ivrkit.prompt": "Main menu"},
        {"ivrkit.state": "pin", "ivrkit.prompt": "Enter your PIN: ****"},
    ]
    await pub.aclose()


async def test_a_failed_publish_is_tried_again_and_its_values_are_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    """`ivrkit.flow` is published once, at the start: a publish that failed must not lose it."""
    server = Server(fail=True)
    pub = AttributePublisher(server.publish, logging.getLogger("test.attrs"), retry_after=0.0)
    with caplog.at_level(logging.DEBUG, logger="test.attrs"):
        pub.update({"ivrkit.flow": "bank", "ivrkit.state": "main"})
        await settle()
        server.gate.set()  # the first try fails
        await settle()
        assert "server said no" in caplog.text and "trying again" in caplog.text
    assert server.received == [{"ivrkit.flow": "bank", "ivrkit.state": "main"}] * 2  # the same values again
    server.fail = False
    pub.update({"ivrkit.state": "sales"})  # while the retry is in flight: it goes next
    server.gate.set()
    await settle()
    server.gate.set()
    await settle()
    assert server.received[2:] == [{"ivrkit.state": "sales"}]
    assert pub._task is not None and pub._task.done()
    await pub.aclose()


async def test_after_repeated_failures_the_values_go_out_with_the_next_update(caplog: pytest.LogCaptureFixture) -> None:
    server = Server(fail=True)
    pub = AttributePublisher(server.publish, logging.getLogger("test.attrs"), retry_after=0.0)
    with caplog.at_level(logging.DEBUG, logger="test.attrs"):
        pub.update({"ivrkit.flow": "bank"})
        for _ in range(RETRIES + 1):
            await settle()
            server.gate.set()
        await settle()
        assert pub._task is not None and pub._task.done()  # it gave up for now
        assert f"failed {RETRIES + 1} times in a row" in caplog.text
    server.fail = False
    pub.update({"ivrkit.state": "main"})
    await settle()
    server.gate.set()
    await settle()
    assert len(server.received) == RETRIES + 2
    assert server.received[-1] == {"ivrkit.flow": "bank", "ivrkit.state": "main"}
    await pub.aclose()


async def test_aclose_ends_a_publish_in_flight_and_ignores_later_updates() -> None:
    server = Server()
    pub = AttributePublisher(server.publish, logging.getLogger("test"))
    pub.update({"ivrkit.state": "main"})
    await settle()
    task = pub._task
    assert task is not None and not task.done()
    await pub.aclose()
    assert task.cancelled()
    pub.update({"ivrkit.state": "late"})
    assert pub._task is None
    assert server.received == [{"ivrkit.state": "main"}]


def test_the_state_is_published_with_whether_its_keys_are_sensitive() -> None:
    """The dial pad masks the keys it lists exactly while `ivrkit.sensitive` is "true"."""
    from ivrkit.flow.loader import load_flow_text
    from ivrkit.livekit.attributes import sensitive_states, state_attributes

    flow = load_flow_text("""\
start: main
states:
  main:
    menu: {prompt: "1 for the PIN, 2 for the account.", options: {"1": pin, "2": account}}
  pin:
    collect: {prompt: "PIN?", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: main
  account:
    collect: {prompt: "Account?", into: account, max_digits: 8}
    next: main
""", "t.yaml")
    sensitive = sensitive_states(flow)
    assert sensitive == {"pin"}
    assert state_attributes("pin", sensitive) == {"ivrkit.state": "pin", "ivrkit.sensitive": "true"}
    assert state_attributes("account", sensitive) == {"ivrkit.state": "account", "ivrkit.sensitive": "false"}
    assert state_attributes("main", sensitive)["ivrkit.sensitive"] == "false"


async def test_progress_hooks_show_the_flow_then_each_state_with_the_edge_that_led_there() -> None:
    """A real call on the VirtualClock: what the worker publishes, update by update."""
    flow = load_flow_text(EVERY_EDGE, "every.yaml")
    shown: list[dict[str, str]] = []
    async with FlowTester(FlowMachine(flow), hooks=progress_hooks(flow, shown.append)) as t:
        await t.press("1")
        await t.press("1234")  # the sensitive PIN
        await t.press("1")  # confirm
        await t.advance(30)
    assert shown[0] == {FLOW_ATTRIBUTE: "every-edge"}
    moves = [(s[STATE_ATTRIBUTE], s[EDGE_ATTRIBUTE]) for s in shown[1:]]
    assert moves[:5] == [
        ("main", "_ivrkit_start:start"), ("pin", "main:key:1"), ("lookup", "pin:collected"),
        ("route", "lookup:next"), ("agent", "route:goto:1"),
    ]
    graph = build_graph(flow)
    assert {edge for _, edge in moves} <= {e.id for e in graph.edges}  # every id names an edge of the picture
    assert all(set(s) == {STATE_ATTRIBUTE, SENSITIVE_ATTRIBUTE, EDGE_ATTRIBUTE} for s in shown[1:])
    assert [s[SENSITIVE_ATTRIBUTE] for s in shown[1:3]] == ["false", "true"]  # the PIN entry masks keys
    assert not any("1234" in value for s in shown for value in s.values())  # the PIN never reaches the room


async def test_a_move_no_edge_stands_for_publishes_an_empty_edge() -> None:
    flow = load_flow_text("""
start: a
states:
  a: {run: {hook: tests.graph.hooks:lookup, sets: [balance]}, say: "B {balance}.", hangup: true}
""")
    shown: list[dict[str, str]] = []
    async with FlowTester(FlowMachine(flow), hooks=progress_hooks(flow, shown.append), variables={"pin": "9999"}) as t:
        await t.advance(10)
    # The hook failed and the flow names no error state: the built-in apology, along no drawn edge.
    assert shown[-1] == {STATE_ATTRIBUTE: BUILTIN_ERROR, SENSITIVE_ATTRIBUTE: "false", EDGE_ATTRIBUTE: ""}


def test_what_the_call_listens_for_is_shown_in_the_flows_words_and_digit_counts() -> None:
    """The dial pad tells its user when to speak, and what the state takes."""
    from ivrkit.channel import Listen
    from ivrkit.livekit.attributes import LISTENING_ATTRIBUTE, listening_attributes

    def shown(request: Listen | None) -> str:
        return listening_attributes(request)[LISTENING_ATTRIBUTE]

    assert shown(None) == ""  # keys only: the page says so
    assert shown(Listen(phrases=("billing", "bills", "lost card"))) == "billing, bills, lost card"
    assert shown(Listen(digits=True, min_digits=4, max_digits=4, sensitive=True)) == "4 digits"
    assert shown(Listen(digits=True, min_digits=1, max_digits=1)) == "1 digit"
    assert shown(Listen(phrases=("yes", "no"), digits=True)) == "yes, no; 1-20 digits"
