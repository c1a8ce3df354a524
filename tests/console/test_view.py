"""ConsoleView: the call shown from its own records — keys as the call used them (masked exactly
when the record says so), entries, waits with their timers and retries, prompts typed out
without event lines inside them — and, with a property test, a key that lands in a sensitive
entry is never printed in clear."""

from __future__ import annotations

import io
import re
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ivrkit.channel import ChannelEvent, Key
from ivrkit.console.channel import ConsoleChannel
from ivrkit.console.cli import console_hooks
from ivrkit.console.view import PATH_SHOWN, ConsoleView
from ivrkit.flow.loader import load_flow, load_flow_text
from ivrkit.flow.model import Flow
from ivrkit.machine import BUILTIN_ERROR
from ivrkit.testing import FlowTester, VirtualClock
from tests.console.helpers import DEMO, make_prompt


def _console(flow: Flow, *, typewriter: bool = False, seconds_per_char: float = 0.06) -> tuple[FlowTester, ConsoleView]:
    """A FlowTester whose phone is the console, wired as `ivrkit console` wires it."""
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=flow, typewriter=typewriter)
    channel = ConsoleChannel(clock=clock, out=out, view=view, seconds_per_char=seconds_per_char)
    return FlowTester(flow, channel=channel, hooks=console_hooks(view)), view


def _lines(view: ConsoleView) -> list[str]:
    out = view.out
    assert isinstance(out, io.StringIO)
    return [line.split("] ", 1)[1] if line.startswith("[") else line for line in out.getvalue().splitlines()]


def _keys(view: ConsoleView) -> list[str]:
    return [line for line in _lines(view) if line.startswith("key ")]


async def test_after_star_repeats_the_menu_the_next_choice_is_shown() -> None:
    t, view = _console(load_flow(DEMO))
    async with t:
        await t.until_input()
        await t.press("*")
        await t.until_input()
        await t.press("1")
        t.expect_state("pin")
    assert _keys(view) == ["key *", "key 1"]


async def test_pin_digits_are_masked_and_its_terminator_and_clear_key_are_not() -> None:
    t, view = _console(load_flow(DEMO))
    async with t:
        await t.press("1")
        await t.until_input()
        await t.press("12*4321#")
        t.expect_variable("pin", "4321")
    m = view.mask_char
    assert _keys(view) == [
        "key 1",
        f"key {m}   entered: {m}",
        f"key {m}   entered: {m * 2}",
        "key *   entry cleared",
        *[f"key {m}   entered: {m * n}" for n in range(1, 5)],
        f"key #   entered: {m * 4}",
    ]
    text = "\n".join(_lines(view))
    assert "collected pin = **** (terminator)" in text and "4321" not in text


async def test_the_first_entry_after_a_stray_terminator_shows_its_progress() -> None:
    t, view = _console(load_flow(DEMO))
    async with t:
        await t.press("1")
        await t.until_input()
        await t.press("#")  # nothing typed yet: a no-match, the PIN is asked again
        await t.until_input()
        await t.press("4321#")
    m = view.mask_char
    assert _keys(view) == ["key 1", "key #   entered: (nothing)",
                           *[f"key {m}   entered: {m * n}" for n in range(1, 5)], f"key #   entered: {m * 4}"]
    lines = _lines(view)
    assert lines.index("no match 1/3") < lines.index("prompt: A PIN has four to eight digits.")


async def test_keys_typed_ahead_into_the_pin_are_masked_and_say_when_they_were_typed() -> None:
    t, view = _console(load_flow(DEMO))
    async with t:
        await t.advance(0.5)  # the welcome is playing
        await t.press("14321#")
        t.expect_variable("pin", "4321")
    m = view.mask_char
    assert _keys(view) == ["key 1", *[f"key {m}   entered: {m * n}" for n in range(1, 5)], f"key #   entered: {m * 4}"]
    assert "4321" not in view.out.getvalue()  # type: ignore[attr-defined]


async def test_waits_show_their_timers_and_the_retries_used() -> None:
    t, view = _console(load_flow(DEMO))
    async with t:
        await t.until_input()
        await t.advance(5)
        await t.until_input()
        await t.press("7")
        await t.until_input()
        await t.press("1")
        await t.until_input()
    lines = _lines(view)
    assert "waiting for a choice: a key within 5 s (no input 0/3, no match 0/3)" in lines
    assert "no input 1/3" in lines
    assert "waiting for a choice: a key within 5 s (no input 1/3, no match 0/3)" in lines
    assert "waiting for a choice: a key within 5 s (no input 1/3, no match 1/3)" in lines
    assert ("waiting for digits: first key within 5 s, then 3 s between keys; # ends (no input 0/3, no match 0/3)"
            in lines)


async def test_a_key_held_by_a_prompt_without_barge_in_says_when_it_was_typed() -> None:
    flow = load_flow_text("""\
start: notice
states:
  notice: {say: "Calls are recorded for quality.", barge_in: false, next: main}
  main:
    menu: {prompt: "Press 1.", options: {"1": bye}}
  bye: {say: "Bye.", hangup: true}
""", "t.yaml")
    t, view = _console(flow, seconds_per_char=0.1)  # the notice plays 3.1 s
    async with t:
        await t.advance(1.0)
        await t.press("1")
        await t.advance(3)
        t.expect_state("bye")
    assert _keys(view) == ["key 1   (typed ahead at 1.00)"]


async def test_a_typed_prompt_is_never_split_by_an_event_line() -> None:
    t, view = _console(load_flow(DEMO), typewriter=True, seconds_per_char=0.1)
    async with t:
        await t.advance(1.0)  # "Welcome to the ivrkit demo line." is being typed
        view.notice("a notice from the channel")
        assert view.out.getvalue().endswith("    Welcome to")  # type: ignore[attr-defined]
        await t.advance(3)  # the welcome ends, the menu starts
        await t.press("9")  # cuts the menu being typed
        await t.advance(5)
    out = view.out.getvalue()  # type: ignore[attr-defined]
    assert "    Welcome to the ivrkit demo line.\n[   1.00] a notice from the channel\n" in out
    assert re.search(r"\n    To try[^\n]* —\n\[\s*[\d.]+\] prompt stopped \(barge-in\)\n"
                     r"\[\s*[\d.]+\] key 9\n", out), out


async def test_sent_keys_stay_clear_on_the_wire() -> None:
    t, view = _console(load_flow(DEMO))
    events: list[ChannelEvent] = []
    async with t:
        real = t.channel._emit
        t.channel._emit = lambda e: (events.append(e), real(e))
        await t.press("14321#")
    assert "".join(e.digit for e in events if isinstance(e, Key)) == "14321#"


def test_without_the_call_records_a_key_is_never_shown_in_clear() -> None:
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=load_flow(DEMO))
    channel = ConsoleChannel(clock=clock, out=out, view=view)
    channel.connect(lambda e: None)
    channel.play(make_prompt("To try a PIN entry, press 1.", id=1, state="main"))
    for ch in "14321#":
        channel.press(ch)
    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines() if "] key " in line] == [
        f"key {view.mask_char}"] * 6


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
    from ivrkit.hooks import Hooks
    from ivrkit.testing import FlowTester
    from ivrkit.trace import TraceEvent

    if which == "demo":
        flow = load_flow(DEMO)
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
    hooks = Hooks(state_enter=[*hooks.state_enter, type_midway], digits=hooks.digits, prompt=hooks.prompt)
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
    key_lines = [line.split("] key ")[1] for line in out.getvalue().splitlines() if "] key " in line]
    shown = [line.split()[0] for line in key_lines]
    records = t.trace.keys()
    unused = [line for line in key_lines if "   not used: " in line]
    assert len(unused) == sum("discarded" in r.data for r in records)
    assert len(shown) == len(records)  # one printed line per key, in the order pressed
    event(f"{which}: keys consumed by the PIN entry: {min(sum(r.data.get('consumed') == 'pin' for r in records), 5)}+")
    for printed, record in zip(shown, records, strict=True):
        if record.data.get("consumed") == "pin" and record.data.get("entry") == "digit":
            assert printed == view.mask_char, t.trace.tail(40)
        elif not record.data.get("masked"):
            assert printed == record.data["digit"], t.trace.tail(40)  # what the call did not hide is shown


def _moves(view: ConsoleView, *moves: tuple[str, str]) -> None:
    """The call's records of each move, as it hands them to observers: transition, then state."""
    for to, why in moves:
        view.observe("transition", None, {"to": to, "why": why})
        view.observe("state", to, {"where": "x.yaml:1:1"})


def _texts(out: io.StringIO) -> list[str]:
    return [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]


def test_path_line_after_each_state_line_with_why_the_move_was_made() -> None:
    out = io.StringIO()
    view = ConsoleView(out, VirtualClock(), flow=load_flow(DEMO), path=True)
    view.follow_call()
    _moves(view, ("welcome", "start"), ("main", "next"), ("pin", "key 1"))
    assert _texts(out) == [
        "state welcome (say)",
        "path: welcome  (start)",
        "state main (menu)",
        "path: welcome → main  (next)",
        "state pin (collect, sensitive)",
        "path: welcome → main → pin  (key 1)",
    ]


def test_a_long_path_shows_its_last_states_and_the_error_path_by_name() -> None:
    out = io.StringIO()
    view = ConsoleView(out, VirtualClock(), path=True)
    view.follow_call()
    _moves(view, *((f"s{i}", "next") for i in range(PATH_SHOWN + 2)), (BUILTIN_ERROR, "error"))
    shown = [f"s{i}" for i in range(3, PATH_SHOWN + 2)] + ["(error)"]
    assert _texts(out)[-1] == f"path: … → {' → '.join(shown)}  (error)"


def test_without_path_a_move_prints_only_its_state() -> None:
    out = io.StringIO()
    view = ConsoleView(out, VirtualClock())
    view.follow_call()
    _moves(view, ("main", "start"))
    assert _texts(out) == ["state main"]
