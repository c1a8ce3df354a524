"""`ivrkit new NAME`: a flow, its hooks module and a FlowTester test that takes every edge.

What a team copies from on day one, so it shows the habits ivrkit wants kept: every prompt for
no-input and no-match written, an error state, a hook that validates input, a hook that reads
data, a transfer — and tests that reach 100 % flow edge coverage (`pytest --ivr-cov`).

    flows/NAME.yaml              the flow (python_path: ../hooks)
    hooks/NAME_hooks.py          its hooks
    tests/test_NAME.py           FlowTester tests, one per path a caller takes

    pytest.ini                   only when the folder has no pytest configuration yet

Nothing is overwritten: if any of the three exists, nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

FLOW = '''\
# {name}: made by `ivrkit new`. Call it: ivrkit console flows/{name}.yaml
# The keys and what each does: docs/flows.md in ivrkit. Picture: ivrkit graph flows/{name}.yaml
flow: {name}
start: main
python_path: [../hooks]
defaults: {{timeout: 5s, inter_digit_timeout: 3s, retries: 3, terminator: "#"}}
error: sorry

states:
  main:
    menu:
      prompt: >-
        Welcome. For our opening hours, press 1. To check an order, press 2.
        To speak to someone, press 0.
      options: {{"1": hours, "2": order, "0": agent}}
      no_input: "Sorry, I didn't hear a choice."
      no_match: "That is not one of the choices."
      on_max_retries: goodbye

  hours:
    run: {{hook: {module}:opening_hours, sets: [hours]}}
    say: "We are open {{hours}}."
    next: main

  order:
    collect:
      prompt: "Please enter your six digit order number, then press pound."
      into: order
      min_digits: 6
      max_digits: 6
      validate: {module}:order_exists
      no_input: "Please enter your order number."
      no_match: "I could not find that order."
      on_max_retries: main
    next: status

  status:
    run: {{hook: {module}:order_status, sets: [status]}}
    say: "Your order is {{status}}."
    next: goodbye

  agent:
    transfer: {{to: "sip:support@pbx.example.com", announce: "Connecting you now."}}

  goodbye: {{say: "Thank you for calling. Goodbye.", hangup: true}}
  sorry: {{say: "Sorry, something went wrong. Please call again later.", hangup: true}}
'''

HOOKS = '''\
"""Hooks for flows/{name}.yaml. Replace the toy data with your systems; keep them quick (each
runs under the state's hook_timeout) and return a mapping of variables, a bool (validate), or
a state name."""

from __future__ import annotations

from typing import Any

ORDERS = {{"123456": "on its way", "654321": "delivered"}}


def opening_hours(ctx: Any) -> dict[str, str]:
    return {{"hours": "Monday to Friday, nine to five"}}


def order_exists(ctx: Any, digits: str) -> bool:
    return digits in ORDERS


def order_status(ctx: Any) -> dict[str, str]:
    return {{"status": ORDERS[str(ctx.variables["order"])]}}
'''

TESTS = '''\
"""FlowTester tests for flows/{name}.yaml: one per path a caller takes, on virtual time.

    pytest {test_path} --ivr-cov     # which edges of the flow these tests take (all of them)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrkit.testing import FakeChannel, FlowTester, VirtualClock

pytestmark = pytest.mark.asyncio
FLOW = Path(__file__).resolve().parent.parent / "flows" / "{name}.yaml"


async def test_opening_hours_then_back_to_the_menu() -> None:
    async with FlowTester(FLOW) as t:
        t.expect_prompt("Welcome.")
        await t.press("1")
        t.expect_prompt("We are open Monday to Friday, nine to five.")
        await t.until_input()
        t.expect_state("main")


async def test_order_status() -> None:
    async with FlowTester(FLOW) as t:
        await t.press("2")
        t.expect_prompt("six digit order number")
        await t.press("123456")
        t.expect_prompt("Your order is on its way.")
        await t.advance(30)
        t.expect_prompt("Goodbye.")
        t.expect_ended("hangup")


async def test_order_number_silence_too_short_and_unknown_return_to_the_menu() -> None:
    async with FlowTester(FLOW) as t:
        await t.press("2")
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Please enter your order number.")
        await t.until_input()
        await t.press("12#")
        t.expect_prompt("I could not find that order.")
        await t.until_input()
        await t.press("999999")
        t.expect_prompt("I could not find that order.")
        await t.until_input()
        await t.press("000000")  # the third no-match: on_max_retries
        t.expect_state("main")


async def test_someone_to_speak_to() -> None:
    async with FlowTester(FLOW) as t:
        await t.press("0")
        t.expect_prompt("Connecting you now.")
        await t.advance(30)
        assert t.channel.transfers == ["sip:support@pbx.example.com"]
        t.expect_ended("transfer")


async def test_silence_and_wrong_keys_end_the_call_politely() -> None:
    async with FlowTester(FLOW) as t:
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Sorry, I didn't hear a choice.")
        await t.until_input()
        await t.press("9")
        t.expect_prompt("That is not one of the choices.")
        await t.until_input()
        await t.advance(5)
        await t.until_input()
        await t.advance(5)  # the third no-input: on_max_retries
        t.expect_prompt("Thank you for calling. Goodbye.")


async def test_a_failed_transfer_apologises() -> None:
    async with FlowTester(FLOW, channel=FakeChannel(VirtualClock(), fail_transfer=True)) as t:
        await t.press("0")
        await t.advance(30)
        t.expect_prompt("Sorry, something went wrong.")
        t.expect_ended("hangup")
'''


PYTEST_INI = """\
# Made by `ivrkit new` (the folder had no pytest configuration). The tests are async
# (pytest-asyncio, which `pip install ivrkit[test]` brings).
[pytest]
asyncio_default_fixture_loop_scope = function
"""
PYTEST_CONFIGS = ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


@dataclass(frozen=True, slots=True)
class Scaffold:
    """The three files of a new flow, relative to the folder they go in."""

    flow: Path
    hooks: Path
    test: Path
    ini: Path | None = None  # set by `write` when it wrote a pytest.ini

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        return self.flow, self.hooks, self.test


def plan(name: str) -> Scaffold:
    """Where `name`'s files go. Raises ValueError for a name that is not lower-case letters,
    digits, `-` and `_`, starting with a letter (it names a file and a Python module)."""
    if not NAME.match(name):
        raise ValueError(f"{name!r}: a flow name is lower-case letters, digits, - and _, starting with a letter "
                         "(it becomes a file and a Python module name), e.g. pizza-orders")
    module = name.replace("-", "_")
    return Scaffold(Path("flows") / f"{name}.yaml", Path("hooks") / f"{module}_hooks.py", Path("tests") / f"test_{module}.py")


def write(name: str, directory: Path) -> Scaffold:
    """Write `name`'s three files under `directory`. Raises FileExistsError (naming every file
    that exists) before writing anything."""
    files = plan(name)
    taken = [str(directory / p) for p in files.paths if (directory / p).exists()]
    if taken:
        raise FileExistsError(f"not overwriting {', '.join(taken)}")
    module = files.hooks.stem
    texts = (FLOW.format(name=name, module=module), HOOKS.format(name=name),
             TESTS.format(name=name, test_path=files.test.as_posix()))
    for path, text in zip(files.paths, texts):
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(text)
    if not any((directory / name).exists() for name in PYTEST_CONFIGS):
        (directory / "pytest.ini").write_text(PYTEST_INI)
        return Scaffold(*files.paths, ini=Path("pytest.ini"))
    return files
