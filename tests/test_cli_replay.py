"""`ivrkit replay`: a console `--trace` replayed from the command line; exit codes, errors as
`ivrkit check` prints them, masked keys refused without their digits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivrkit.cli import main
from tests.texts import trace_texts

ROOT = Path(__file__).resolve().parent.parent
BANK = str(ROOT / "flows" / "bank.yaml")


@pytest.fixture(scope="module")
def console_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real console call (--fast: prompts take no time): account, PIN with the habitual #,
    the balance, then a lost card, then the caller hangs up."""
    path = tmp_path_factory.mktemp("console") / "call.jsonl"
    code = main(["console", BANK, "--fast", "--no-audio", "--trace", str(path),
                 "--keys", "1,12345678#,wait 50ms,4321,wait 50ms,2,wait 50ms,hangup"])
    assert code == 0
    return path


def test_a_console_trace_replays_to_a_match(console_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert "4321" not in trace_texts(console_trace)
    assert main(["replay", str(console_trace), BANK, "--set", "pin=4321"]) == 0
    out = capsys.readouterr().out
    # the count of states and prompts depends on how the real-time console call went on a loaded
    # machine (a key landing before or after a prompt's end); the replay matching it is the point
    assert re.fullmatch(rf"{re.escape(str(console_trace))} replayed against {re.escape(BANK)}: matches "
                        r"\(\d+ states, \d+ prompts, ended by caller hangup in state 'main'\)\n", out), out


def test_a_changed_flow_exits_1_with_the_divergence(console_trace: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    changed = tmp_path / "bank.yaml"
    changed.write_text(Path(BANK).read_text().replace("python_path: [../examples]", f"python_path: [{ROOT / 'examples'}]")
                       .replace('"2": lost_card', '"2": agent'))
    assert main(["replay", str(console_trace), str(changed), "--keys-for", "pin=4321"]) == 1
    out = capsys.readouterr().out
    assert f"{console_trace} replayed against {changed}: diverged (state) at t=" in out
    assert "  recorded: entered state 'lost_card'" in out and "  now:      entered state 'agent'" in out


def test_masked_keys_without_digits_exit_2(console_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(console_trace), BANK]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ivrkit replay: the recorded call has masked keys") and "--set pin=DIGITS" in err


def test_a_broken_flow_or_trace_exits_2(console_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('start: main\nstates:\n  main:\n    menu: {prompt: Hi, options: {"1": mian_menu}}\n'
                   '  main_menu: {say: Bye, hangup: true}\n')
    assert main(["replay", str(console_trace), str(bad)]) == 2
    assert f"{bad}:4:39: error: unknown state 'mian_menu'" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "none.jsonl"), BANK]) == 2
    assert "none.jsonl: cannot read the trace" in capsys.readouterr().err
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"seq": 1, "t": 0, "kind": "state"}\nnot json\n')
    assert main(["replay", str(junk), BANK]) == 2
    assert f"{junk}:2: not JSON" in capsys.readouterr().err
    junk.write_text('{"seq": 1, "t": 0, "kind": "state", "state": "main"}\n')
    assert main(["replay", str(junk), BANK]) == 2
    assert "no call_start record" in capsys.readouterr().err


def test_bad_options_and_help(console_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["replay", str(console_trace), BANK, "--keys-for", "pin=12x"])
    assert e.value.code == 2 and "write STATE=KEYS with keys 0-9 * # A-D" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = capsys.readouterr().out
    assert "ivrkit replay call.jsonl flows/bank.yaml --set pin=4321" in out and "exit codes: 0 the replay matches" in out
