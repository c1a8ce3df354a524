"""ivrkit.metrics: real calls (FlowTester, VirtualClock) counted into a fresh Prometheus registry —
the values each series reads back, and no collected digit string in any label."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ivrkit.channel import CallerInfo
from ivrkit.flow.loader import load_flow
from ivrkit.hooks import HookContext
from ivrkit.metrics import IvrMetrics
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock

PIN = "4321"
ACCOUNT = "98765"
CALLER = CallerInfo(number="+15551234567", called_number="+18005550100", call_id="SCL_metrics")

FLOW = """\
flow: m
start: main
defaults: {timeout: 2s, inter_digit_timeout: 1s, retries: 2, terminator: "#"}
states:
  main:
    menu:
      prompt: "Press 1 for your account, 2 for an agent, 3 to leave."
      options: {"1": account, "2": agent, "3": bye, "4": broken}
      no_input: "Sorry?"
      no_match: "Not a choice."
      on_max_retries: bye
  account:
    collect:
      prompt: "Your account number."
      into: account
      min_digits: 5
      max_digits: 5
    next: pin
  pin:
    collect:
      prompt: "Your PIN, then pound."
      into: pin
      min_digits: 4
      max_digits: 8
      sensitive: true
      validate: tests.test_metrics:check_pin
      no_match: "Wrong PIN."
      on_max_retries: bye
    next: balance
  balance:
    run: {hook: tests.test_metrics:lookup, sets: [balance]}
    say: "Your balance is {balance}."
    next: main
  broken:
    run: {hook: tests.test_metrics:stuck, timeout: 3s}
    next: main
  agent:
    transfer: "sip:agents@pbx.example.com"
  bye:
    say: "Goodbye."
    hangup: true
"""


def check_pin(ctx: HookContext, digits: str) -> bool:
    return digits == PIN


def lookup(ctx: HookContext) -> dict[str, Any]:
    return {"balance": 42}


async def stuck(ctx: HookContext) -> None:
    await asyncio.Event().wait()  # never returns: the hook runs past its limit


def _flow(tmp_path: Path) -> Any:
    path = tmp_path / "m.yaml"
    path.write_text(FLOW)
    return load_flow(path)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_call_is_counted_by_state_key_collect_hook_and_where_the_caller_hung_up(tmp_path: Path) -> None:
    flow, registry = _flow(tmp_path), CollectorRegistry()
    metrics = IvrMetrics(registry)
    sink = metrics.call(flow)
    async with FlowTester(flow, caller=CALLER, metrics=sink) as t:
        await t.until_input()
        assert _value(registry, "ivrkit_calls_started_total", flow="m") == 0  # counted, not published yet
        sink.flush()  # what the worker does every second
        assert _value(registry, "ivrkit_calls_active", flow="m") == 1
        assert _value(registry, "ivrkit_state_entries_total", flow="m", state="main") == 1
        await t.press("7")  # not an option
        await t.until_input()
        await t.press("1")
        await t.until_input()
        await t.press(ACCOUNT)
        await t.until_input()
        await t.press("1111#")  # a wrong PIN: validation fails, asked again
        await t.until_input()
        await t.press(PIN + "#")
        await t.until_input()  # balance said, back in the main menu
        t.expect_state("main")
        await t.press("1")
        await t.until_input()
        await t.press("12")  # hangs up in the middle of the account number
    t.expect_ended("caller_hangup")
    v = lambda name, **labels: _value(registry, name, flow="m", **labels)  # noqa: E731

    assert v("ivrkit_calls_started_total") == 1
    assert v("ivrkit_calls_ended_total", ended_by="caller_hangup") == 1
    assert v("ivrkit_calls_active") == 0
    assert v("ivrkit_state_entries_total", state="main") == 2
    assert v("ivrkit_state_entries_total", state="account") == 2
    assert v("ivrkit_state_entries_total", state="balance") == 1
    assert v("ivrkit_caller_hangups_total", state="account") == 1
    assert v("ivrkit_caller_hangups_total", state="main") == 0
    assert v("ivrkit_menu_choices_total", state="main", key="1") == 2
    assert v("ivrkit_menu_invalid_keys_total", state="main", key="7") == 1
    assert v("ivrkit_no_match_total", state="main") == 1
    assert v("ivrkit_no_match_total", state="pin") == 1
    assert v("ivrkit_validation_failures_total", state="pin") == 1
    assert v("ivrkit_collects_total", state="account", reason="max_digits") == 1
    assert v("ivrkit_collects_total", state="account", reason="hangup") == 1
    assert v("ivrkit_collects_total", state="pin", reason="terminator") == 2
    assert v("ivrkit_hook_duration_seconds_count", hook="tests.test_metrics:check_pin") == 2
    assert v("ivrkit_hook_duration_seconds_count", hook="tests.test_metrics:lookup") == 1
    assert v("ivrkit_hook_failures_total", hook="tests.test_metrics:lookup", outcome="raised") == 0
    # every used key that a prompt answered: 7 (no-match), 1, the account's 5th digit, both PIN
    # pounds, the second 1 — each answered at once on the virtual clock
    assert v("ivrkit_key_to_prompt_seconds_count", state="main") == 1
    assert v("ivrkit_key_to_prompt_seconds_count", state="account") == 2
    assert v("ivrkit_key_to_prompt_seconds_count", state="pin") == 2  # the PIN prompt, the "Wrong PIN."
    assert v("ivrkit_key_to_prompt_seconds_count", state="balance") == 1
    assert v("ivrkit_key_to_prompt_seconds_sum", state="balance") == 0.0


async def test_no_collected_digits_nor_caller_number_reach_any_label(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = IvrMetrics(registry)
    flow = _flow(tmp_path)
    async with FlowTester(flow, caller=CALLER, metrics=metrics.call(flow)) as t:
        await t.until_input()
        await t.press("1")
        await t.until_input()
        await t.press(ACCOUNT)
        await t.until_input()
        await t.press(PIN + "#")
        await t.until_input()
        t.expect_variable("pin", PIN)
        t.expect_variable("account", ACCOUNT)
    text = generate_latest(registry).decode()
    values = {value for family in text_string_to_metric_families(text)
              for sample in family.samples for value in sample.labels.values()}
    assert {"m", "main", "account", "pin", "balance", "1"} <= values  # the call was counted
    for secret in (PIN, ACCOUNT, CALLER.number, CALLER.called_number, CALLER.call_id):
        assert secret is not None
        assert not any(secret in value for value in values), (secret, sorted(values))
        assert secret not in text


async def test_key_to_prompt_is_the_keys_arrival_to_the_prompt_that_answered_it(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = IvrMetrics(registry)
    flow = load_flow(_write(tmp_path, FLOW.replace("defaults: {", "defaults: {barge_in: false, ")))
    channel = FakeChannel(VirtualClock(), seconds_per_char=0.1)
    async with FlowTester(flow, channel=channel, metrics=metrics.call(flow)) as t:
        await t.advance(1.0)  # the menu prompt (53 characters: 5.3 s) plays and cannot be cut short
        await t.press("1")  # typed ahead: used when the prompt ends, 4.3 s later
        await t.until_input()
        t.expect_state("account")
    assert _value(registry, "ivrkit_key_to_prompt_seconds_count", flow="m", state="account") == 1
    # a key typed ahead is used before the menu waits (no `wait` record first): still a choice
    assert _value(registry, "ivrkit_menu_choices_total", flow="m", state="main", key="1") == 1
    assert _value(registry, "ivrkit_key_to_prompt_seconds_sum", flow="m", state="account") == pytest.approx(4.3)
    assert _value(registry, "ivrkit_key_to_prompt_seconds_bucket", flow="m", state="account", le="2.5") == 0
    assert _value(registry, "ivrkit_key_to_prompt_seconds_bucket", flow="m", state="account", le="5.0") == 1


async def test_a_transfer_and_a_hook_past_its_limit_are_counted_by_outcome(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = IvrMetrics(registry)
    flow = _flow(tmp_path)
    async with FlowTester(flow, metrics=metrics.call(flow)) as t:
        await t.until_input()
        await t.press("4")  # the stuck hook: 3 s limit, then the built-in error path
        await t.advance(3.5)
        await t.advance(10)
    t.expect_ended("error")
    async with FlowTester(flow, metrics=metrics.call(flow)) as t:
        await t.until_input()
        await t.press("2")
        await t.until_input()
    t.expect_ended("transfer")
    async with FlowTester(flow, channel=FakeChannel(fail_transfer=True), metrics=metrics.call(flow)) as t:
        await t.until_input()
        await t.press("2")
        await t.advance(10)
    v = lambda name, **labels: _value(registry, name, flow="m", **labels)  # noqa: E731
    assert v("ivrkit_hook_failures_total", hook="tests.test_metrics:stuck", outcome="timeout") == 1
    assert v("ivrkit_hook_duration_seconds_sum", hook="tests.test_metrics:stuck") == 3.0
    assert v("ivrkit_errors_total", state="broken") == 1
    assert v("ivrkit_transfers_total", state="agent", outcome="connected") == 1
    assert v("ivrkit_transfers_total", state="agent", outcome="failed") == 1
    assert v("ivrkit_calls_ended_total", ended_by="transfer") == 1
    assert v("ivrkit_calls_ended_total", ended_by="error") == 2
    assert v("ivrkit_calls_started_total") == 3
    assert v("ivrkit_calls_active") == 0


class TransferNeverAnswered(FakeChannel):
    """A transfer still under way (a PBX slow to take the REFER) when the worker stops."""

    async def transfer(self, to: str, *, play_dialtone: bool = False) -> None:
        await asyncio.Event().wait()


async def test_a_transfer_cut_short_by_the_worker_stopping_is_not_counted_failed(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = IvrMetrics(registry)
    flow = _flow(tmp_path)
    async with FlowTester(flow, channel=TransferNeverAnswered(), metrics=metrics.call(flow)) as t:
        await t.until_input()
        await t.press("2")
        await t.advance(1)
        t.expect_running()
        t.call.stop("the worker stopped")
        await t.advance(0)
    t.expect_ended("stopped")
    v = lambda name, **labels: _value(registry, name, flow="m", **labels)  # noqa: E731
    assert v("ivrkit_transfers_total", state="agent", outcome="stopped") == 1
    assert v("ivrkit_transfers_total", state="agent", outcome="failed") == 0
    assert v("ivrkit_calls_ended_total", ended_by="stopped") == 1


async def test_retries_used_up_are_counted_once_by_reason(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = IvrMetrics(registry)
    flow = _flow(tmp_path)
    async with FlowTester(flow, metrics=metrics.call(flow)) as t:
        await t.until_input()
        await t.advance(2.5)  # no input, re-prompted
        await t.until_input()
        await t.advance(2.5)  # no input again: retries (2) used up -> bye
        await t.advance(5)
    t.expect_ended("hangup")
    assert _value(registry, "ivrkit_no_input_total", flow="m", state="main") == 2
    assert _value(registry, "ivrkit_retries_exhausted_total", flow="m", state="main", reason="no_input") == 1
    assert _value(registry, "ivrkit_calls_ended_total", flow="m", ended_by="hangup") == 1


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path
