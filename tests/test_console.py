"""ivrkit console: the ConsoleChannel on a virtual clock, the key script, the terminal handling,
the call recording — and, at the end, the real `python -m ivrkit.console` in a subprocess."""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import re
import os
import select
import subprocess
import sys
import termios
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ivrkit.voice.audio import Pcm, dominant_frequency, tone
from ivrkit.channel import ChannelEvent, Hangup, Key, PromptEnded
from ivrkit.console.channel import ConsoleChannel
from ivrkit.console.audio import CallRecorder, PromptSynthesizer, simulated_duration
from ivrkit.console.inputs import run_key_script
from ivrkit.console.script import HangUp, KeyScriptError, Press, Wait, parse_key_script
from ivrkit.console.term import cbreak_terminal, read_fd_nonblocking, split_keys
from ivrkit.console.view import ConsoleView
from ivrkit.errors import ChannelError, SpeechError
from ivrkit.flow.model import Flow
from ivrkit.prompts import Prompt, PromptPart, fill
from ivrkit.testing import VirtualClock


def _prompt(text: str, *, id: int = 1, state: str = "main", barge_in: bool = True):  # type: ignore[no-untyped-def]
    return fill(Prompt.text(text), {}, id=id, state=state, barge_in=barge_in)


class _Phone:
    """A ConsoleChannel on a virtual clock with its printed output and emitted events."""

    def __init__(self, **kw: object) -> None:
        self.clock = VirtualClock()
        self.out = io.StringIO()
        self.events: list[ChannelEvent] = []
        self.channel = ConsoleChannel(clock=self.clock, out=self.out, **kw)  # type: ignore[arg-type]
        self.channel.connect(self.events.append)

    @property
    def text(self) -> str:
        return self.out.getvalue()


# --- key script --------------------------------------------------------------------------------


def test_key_script_parses_keys_waits_and_hangup() -> None:
    steps = parse_key_script("1, wait 3s,1 2 3 4#,wait 250ms,wait 1.5,a*d\nhang up")
    assert steps == (
        Press("1"), Wait(3.0), Press("1234#"), Wait(0.25), Wait(1.5), Press("A*D"), HangUp(),
    )
    assert parse_key_script("") == ()
    assert parse_key_script(" , ,") == ()


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("1,wiat 3s", "item 2: 'wiat 3s' is not keys, a wait or hangup"),
        ("12x4", "'x'"),
        ("1,wait 3 min", "item 2: 'wait 3 min' is not a wait"),
        ("wait 2h", "is not a wait"),
        ("wait 7200s", "longer than 3600 s"),
        ("1!", "('!' is not a phone key)"),
    ],
)
def test_key_script_errors_name_the_item_and_the_fix(script: str, fragment: str) -> None:
    with pytest.raises(KeyScriptError) as info:
        parse_key_script(script)
    assert fragment in str(info.value)
    assert str(info.value).startswith("--keys: item ")


# --- terminal input ----------------------------------------------------------------------------


def test_split_keys_keeps_escape_sequences_whole() -> None:
    # Arrow up, F1 and Ctrl-Right must not become DTMF A, P/C...: each is one token.
    assert split_keys("1\x1b[A2\x1bOP#\x1b[1;5C*") == ["1", "\x1b[A", "2", "\x1bOP", "#", "\x1b[1;5C", "*"]
    assert split_keys("ab\x1b") == ["a", "b", "\x1b"]
    assert split_keys("") == []


def test_cbreak_terminal_restores_settings_even_on_error() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        with pytest.raises(RuntimeError):
            with cbreak_terminal(slave) as is_tty:
                assert is_tty
                during = termios.tcgetattr(slave)
                assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
                assert during[3] & termios.ISIG  # Ctrl-C still interrupts
                raise RuntimeError("boom")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_cbreak_terminal_is_a_no_op_on_a_pipe() -> None:
    r, w = os.pipe()
    try:
        with cbreak_terminal(r) as is_tty:
            assert not is_tty
    finally:
        os.close(r)
        os.close(w)


async def test_read_fd_from_a_pipe_and_from_a_regular_file(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    got: list[str] = []
    eof = asyncio.Event()
    r, w = os.pipe()
    stop = read_fd_nonblocking(loop, r, got.append, eof.set)
    os.write(w, "1é#".encode())
    os.close(w)
    await eof.wait()
    stop()
    os.close(r)
    assert "".join(got) == "1é#"

    path = tmp_path / "keys.txt"
    path.write_text("1,wait 1s\n2\n")
    got.clear()
    eof.clear()
    with open(path, "rb") as f:  # regular files cannot be polled: read whole
        read_fd_nonblocking(loop, f.fileno(), got.append, eof.set)
        await eof.wait()
    assert "".join(got) == "1,wait 1s\n2\n"


# --- the channel on a virtual clock --------------------------------------------------------------


def test_prompt_plays_for_its_simulated_time_then_ends() -> None:
    phone = _Phone(seconds_per_char=0.1)
    prompt = _prompt("Press 1.")  # 8 characters -> 0.8 s
    phone.channel.play(prompt)
    assert "state main" in phone.text and "prompt: Press 1." in phone.text
    phone.clock.advance(0.79)
    assert phone.events == []
    phone.clock.advance(0.01)
    (ended,) = phone.events
    assert isinstance(ended, PromptEnded) and (ended.id, ended.interrupted) == (1, False)
    assert ended.at == pytest.approx(0.8)
    assert phone.clock.pending() == 0


def test_stop_cuts_the_prompt_with_one_interrupted_end() -> None:
    phone = _Phone()
    phone.channel.play(_prompt("A long menu prompt"))
    phone.clock.advance(0.2)
    phone.channel.stop()
    phone.channel.stop()  # no-op: nothing plays
    phone.clock.advance(10)
    (ended,) = phone.events
    assert isinstance(ended, PromptEnded) and (ended.id, ended.interrupted) == (1, True)
    assert ended.at == pytest.approx(0.2)
    assert "prompt stopped (barge-in)" in phone.text
    assert phone.clock.pending() == 0


def test_keys_typed_before_the_call_connects_are_kept() -> None:
    clock = VirtualClock()
    channel = ConsoleChannel(clock=clock, out=io.StringIO())
    assert channel.press("1") is False and channel.press("#") is False
    events: list[ChannelEvent] = []
    channel.connect(events.append)
    assert [e.digit for e in events if isinstance(e, Key)] == ["1", "#"]


def test_keys_become_dtmf_and_other_input_does_not() -> None:
    phone = _Phone()
    for ch in "1a#x*\n ?D":
        phone.channel.press(ch)
    assert [e.digit for e in phone.events if isinstance(e, Key)] == ["1", "A", "#", "*", "D"]
    assert "'x' is not a phone key (not sent)" in phone.text
    assert "'?' is not a phone key (not sent)" in phone.text


@pytest.mark.parametrize("char", ["q", "\x04", "\x03"])
def test_q_and_ctrl_keys_hang_up_and_nothing_follows(char: str) -> None:
    phone = _Phone()
    phone.channel.play(_prompt("Welcome"))
    phone.channel.press(char)
    phone.channel.press("1")
    reason = {"q": "caller", "\x04": "Ctrl-D", "\x03": "Ctrl-C"}[char]
    phone.clock.advance(30)
    phone.channel.caller_hangup()
    assert phone.events == [Hangup(at=0.0, reason=reason)]
    assert phone.channel.ended is not None and phone.channel.ended.startswith("caller hung up")
    assert phone.clock.pending() == 0


async def test_flow_hangup_and_transfer_end_the_call() -> None:
    phone = _Phone()
    phone.channel.play(_prompt("Goodbye"))
    await phone.channel.hangup()
    phone.clock.advance(5)
    assert phone.events == [] and phone.channel.ended == "the flow hung up"
    other = _Phone()
    await other.channel.transfer("sip:agents@pbx.example.com")
    assert other.channel.ended == "transferred to sip:agents@pbx.example.com"
    assert "transfer to sip:agents@pbx.example.com" in other.text


async def test_send_dtmf_is_shown_and_checked() -> None:
    phone = _Phone()
    await phone.channel.send_dtmf("1")
    await phone.channel.send_dtmf("#")
    with pytest.raises(ChannelError, match="only one of 0-9"):
        await phone.channel.send_dtmf("x")
    assert phone.channel.keys_sent == ["1", "#"]
    assert "sent DTMF #" in phone.text


def test_sensitive_keys_are_masked_on_screen() -> None:
    from ivrkit.flow.loader import load_flow

    flow = load_flow(Path(__file__).parents[1] / "ivrkit" / "defaults" / "demo.yaml")
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=flow)
    channel = ConsoleChannel(clock=clock, out=out, view=view)
    events: list[ChannelEvent] = []
    channel.connect(events.append)
    view.enter_state("main")
    # Type-ahead: "1" picks the PIN entry, "4321#" is typed before the state changes.
    for ch in "14321#":
        channel.press(ch)
    view.enter_state("pin")
    for ch in "9876#":
        channel.press(ch)
    shown = [line.split("] key ")[1].split()[0] for line in out.getvalue().splitlines() if "] key " in line]
    assert shown[0] == "1"
    assert all(s in ("•", "x") for s in shown[1:]) and len(shown) == 11
    assert "4321" not in out.getvalue() and "9876" not in out.getvalue()
    assert "entered: ••••" in out.getvalue() or "entered: xxxx" in out.getvalue()
    assert "".join(e.digit for e in events if isinstance(e, Key)) == "14321#9876#"  # sent in clear


def test_typewriter_prints_the_prompt_as_it_plays_and_a_key_cuts_it() -> None:
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, typewriter=True)
    phone = ConsoleChannel(clock=clock, out=out, view=view, seconds_per_char=0.1)
    events: list[ChannelEvent] = []
    phone.connect(events.append)
    phone.play(_prompt("For sales press one", id=1))  # 19 chars: 1.9 s, 4 words: one per 0.475 s
    clock.advance(0.5)
    assert out.getvalue().endswith("    For sales")
    phone.press("1")
    phone.stop()
    assert out.getvalue().splitlines()[-4:] == [
        "[   0.00] prompt:",
        "    For sales",  # the key's line ends it; the rest of the prompt is never printed
        "[   0.50] key 1",
        "[   0.50] prompt stopped (barge-in)",
    ]
    assert "press one" not in out.getvalue()
    phone.play(_prompt("Goodbye and thanks", id=2))
    clock.advance(5)
    assert "    Goodbye and thanks\n" in out.getvalue()
    assert clock.pending() == 0
    assert [e.interrupted for e in events if isinstance(e, PromptEnded)] == [True, False]


def test_plain_entry_is_shown_and_type_ahead_after_it_is_masked() -> None:
    from ivrkit.flow.loader import load_flow_text

    flow = load_flow_text(
        """\
start: account
states:
  account:
    collect: {prompt: "Account number?", into: account, min_digits: 4, max_digits: 4, clear_key: "*"}
    next: pin
  pin:
    collect: {prompt: "PIN?", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: bye
  bye: {say: "Bye.", hangup: true}
""",
        "t.yaml",
    )
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=flow)
    channel = ConsoleChannel(clock=clock, out=out, view=view)
    channel.connect(lambda e: None)
    view.enter_state("account")
    for ch in "12*12349876":  # 2 digits, clear, the 4 digits, then the PIN typed ahead
        channel.press(ch)
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()[1:]]
    m = view.mask_char
    assert lines == [
        "key 1   entered: 1",
        "key 2   entered: 12",
        "key *   entry cleared",
        "key 1   entered: 1",
        "key 2   entered: 12",
        "key 3   entered: 123",
        "key 4   entered: 1234",
        *[f"key {m}"] * 4,
    ]


@pytest.mark.parametrize(
    ("start", "typed", "shown"),
    [
        # welcome (say) -> main (menu): the menu choice is shown, the PIN typed after it is not
        ("welcome", "14321#", "1•••••"),
        # weak_pin (say) -> main as well
        ("weak_pin", "2", "2"),
    ],
)
def test_keys_typed_during_a_say_follow_the_rules_of_the_state_it_leads_to(start: str, typed: str, shown: str) -> None:
    from ivrkit.flow.loader import load_flow

    flow = load_flow(Path(__file__).parents[1] / "ivrkit" / "defaults" / "demo.yaml")
    _check_masking(flow, start, typed, shown)


def test_keys_before_a_sensitive_entry_or_a_hook_are_masked() -> None:
    from ivrkit.flow.loader import load_flow_text

    flow = load_flow_text(
        """\
start: hello
python_path: [examples]
states:
  hello: {say: "Hello.", next: pin}
  pin:
    collect: {prompt: "PIN?", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: lookup
  lookup: {run: {hook: acme_bank:lookup_balance, sets: [balance]}, say: "{balance}", next: menu}
  menu:
    menu: {prompt: "1 or 2", options: {"1": bye, "2": hello}}
  bye: {say: "Bye.", hangup: true}
""",
        str(Path(__file__).parents[1] / "t.yaml"),
    )
    _check_masking(flow, None, "4321", "••••")  # before any prompt: the start state's rules
    _check_masking(flow, "hello", "4321", "••••")
    _check_masking(flow, "lookup", "1", "•")  # a hook may send the call anywhere
    _check_masking(flow, "menu", "12", "1•")


def _check_masking(flow: Flow, state: str | None, typed: str, shown: str) -> None:
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=flow)
    channel = ConsoleChannel(clock=clock, out=out, view=view)
    channel.connect(lambda e: None)
    if state is not None:
        view.enter_state(state)
    for ch in typed:
        channel.press(ch)
    keys = "".join(line.split("] key ")[1][0] for line in out.getvalue().splitlines() if "] key " in line)
    assert keys == shown.replace("•", view.mask_char)


def test_keys_not_yet_used_by_the_call_count_against_the_state_they_land_in() -> None:
    """The view can lag the call by a few keys: "1" typed during the welcome is still in the
    call's buffer when the menu starts, so the menu has its choice and the next key is masked."""
    from ivrkit.flow.loader import load_flow

    flow = load_flow(Path(__file__).parents[1] / "ivrkit" / "defaults" / "demo.yaml")
    for tracking, expected in ((False, ["1", "4"]), (True, ["1", "•"])):
        clock = VirtualClock()
        out = io.StringIO()
        view = ConsoleView(out, clock, flow=flow)
        if tracking:
            view.track_call_keys()
        view.enter_state("welcome")
        view.key("1")
        view.observe("state", "main", {"where": "demo.yaml:16:3"})  # the call's record, "1" not used yet
        view.key("4")
        keys = [line.split("] key ")[1] for line in out.getvalue().splitlines() if "] key " in line]
        assert keys == [k.replace("•", view.mask_char) for k in expected]
    # Once the call reports "1" as used, only "4" is still ahead of the call.
    view.observe("key", "main", {"digit": "1", "consumed": "main"})
    assert list(view._pressed) == [("4", True)]


def test_after_a_menu_re_prompt_the_next_choice_is_shown_again() -> None:
    from ivrkit.flow.loader import load_flow

    flow = load_flow(Path(__file__).parents[1] / "ivrkit" / "defaults" / "demo.yaml")
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=flow)
    channel = ConsoleChannel(clock=clock, out=out, view=view, seconds_per_char=0.0)
    channel.connect(lambda e: None)
    channel.play(_prompt("To try a PIN entry, press 1.", id=1, state="main"))
    channel.press("7")  # no such option
    channel.press("8")  # typed ahead: might be for anything next, masked
    channel.play(_prompt("That is not one of the choices.", id=2, state="main"))  # re-prompt
    channel.press("2")
    keys = [line.split("] key ")[1] for line in out.getvalue().splitlines() if "] key " in line]
    assert keys == ["7", view.mask_char, "2"]


async def test_key_script_runs_on_the_virtual_clock() -> None:
    phone = _Phone()
    steps = parse_key_script("1,wait 3s,42#,hangup,7")
    task = asyncio.ensure_future(run_key_script(steps, phone.channel, phone.clock))
    await asyncio.sleep(0)
    assert [(e.digit, e.at) for e in phone.events if isinstance(e, Key)] == [("1", 0.0)]
    phone.clock.advance(3)
    await task
    keys = [(e.digit, e.at) for e in phone.events if isinstance(e, Key)]
    assert keys == [("1", 0.0), ("4", 3.0), ("2", 3.0), ("#", 3.0)]
    assert isinstance(phone.events[-1], Hangup)  # and the 7 after hangup was never pressed


# --- audio: recorder and the real offline voice ---------------------------------------------------


def test_recorder_places_prompts_on_the_call_timeline() -> None:
    rec = CallRecorder(start=10.0, sample_rate=8000)
    rec.play(tone(440, 1.0, sample_rate=8000), at=10.5)
    rec.cut(at=11.0)  # barge-in after half a second
    rec.play(tone(880, 0.5, sample_rate=8000), at=12.0)
    out = rec.finish(at=13.0)
    assert out.duration == pytest.approx(3.0)
    arr = np.abs(out.array())
    sr = 8000
    assert arr[: int(0.5 * sr)].max() == 0  # silence before the first prompt
    assert arr[int(0.55 * sr) : int(0.95 * sr)].max() > 1000  # the first prompt ...
    assert arr[int(1.0 * sr) + 1 : int(2.0 * sr)].max() == 0  # ... cut at 11.0
    assert arr[int(2.05 * sr) : int(2.45 * sr)].max() > 1000
    assert arr[int(2.5 * sr) + 1 :].max() == 0


def test_sound_card_opens_or_says_why_not() -> None:
    """Real either way: with PortAudio and a device, a short silence plays and stops; without
    (this CI machine has no libportaudio), the reason names what to install."""
    from ivrkit.voice.audio import silence
    from ivrkit.console.audio import AudioUnavailable, open_soundcard

    try:
        speaker = open_soundcard()
    except AudioUnavailable as e:
        assert "libportaudio2" in str(e) or "no sound output device" in str(e)
        return
    speaker.play(silence(0.05))
    speaker.stop()
    speaker.close()


def test_real_voice_sets_prompt_time_and_fills_the_recording() -> None:
    clock = VirtualClock()
    recorder = CallRecorder(start=0.0)
    out = io.StringIO()
    channel = ConsoleChannel(clock=clock, out=out, synthesizer=PromptSynthesizer(), recorder=recorder)
    events: list[ChannelEvent] = []
    channel.connect(events.append)
    channel.play(_prompt("Please enter your account number.", id=6))
    clock.advance(60)
    assert len(events) == 1 and isinstance(events[0], PromptEnded) and not events[0].interrupted
    spoken = events[0].at
    assert 1.5 < spoken < 6.0  # eSpeak: about 2.5 s
    assert spoken != pytest.approx(simulated_duration(_prompt("Please enter your account number."), 0.06))
    pcm = recorder.finish(61.0)
    assert pcm.duration == pytest.approx(61.0, abs=0.01)
    sr = pcm.sample_rate
    voiced = pcm.array()[: int(spoken * sr)]
    assert np.abs(voiced).max() > 3000
    assert dominant_frequency(Pcm(voiced.tobytes(), sr)) != pytest.approx(1000.0, abs=20)
    assert np.abs(pcm.array()[int((spoken + 0.01) * sr) :]).max() == 0


def test_sensitive_read_back_is_bleeped_in_the_recording_only() -> None:
    clock = VirtualClock()
    recorder = CallRecorder(start=0.0)
    out = io.StringIO()
    channel = ConsoleChannel(clock=clock, out=out, synthesizer=PromptSynthesizer(), recorder=recorder)
    events: list[ChannelEvent] = []
    channel.connect(events.append)
    prompt = fill(
        Prompt((PromptPart("text", "You entered"), PromptPart("digits", "{pin}"))),
        {"pin": "1234"}, id=7, state="pin", sensitive={"pin"},
    )
    channel.play(prompt)
    assert "prompt: You entered ****" in out.getvalue() and "1 2 3 4" not in out.getvalue()
    clock.advance(60)
    spoken = events[0].at
    assert 1.5 < spoken < 6.0  # the PIN read back digit by digit takes real speaking time
    pcm = recorder.finish(spoken)
    assert pcm.duration == pytest.approx(spoken, abs=0.01)
    assert dominant_frequency(pcm) == pytest.approx(1000.0, abs=5)  # a bleep, not the digits
    assert np.abs(pcm.array()).max() < 0.11 * 32767


def test_a_bad_prompt_file_is_reported_and_the_call_goes_on(tmp_path: Path) -> None:
    phone = _Phone(synthesizer=PromptSynthesizer(base_dir=tmp_path), seconds_per_char=0.1)
    missing = fill(Prompt((PromptPart("audio", "missing.wav"),)), {}, id=1, state="s")
    phone.channel.play(missing)
    phone.clock.advance(1.0)  # simulated: an audio part counts 1 s
    phone.channel.play(_prompt("Hi", id=2))
    phone.clock.advance(5.0)
    assert phone.text.count("prompt audio failed") == 1 and "missing.wav" in phone.text
    ends = [e for e in phone.events if isinstance(e, PromptEnded)]
    assert [e.id for e in ends] == [1, 2]
    assert ends[0].at == pytest.approx(1.0)
    assert ends[1].at - 1.0 != pytest.approx(0.2)  # "Hi" was spoken: real audio length, not 2 x 0.1 s


def test_a_broken_voice_turns_audio_off_once() -> None:
    class BrokenVoice:
        cache_key = "broken"

        def synthesize(self, text: str) -> Pcm:
            raise SpeechError("libespeak-ng failed to initialise")

    phone = _Phone(synthesizer=PromptSynthesizer(BrokenVoice()), seconds_per_char=0.1)
    phone.channel.play(_prompt("Hello", id=1))
    phone.clock.advance(0.5)
    phone.channel.play(_prompt("Again", id=2))
    phone.clock.advance(0.5)
    assert phone.text.count("audio is off: the voice failed (libespeak-ng failed to initialise)") == 1
    assert [e.id for e in phone.events if isinstance(e, PromptEnded)] == [1, 2]


# --- the embedded demo ---------------------------------------------------------------------------


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


# --- integration: the real command in a subprocess (real time, kept short) ------------------------

ROOT = Path(__file__).resolve().parents[1]


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
    assert "4321" not in trace.read_text()
    states = [r["state"] for r in records if r["kind"] == "state"]
    assert states[:3] == ["welcome", "main", "pin"] and states[-1] == "goodbye"


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


# --- property: no key that ends in a sensitive entry is ever printed in clear ----------------------

_DIRECT_PIN = """\
flow: direct-pin
start: welcome
defaults: {retries: 2}
states:
  welcome: {say: "Welcome.", next: pin}
  pin:
    collect: {prompt: "PIN, then pound.", into: pin, min_digits: 4, max_digits: 6, sensitive: true, on_max_retries: menu}
    next: thanks
  thanks: {say: "Thanks.", next: menu}
  menu:
    menu: {prompt: "1 to enter it again, 2 to leave.", options: {"1": welcome, "2": bye}, on_max_retries: bye}
  bye: {say: "Bye.", hangup: true}
"""
_KEYS = "11112345#*90"


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(["demo", "direct"]),
    to_pin=st.booleans(),
    actions=st.lists(
        st.one_of(
            st.tuples(st.just("press"), st.text(alphabet=_KEYS, min_size=1, max_size=6)),
            # typed in one go, before the call has handled any of them (a fast typist, a paste)
            st.tuples(st.just("burst"), st.text(alphabet=_KEYS, min_size=2, max_size=8)),
            # typed while the call is busy moving between states (the view lags the call)
            st.tuples(st.just("midway"), st.text(alphabet=_KEYS, min_size=1, max_size=4)),
            st.tuples(st.just("advance"), st.sampled_from([0.0, 0.2, 1.0, 3.0, 5.0])),
        ),
        max_size=14,
    ),
)
async def test_keys_landing_in_a_sensitive_entry_are_never_shown(
    which: str, to_pin: bool, actions: list[tuple[str, Any]]
) -> None:
    from ivrkit.console.cli import console_hooks
    from ivrkit.flow.loader import load_flow, load_flow_text
    from ivrkit.hooks import Hooks
    from ivrkit.testing import FlowTester
    from ivrkit.trace import TraceEvent

    if which == "demo":
        flow = load_flow(Path(__file__).parents[1] / "ivrkit" / "defaults" / "demo.yaml")
    else:
        flow = load_flow_text(_DIRECT_PIN, "direct.yaml")
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=flow)
    channel = ConsoleChannel(clock=clock, out=out, view=view)
    midway: list[str] = []

    async def type_midway(event: TraceEvent) -> None:
        # Runs inside the call's processing, after the view saw this state: keys arriving now
        # reach the view before the call has used the keys already buffered.
        while midway:
            channel.press(midway.pop(0))

    hooks = console_hooks(view)
    hooks = Hooks(state_enter=[*hooks.state_enter, type_midway], digits=hooks.digits)
    if to_pin and which == "demo":  # half the runs go straight for the PIN entry (menu 1)
        actions = [("press", "1"), *actions]
    async with FlowTester(flow, channel=channel, hooks=hooks) as t:
        for kind, arg in actions:
            if t.result is not None:
                break
            if kind == "press":
                for key in arg:
                    if t.result is None:
                        await t.press(key)
            elif kind == "burst":
                for key in arg:
                    channel.press(key)
                await t.advance(0)
            elif kind == "midway":
                midway.extend(arg)
            else:
                await t.advance(arg)
    shown = [line.split("] key ")[1].split()[0] for line in out.getvalue().splitlines() if "] key " in line]
    records = t.trace.keys()
    unused = [line.split("] unused key ")[1][0] for line in out.getvalue().splitlines() if "] unused key " in line]
    assert len(unused) == sum("discarded" in r.data for r in records)
    assert len(shown) == len(records)  # one printed line per key, in the order pressed
    event(f"{which}: keys consumed by the PIN entry: {min(sum(r.data.get('consumed') == 'pin' for r in records), 5)}+")
    for printed, record in zip(shown, records, strict=True):
        if record.data.get("consumed") == "pin":
            assert printed == view.mask_char, t.trace.tail(40)
