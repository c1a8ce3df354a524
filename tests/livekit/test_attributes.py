"""The agent's participant attributes: latest value wins, the call never waits, nothing leaks.

The real `set_attributes` round trip is covered end to end by tests/e2e/test_dialpad.py (the
page shows the state and prompt the worker publishes); here the publish function is ours.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivrkit.livekit.attributes import AttributePublisher


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


async def test_a_failed_publish_is_logged_and_the_next_update_still_goes_out(caplog: pytest.LogCaptureFixture) -> None:
    server = Server(fail=True)
    pub = AttributePublisher(server.publish, logging.getLogger("test.attrs"))
    with caplog.at_level(logging.DEBUG, logger="test.attrs"):
        pub.update({"ivrkit.state": "main"})
        await settle()
        server.gate.set()
        await settle()
        assert "server said no" in caplog.text
    server.fail = False
    pub.update({"ivrkit.state": "sales"})
    await settle()
    server.gate.set()
    await settle()
    assert server.received[-1] == {"ivrkit.state": "sales"}
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
