"""`ivrkit console --far-end`: a dial reaches a scripted legacy IVR (its prompts shown as it says
them, the flow's keys answered), or, without one, a silent party — so `amd:` and `navigate:`
flows take their own paths offline instead of the error path. On the virtual clock."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ivrkit.console.channel import ConsoleChannel
from ivrkit.far_end_file import load_far_end
from ivrkit.flow.loader import load_flow, load_flow_text
from ivrkit.testing import FlowTester, VirtualClock
from tests.console.helpers import ROOT

FLOWS = ROOT / "flows"


def console(far: bool) -> tuple[ConsoleChannel, io.StringIO]:
    out = io.StringIO()
    ivr = load_far_end(FLOWS / "far_ends" / "acme_billing.yaml") if far else None
    return ConsoleChannel(clock=VirtualClock(), out=out, seconds_per_char=0.0, far_end=ivr), out


@pytest.mark.parametrize(("account", "ends"), [("4321", "We found your balance."),
                                               ("1234", "The billing line did not accept that.")])
async def test_a_navigation_flow_against_the_far_end_file_shows_what_it_says_and_the_keys(account: str,
                                                                                          ends: str) -> None:
    channel, out = console(far=True)
    async with FlowTester(load_flow(FLOWS / "navigate.yaml"), channel=channel) as t:
        for key in account:
            await t.press(key)
        await t.advance(60)
    text = out.getvalue()
    assert "dial +15550100: answered at once by the scripted far end (--far-end)" in text
    said = text.index("far end says: Welcome to Acme. For payments press 1. For billing press 2.")
    sent = text.index("sent DTMF 2")
    assert said < sent < text.index("far end says: Please enter your account number, followed by pound.")
    assert "sent DTMF *" in text and f"sent DTMF {account[0]}" not in text  # the account is masked
    assert ends in text.rsplit("prompt:", 1)[1] and channel.ended is not None
    assert channel.far_end is not None and [k[0] for k in channel.far_end.keys] == ["2", *account, "#"]


AMD = """
start: out
states:
  out: {dial: {to: "+15550100", amd: true}, next: which}
  which:
    goto:
      - {if: "amd == 'silence'", then: nobody}
      - {else: someone}
  nobody: {say: "Nobody spoke.", hangup: true}
  someone: {say: "Someone answered.", hangup: true}
"""


async def test_without_a_far_end_a_dial_is_answered_by_silence_not_the_error_path() -> None:
    channel, out = console(far=False)
    async with FlowTester(load_flow_text(AMD), channel=channel) as t:
        await t.advance(10)
    assert "answered at once by silence (no --far-end)" in out.getvalue()
    t.expect_variable("amd", "silence")
    assert "Nobody spoke." in out.getvalue().rsplit("prompt:", 1)[1]
    channel, out = console(far=False)
    async with FlowTester(load_flow(FLOWS / "navigate.yaml"), channel=channel) as t:
        await t.press("4321")
        await t.advance(30)
    t.expect_variable("navigate_failed", "step 1: no 'for billing' heard within 20 s")
    assert "did not answer as expected" in out.getvalue().rsplit("prompt:", 1)[1]


def test_the_cli_takes_the_file_and_reports_its_mistakes(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "far.yaml"
    bad.write_text("start: mian\nmenus:\n  main: {say: Hi}\n")
    run = subprocess.run([sys.executable, "-m", "ivrkit.console", str(FLOWS / "navigate.yaml"), "--far-end", str(bad),
                          "--no-audio"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 1 and f"{bad}:1:8: error: no menu 'mian'" in run.stderr, run.stderr
    short = tmp_path / "short.yaml"
    short.write_text('start: main\nmenus:\n  main: {say: "For billing press 2.", keys: {"2": billing}}\n'
                     '  billing: {say: "Enter your account number."}\n')
    flow = tmp_path / "f.yaml"
    flow.write_text("start: out\nstates:\n  out: {dial: '+15550100', next: drive}\n  drive:\n    navigate:\n"
                    "      steps: [{expect: {say: [for billing]}}, {send: '2'}, {expect: {say: [account number]}}]\n"
                    "    next: done\n  done: {say: Done., hangup: true}\n")
    run = subprocess.run([sys.executable, "-m", "ivrkit.console", str(flow), "--far-end", str(short), "--no-audio",
                          "--fast"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "far end says: For billing press 2." in run.stdout and "sent DTMF 2" in run.stdout
    assert "far end says: Enter your account number." in run.stdout and "Done." in run.stdout
