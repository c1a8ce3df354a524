"""ConsoleView: what the screen shows, the typewriter, and masking of keys that land in a sensitive
entry (with a property test: such a key is never printed in clear)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ivrkit.channel import ChannelEvent, Key, PromptEnded
from ivrkit.console.channel import ConsoleChannel
from ivrkit.console.view import ConsoleView
from ivrkit.flow.model import Flow
from ivrkit.testing import VirtualClock
from tests.console.helpers import DEMO, ROOT, make_prompt


def test_sensitive_keys_are_masked_on_screen() -> None:
    from ivrkit.flow.loader import load_flow

    flow = load_flow(DEMO)
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
    phone.play(make_prompt("For sales press one", id=1))  # 19 chars: 1.9 s, 4 words: one per 0.475 s
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
    phone.play(make_prompt("Goodbye and thanks", id=2))
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

    flow = load_flow(DEMO)
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
        str(ROOT / "t.yaml"),
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

    flow = load_flow(DEMO)
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

    flow = load_flow(DEMO)
    clock = VirtualClock()
    out = io.StringIO()
    view = ConsoleView(out, clock, flow=flow)
    channel = ConsoleChannel(clock=clock, out=out, view=view, seconds_per_char=0.0)
    channel.connect(lambda e: None)
    channel.play(make_prompt("To try a PIN entry, press 1.", id=1, state="main"))
    channel.press("7")  # no such option
    channel.press("8")  # typed ahead: might be for anything next, masked
    channel.play(make_prompt("That is not one of the choices.", id=2, state="main"))  # re-prompt
    channel.press("2")
    keys = [line.split("] key ")[1] for line in out.getvalue().splitlines() if "] key " in line]
    assert keys == ["7", view.mask_char, "2"]


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
