"""`ivrkit console` / `python -m ivrkit.console`: the embedded demo it calls by default, and the
real command in a subprocess and on a pty (real time, kept short)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import subprocess
import sys
import termios
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.console.helpers import ROOT
from tests.texts import trace_texts


def test_embedded_demo_passes_every_check() -> None:
    from importlib import resources

    from ivrkit.flow.loader import check_flow

    with resources.as_file(resources.files("ivrkit").joinpath("defaults/demo.yaml")) as path:
        result = check_flow(path)
    assert result.issues == ()
    flow = result.flow
    assert flow is not None
    kinds = {state.kind for state in flow.states.values()}
    assert {"menu", "collect", "goto", "transfer", "hangup", "say"} <= kinds
    pin = flow.states["pin"].collect
    assert pin is not None and pin.sensitive and pin.confirm is not None
    assert flow.states["pin"].settings.terminator == "#"
    assert all(state.run is None for state in flow.states.values())  # hook-free


def _console(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivrkit.console", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_subprocess_demo_call_with_key_script_and_trace(tmp_path: Path) -> None:
    trace = tmp_path / "call.jsonl"
    # Menu 1 (PIN), PIN 4321 + #, confirm with 1, then 9 (goodbye) in the main menu.
    proc = _console(
        "--fast", "--no-audio", "--keys", "1,wait 50ms,4321#,wait 50ms,1,wait 50ms,9", "--trace", str(trace),
        "--caller", "+15550100",
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    for expected in (
        "calling ivrkit-demo (the built-in demo)",
        "state welcome",
        "prompt: Welcome to the ivrkit demo line.",
        "state main",
        "state pin (collect, sensitive)",
        "prompt: You entered ****",
        "state pin_ok",
        "state goodbye",
        "prompt: Thank you for trying ivrkit. Goodbye.",
        "call ended: the flow hung up",
    ):
        assert expected in out, f"{expected!r} missing from:\n{out}"
    assert out.index("state pin (") < out.index("state pin_ok") < out.index("state goodbye")
    assert "4321" not in out and "4 3 2 1" not in out
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert records[0]["kind"] == "call_start" and records[-1]["kind"] == "call_end"
    assert records[0]["caller_number"] == "+15550100" and records[0]["called_number"] == "ivrkit"
    assert "4321" not in trace_texts(trace)
    states = [r["state"] for r in records if r["kind"] == "state"]
    assert states[:3] == ["welcome", "main", "pin"] and states[-1] == "goodbye"


def test_subprocess_prints_the_path_of_states_unless_told_not_to() -> None:
    keys = "1,wait 50ms,4321#,wait 50ms,1,wait 50ms,9"
    proc = _console("--fast", "--no-audio", "--keys", keys)
    assert proc.returncode == 0, proc.stderr
    paths = [line.split("] ", 1)[1] for line in proc.stdout.splitlines() if "] path: " in line]
    assert paths[2] == "path: welcome → main → pin  (key 1)"
    assert paths[-1] == "path: welcome → main → pin → check_pin → pin_ok → main → goodbye  (key 9)"
    assert "4321" not in proc.stdout
    quiet = _console("--fast", "--no-audio", "--no-path", "--keys", keys)
    assert quiet.returncode == 0 and "path:" not in quiet.stdout and "state goodbye" in quiet.stdout


def test_subprocess_keys_from_stdin_lines_and_invalid_input() -> None:
    proc = _console("--fast", "--no-audio", stdin="2\nwait 100ms\nx\n")
    assert proc.returncode == 2
    assert "state about" in proc.stdout
    assert "<stdin>: line 3, item 1: 'x' is not keys, a wait or hangup" in proc.stderr


def test_subprocess_record_writes_the_call_audio(tmp_path: Path) -> None:
    wav_path = tmp_path / "call.wav"
    proc = _console("--no-audio", "--record", str(wav_path), "--keys", "wait 1500ms,hangup")
    assert proc.returncode == 0, proc.stderr
    assert "call ended: caller hung up" in proc.stdout
    assert "prompts that read back sensitive values are bleeped" in proc.stdout
    with wave.open(str(wav_path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    duration = len(samples) / 16000
    # the file covers the call as its own clock saw it (not wall time: this machine may be busy)
    ended_at = float(re.search(r"\[\s*([\d.]+)\] call ended: caller hung up", proc.stdout).group(1))  # type: ignore[union-attr]
    assert ended_at >= 1.5 and abs(duration - ended_at) < 0.1, (duration, proc.stdout)
    assert np.abs(samples[: 16000]).max() > 3000  # the welcome prompt was spoken into the file


def test_subprocess_max_duration_hangs_up_a_call_nobody_ends() -> None:
    proc = _console("--no-audio", "--keys", "1", "--max-duration", "1")
    assert proc.returncode == 0, proc.stderr
    assert "state pin" in proc.stdout and "call ended: caller hung up (--max-duration)" in proc.stdout


def test_subprocess_bad_options_flow_and_script() -> None:
    bad_script = _console("--keys", "1,wiat 2s")
    assert bad_script.returncode == 2
    assert "--keys: item 2: 'wiat 2s' is not keys, a wait or hangup" in bad_script.stderr
    both = _console("--fast", "--record", "x.wav")
    assert both.returncode == 2 and "--fast and --record cannot be combined" in both.stderr
    broken = _console("flows/does-not-exist.yaml")
    assert broken.returncode == 1 and "does-not-exist.yaml" in broken.stderr
    nowhere = _console("--record", "no/such/dir/call.wav")
    assert nowhere.returncode == 2 and "the folder no/such/dir does not exist" in nowhere.stderr


def test_subprocess_a_failing_hook_ends_on_the_error_path_with_exit_3(tmp_path: Path) -> None:
    (tmp_path / "bad_hooks.py").write_text("def lookup(ctx):\n    raise RuntimeError('backend down')\n")
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "start: main\npython_path: [.]\nstates:\n"
        "  main: {run: {hook: bad_hooks:lookup, sets: [x]}, say: 'Value {x}.', hangup: true}\n"
    )
    proc = _console(str(flow), "--fast", "--no-audio", "--keys", "1")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Sorry, something went wrong" in proc.stdout
    assert "state (the built-in error path" in proc.stdout
    assert "call over: ended by error in the built-in error path" in proc.stdout
    assert "backend down" in proc.stderr and "f.yaml:4:" in proc.stderr


@pytest.mark.parametrize(("hangup", "why"), [(b"q", "caller hung up"), (b"\x03", "(Ctrl-C)"), (b"\x04", "(Ctrl-D)")])
def test_pty_keys_act_at_once_and_the_terminal_is_restored(hangup: bytes, why: str) -> None:
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivrkit.console", "--fast", "--no-audio"],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, close_fds=True,
        # Its own session with the pty as controlling terminal, so Ctrl-C raises SIGINT in it.
        start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    seen = ""

    def read_until(text: str) -> None:
        nonlocal seen
        while text not in seen:
            ready, _, _ = select.select([master], [], [], 20)
            assert ready, f"timed out waiting for {text!r}; got:\n{seen}"
            seen += os.read(master, 4096).decode(errors="replace")

    try:
        read_until("state main")
        os.write(master, b"x\x1b[A")  # no Enter: cbreak mode delivers each key at once
        read_until("'x' is not a phone key (not sent)")
        read_until("special key ignored")
        os.write(master, b"1")
        read_until("state pin")
        os.write(master, hangup)
        read_until("call ended: caller hung up")
        read_until(why)
        assert proc.wait(timeout=20) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def test_pty_typed_speech_after_a_quote_is_said_on_enter() -> None:
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivrkit.console", "flows/press_or_say.yaml", "--fast", "--no-audio"],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, close_fds=True,
        start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    seen = ""

    def read_until(text: str) -> None:
        nonlocal seen
        while text not in seen:
            ready, _, _ = select.select([master], [], [], 20)
            assert ready, f"timed out waiting for {text!r}; got:\n{seen}"
            seen += os.read(master, 4096).decode(errors="replace")

    try:
        read_until("waiting for a choice: a key or words")
        os.write(master, b'"billx\x7fing')  # q, digits, backspace: all part of the words until Enter
        read_until("say: type the words")
        os.write(master, b"\r")
        read_until('said "billing"   = 1')
        read_until("state account")
        os.write(master, b'"oops\x1b')  # Esc: never mind
        read_until("say: cancelled")
        os.write(master, b"q")
        read_until("call ended: caller hung up")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def test_the_parser_hooks_into_the_ivrkit_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`add_console_parser` follows ivrkit.cli's convention (args_type/handler/convert), so
    wiring it is one entry in `cli.COMMANDS`; run through `cli.main` for real."""
    from ivrkit import cli
    from ivrkit.console.cli import add_console_parser

    if add_console_parser not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, add_console_parser])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # never the developer's terminal (pytest -s)
    code = cli.main(["console", "--fast", "--no-audio", "--keys", "9", "--set", "tier=gold"])
    out = capsys.readouterr().out
    assert code == 0
    assert "state goodbye" in out and "call ended: the flow hung up" in out


def test_the_console_needs_no_livekit_and_no_sound_library_to_start() -> None:
    """No server, no API key: importing the console pulls in neither livekit nor sounddevice
    (the sound card is opened lazily, and its absence is reported, not fatal)."""
    code = (
        "import sys, ivrkit.console, ivrkit.console.cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('livekit', 'sounddevice')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_the_demo_says_why_it_leaves_a_menu_and_plays_every_retry_prompt() -> None:
    """retries: 3 with two no_input prompts: both play; the third failure is explained."""
    from ivrkit.flow.loader import load_flow
    from ivrkit.testing import FlowTester

    async with FlowTester(load_flow(ROOT / "ivrkit" / "defaults" / "demo.yaml")) as t:
        for _ in range(3):
            await t.until_input()
            await t.advance(5)
        t.expect_prompt("Sorry, I didn't hear a choice.")
        t.expect_prompt("Please press a key on your keyboard now.")
        t.expect_prompt("Sorry, I did not get a choice.")
        await t.advance(10)
        t.expect_ended("hangup")
    async with FlowTester(load_flow(ROOT / "ivrkit" / "defaults" / "demo.yaml")) as t:
        await t.press("1")
        await t.press("4321#")
        await t.until_input()
        await t.advance(5)  # no answer to "press 1 to confirm"
        t.expect_prompt("Please press 1 to confirm your PIN, or 2 to enter it again.")
        assert "Please type your PIN now, then press pound." not in t.prompts


def test_the_banner_names_fast_and_set_at_a_keyboard_only() -> None:
    from ivrkit.console.cli import ConsoleOptions, banner

    assert banner(ConsoleOptions(), "demo", interactive=False) == ["calling demo (the built-in demo); keys 0-9 * # A-D, q hangs up"]
    first, tip = banner(ConsoleOptions(flow="flows/support.yaml"), "support", interactive=True)
    assert first.startswith("calling support (flows/support.yaml)")
    assert "--fast makes prompts instant" in tip and "--set NAME=VALUE" in tip and "--help" in tip
    assert banner(ConsoleOptions(fast=True, variables={"now": "x"}), "demo", interactive=True)[1:] == []


def test_console_help_shows_fast_and_set_examples() -> None:
    proc = _console("--help")
    assert proc.returncode == 0
    assert "--set now=2026-12-07T10:00" in proc.stdout and "ivrkit console --fast" in proc.stdout


def test_subprocess_press_or_say_takes_typed_speech_from_stdin_lines() -> None:
    proc = _console("flows/press_or_say.yaml", "--fast", "--no-audio",
                    stdin='"billing please\nwait 50ms\nsay: four three two one\nwait 50ms\nsay: yes\n')
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for expected in ('listening for: billing, bills', 'said "billing please"   = 1', "path: main → account  (said 1)",
                     'said "four three two one"   = 4321', "prompt: Your account 4 3 2 1 has no payment due."):
        assert expected in out, f"{expected!r} missing from:\n{out}"
