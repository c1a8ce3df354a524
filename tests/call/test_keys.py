"""Keypad policy alone: `Keys` answers decisions on a VirtualClock, with no call around it."""

from __future__ import annotations

from ivrkit.call.events import Event, Move
from ivrkit.call.keys import STRAY, Arrival, Fail, Keys, Reprompt, Validate
from ivrkit.call.recorder import NO_HOOKS, Recorder
from ivrkit.call.timer import queued_schedule
from ivrkit.channel import Key
from ivrkit.flow.loader import load_flow_text
from ivrkit.flow.model import Flow
from ivrkit.testing import VirtualClock

FLOW = """\
flow: keys
start: main
defaults: {timeout: 5s, inter_digit_timeout: 3s, retries: 2, terminator: "#"}
states:
  main:
    menu:
      prompt: "Press 1 for your PIN."
      options: {"1": pin}
      repeat_key: "*"
      no_match: ["Not a choice.", "Still not a choice."]
      on_max_retries: bye
  pin:
    collect: {prompt: "Enter your PIN.", into: pin, min_digits: 4, max_digits: 4, sensitive: true, back_key: "*"}
    next: bye
  checked:
    collect: {prompt: "Account number.", into: account, max_digits: 3, validate: "tests.nothing:check"}
    next: bye
  bye: {say: "Bye.", hangup: true}
"""


def make(state: str = "main") -> tuple[Keys, Recorder, dict[str, object], Flow, list[Event]]:
    flow = load_flow_text(FLOW, check_hooks=False)
    clock = VirtualClock()
    posted: list[Event] = []
    variables: dict[str, object] = {}
    recorder = Recorder(clock, NO_HOOKS, lambda: (), "keys")
    keys = Keys(recorder, variables, frozenset({"pin"}), clock, queued_schedule(clock, posted.append))
    enter(keys, recorder, flow, state)
    return keys, recorder, variables, flow, posted


def enter(keys: Keys, recorder: Recorder, flow: Flow, name: str) -> None:
    recorder.state = name
    keys.enter(flow.states[name])
    keys.visit(flow.states[name])
    keys.begin()


def test_a_menu_option_moves_and_sets_last_key() -> None:
    keys, recorder, variables, _, _ = make()
    assert keys.arrive(Key("1", 0.5), waiting=True) is Arrival.USE
    assert keys.press(Key("1", 0.5)) == Move("pin", "key 1")
    assert variables["last_key"] == "1"
    assert [e.data for e in recorder.trace.keys()] == [{"digit": "1", "arrived": 0.5, "consumed": "main"}]


def test_no_match_escalates_then_leaves_after_the_retries() -> None:
    keys, recorder, _, flow, _ = make()
    first = keys.press(Key("9", 1.0))
    assert isinstance(first, Reprompt) and first.first == flow.states["main"].menu.no_match[0]  # type: ignore[union-attr]
    assert keys.press(Key("8", 2.0)) == Move("bye", "max retries (no_match)")
    assert [e.data["count"] for e in recorder.trace.of_kind("no_match")] == [1, 2]


def test_the_repeat_key_replays_the_prompt_without_a_retry() -> None:
    keys, _, _, _, _ = make()
    assert keys.press(Key("*", 1.0)) == Reprompt()
    assert keys.no_match == 0


def test_keys_typed_ahead_wait_in_order_and_skip_the_prompt() -> None:
    keys, recorder, _, _, _ = make()
    assert keys.arrive(Key("1", 0.1), waiting=False) is Arrival.TYPED_AHEAD
    assert keys.arrive(Key("x", 0.2), waiting=False) is Arrival.TYPED_AHEAD  # behind a key: kept in order
    assert keys.next_prompt(barge_in=True) is None
    assert recorder.trace.of_kind("prompt_skip")[0].data["reason"] == "type-ahead"
    assert keys.typed_ahead() == Key("1", 0.1) and keys.typed_ahead() == Key("x", 0.2) and keys.typed_ahead() is None


def test_without_barge_in_the_prompt_plays_despite_type_ahead() -> None:
    keys, _, _, flow, _ = make()
    keys.arrive(Key("1", 0.1), waiting=False)
    assert keys.next_prompt(barge_in=False) == flow.states["main"].menu.prompt  # type: ignore[union-attr]


def test_a_non_dtmf_key_is_dropped_and_traced() -> None:
    keys, recorder, _, _, _ = make()
    assert keys.arrive(Key("x", 0.1), waiting=False) is Arrival.DROPPED
    assert recorder.trace.keys()[0].data["discarded"] == "not a DTMF key: 'x'"


def test_a_sensitive_entry_is_masked_and_answered_as_a_secret_until_done() -> None:
    keys, recorder, variables, _, _ = make("pin")
    assert keys.listen()  # the collector times this input, not the call
    for i, d in enumerate("432"):
        assert keys.press(Key(d, float(i))) is None
    assert list(keys.secrets()) == ["432"]
    assert keys.press(Key("1", 3.0)) == Move("bye", "collected")
    assert variables["pin"] == "4321" and variables["pin_reason"] == "max_digits"
    assert {e.data["digit"] for e in recorder.trace.keys()} == {"*"}
    assert recorder.trace.of_kind("collect")[0].data["digits"] == "****"
    assert list(keys.secrets()) == ["4321"]  # being accepted: still masked in any message


def test_the_habitual_terminator_after_max_digits_is_discarded() -> None:
    keys, recorder, _, flow, _ = make("pin")
    for d in "4321":
        keys.press(Key(d, 1.0))
    enter(keys, recorder, flow, "main")
    assert keys.arrive(Key("#", 1.5), waiting=True) is Arrival.DROPPED
    assert "terminator after an entry already complete" in recorder.trace.keys()[-1].data["discarded"]


def test_a_habitual_terminator_held_behind_the_entry_is_dropped_as_the_next_menu_starts() -> None:
    keys, recorder, _, flow, _ = make("pin")
    for i, d in enumerate("4321#"):  # all held (a `barge_in: false` prompt, a hook)
        assert keys.arrive(Key(d, 0.1 * i), waiting=False) is Arrival.TYPED_AHEAD
    decision = None
    while decision is None and (key := keys.typed_ahead()) is not None:
        decision = keys.press(key)
    assert decision == Move("bye", "collected") and len(keys.buffer) == 1
    enter(keys, recorder, flow, "main")
    assert not keys.buffer  # gone before the menu decides on type-ahead
    assert keys.next_prompt(barge_in=True) is not None and not recorder.trace.of_kind("prompt_skip")
    assert recorder.trace.keys()[-1].data == {"digit": "#", "arrived": 0.4, "discarded": STRAY}


def test_only_the_first_key_after_the_entry_can_be_its_habitual_terminator() -> None:
    keys, recorder, _, flow, _ = make("pin")
    for i, d in enumerate("43211#"):
        keys.arrive(Key(d, 0.1 * i), waiting=False)
    while (key := keys.typed_ahead()) is not None and keys.press(key) is None:
        pass
    enter(keys, recorder, flow, "main")
    assert [k.digit for k in keys.buffer] == ["1", "#"]  # type-ahead for the menu, untouched


def test_a_non_dtmf_key_in_a_sensitive_collect_is_not_named_in_its_record() -> None:
    keys, recorder, _, _, _ = make("pin")
    assert keys.press(Key("x", 0.1)) is None
    assert recorder.trace.keys()[-1].data == {"digit": "?", "arrived": 0.1, "discarded": "not a DTMF key", "masked": True}


def test_the_back_key_returns_to_the_previous_input_state() -> None:
    keys, recorder, _, flow, _ = make()
    enter(keys, recorder, flow, "pin")
    assert keys.press(Key("*", 1.0)) == Move("main", "back")
    assert recorder.trace.of_kind("collect")[0].data["reason"] == "cancelled"


def test_a_collect_timeout_with_nothing_typed_is_a_no_input() -> None:
    keys, recorder, _, flow, posted = make("pin")
    keys.listen()
    keys._clock.advance(5)  # type: ignore[attr-defined]
    result = posted[0].fire()  # type: ignore[union-attr]
    assert result is not None
    decision = keys.collected(result)
    assert decision == Reprompt(None) and keys.no_input == 1


def test_validation_is_asked_for_and_a_wrong_answer_is_the_hooks_error() -> None:
    keys, recorder, variables, flow, _ = make("checked")
    for d in "12":
        keys.press(Key(d, 1.0))
    ref = flow.states["checked"].collect.validate  # type: ignore[union-attr]
    assert ref is not None and keys.press(Key("3", 1.0)) == Validate(ref, "123")
    bad = keys.validated("yes", "123")
    assert isinstance(bad, Fail) and "returned str" in str(bad.error)
    assert keys.validated(True, "123") == Move("bye", "collected") and variables["account"] == "123"


def test_leaving_cancels_an_entry_in_progress_and_forgets_the_visit() -> None:
    keys, recorder, _, _, _ = make("pin")
    keys.press(Key("4", 1.0))
    keys.leave()
    assert keys.collector is None and keys.prompts == [] and list(keys.secrets()) == []
    assert recorder.trace.of_kind("collect")[0].data == {"into": "pin", "digits": "*", "reason": "cancelled"}


def test_no_input_without_its_own_prompts_replays_the_state_prompt() -> None:
    keys, _, _, _, _ = make()
    assert keys.failed("no_input") == Reprompt(None)  # main has no no_input prompts: plain re-prompt
