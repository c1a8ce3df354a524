"""Press or say: speech events on the call's one queue, through FlowTester on the VirtualClock.
Speech and keys share timers, retries and no-match; a key pressed while the caller speaks
wins; speech barges in where a key may; a sensitive collect never shows what was said."""

from __future__ import annotations

import json
import textwrap

from ivrkit.call.speech import MAX_UTTERANCE
from ivrkit.channel import Listen
from ivrkit.flow.loader import load_flow_text
from ivrkit.flow.model import Flow
from ivrkit.testing import FlowTester

MENU = "For billing say billing or press 1. For cards say cards or press 2."  # 67 chars: 4 s


def flow(main_extra: str = "", defaults: str = "{input: [dtmf, speech]}") -> Flow:
    return load_flow_text(textwrap.dedent(f"""\
        start: main
        defaults: {defaults}
        states:
          main:
            menu:
              prompt: "{MENU}"
              options:
                "1": {{to: billing, say: [billing, bills, invoice]}}
                "2": {{to: cards, say: [cards, card payments]}}
                "0": agent
              no_input: "Sorry, I did not hear you."
              no_match: "Sorry, I did not get that."
              on_max_retries: agent
            {main_extra}
          billing:
            collect:
              prompt: "Say or type your account number."
              into: account
              min_digits: 4
              max_digits: 6
              no_match: "That is not an account number."
            next: pin
          pin:
            collect:
              prompt: "Your PIN?"
              into: pin
              min_digits: 4
              max_digits: 4
              sensitive: true
              confirm: "Say yes to confirm, or no to enter it again."
            next: done
          cards: {{say: "Cards.", hangup: true}}
          agent: {{say: "An agent.", hangup: true}}
          done: {{say: "Thank you.", hangup: true}}
    """), "t.yaml")


async def test_a_spoken_option_moves_like_its_key() -> None:
    async with FlowTester(flow()) as t:
        await t.until_input()
        assert t.channel.listening == Listen(phrases=("billing", "bills", "invoice", "cards", "card payments"))
        await t.say("Invoice please")
        t.expect_state("billing")
        assert t.variables["last_key"] == "1"
        move = t.trace.of_kind("transition")[-1]
        assert move.data == {"from": "main", "to": "billing", "why": "said 1"}
        speech = t.trace.of_kind("speech")[-1]
        assert speech.data == {"text": "Invoice please", "heard": 4.52, "consumed": "main", "as": "1"}


async def test_speech_barges_in_on_the_prompt_and_skips_the_rest() -> None:
    async with FlowTester(flow()) as t:
        await t.advance(1.0)
        await t.say("cards", seconds=0.4)
        t.expect_state("cards")
        first = t.channel.played[0]
        assert first.interrupted and first.ended == 1.0  # cut when the caller started, not when recognised
        end = [e for e in t.trace.of_kind("prompt_end") if e.data["id"] == 1][0]
        assert end.data["by"] == "speech" and t.trace.of_kind("speech_start")[0].data == {"heard": 1.0}


async def test_no_barge_in_means_no_listening_until_the_prompt_ends() -> None:
    async with FlowTester(flow("barge_in: false")) as t:
        assert t.channel.listening is None
        await t.advance(1.0)
        await t.say("cards")
        t.expect_state("main")
        assert t.channel.unheard == ["cards"] and not t.channel.played[0].interrupted
        await t.until_input()
        await t.say("cards")
        t.expect_state("cards")


async def test_a_keys_only_flow_never_listens() -> None:
    async with FlowTester(load_flow_text("start: m\nstates:\n  m: {menu: {prompt: Press 2., options: {'2': e}}}\n"
                                         "  e: {say: Bye., hangup: true}\n", "t.yaml")) as t:
        await t.until_input()
        await t.say("billing")
        await t.press("2")
        t.expect_state("e")
        assert t.channel.listens == [] and t.channel.unheard == ["billing"]


async def test_speech_and_keys_share_no_match_and_retries() -> None:
    async with FlowTester(flow()) as t:
        await t.until_input()
        await t.say("pizza")  # no option's words: a no-match, as an unknown key is
        t.expect_prompt("did not get that")
        await t.until_input()
        await t.press("7")
        t.expect_prompt("did not get that")
        await t.until_input()
        await t.say("")  # speech heard, nothing recognised
        t.expect_state("agent")
        assert [e.data["count"] for e in t.trace.of_kind("no_match")] == [1, 2, 3]
        assert t.trace.of_kind("transition")[-1].data["why"] == "max retries (no_match)"


async def test_max_attempts_counts_no_input_and_no_match_together() -> None:
    async with FlowTester(flow("max_attempts: 2")) as t:
        await t.until_input()
        await t.advance(5)  # no-input 1
        t.expect_prompt("did not hear you")
        await t.until_input()
        await t.say("pizza")  # no-match 1: two attempts in all
        t.expect_state("agent")
        last = t.trace.of_kind("no_match")[-1]
        assert last.data == {"count": 1, "retries": 3, "attempts": 2, "max_attempts": 2}


async def test_a_key_pressed_while_the_caller_speaks_wins() -> None:
    async with FlowTester(flow()) as t:
        await t.until_input()
        t.channel.start_speaking()
        await t.advance(0.3)
        await t.press("2")
        t.channel.finish_speaking("billing")
        await t.advance(0)
        t.expect_state("cards")
        dropped = t.trace.of_kind("speech")[-1]
        assert dropped.data["discarded"] == "a key was pressed while the caller spoke"


async def test_speaking_holds_the_no_input_timer_up_to_a_limit() -> None:
    async with FlowTester(flow()) as t:
        await t.until_input()
        await t.say("bills", seconds=8.0)  # longer than the 5 s timeout: no no-input meanwhile
        t.expect_state("billing")
        assert not t.trace.of_kind("timeout")
    async with FlowTester(flow()) as t:
        await t.until_input()
        t.channel.start_speaking()
        await t.advance(MAX_UTTERANCE)  # a recogniser that never answers: silence, in effect
        assert [e.data["what"] for e in t.trace.of_kind("timeout")] == ["no_input"]
        t.channel.finish_speaking("billing")  # too late: dropped
        await t.advance(0)
        t.expect_state("main")


async def test_a_collect_takes_spoken_digits() -> None:
    async with FlowTester(flow()) as t:
        await t.press("1")
        await t.until_input()
        assert t.channel.listening == Listen(digits=True, min_digits=4, max_digits=6)
        await t.say("four three oh double one")
        t.expect_variable("account", "43011")
        t.expect_variable("account_reason", "speech")
        t.expect_state("pin")


async def test_keys_then_speech_make_one_entry_and_too_many_digits_are_a_no_match() -> None:
    async with FlowTester(flow()) as t:
        await t.press("1")
        await t.until_input()
        await t.press("12")
        await t.say("three four five six seven")  # 7 digits, max 6
        t.expect_prompt("not an account number")
        await t.until_input()
        await t.press("12")
        await t.say("three four")
        t.expect_variable("account", "1234")


async def test_a_sensitive_collect_never_shows_what_was_said() -> None:
    async with FlowTester(flow()) as t:
        await t.press("1")
        await t.say("one two three four")
        await t.until_input()
        assert t.channel.listening == Listen(digits=True, sensitive=True, min_digits=4, max_digits=4)
        await t.say("nine eight seven six")
        await t.until_input()
        assert t.channel.listening is not None and "yes" in t.channel.listening.phrases
        await t.say("yes")
        t.expect_state("done")
        assert t.variables["pin"] == "9876"
        text = json.dumps([e.data for e in t.trace])
        assert "9876" not in text and "nine" not in text
        said = [e.data for e in t.trace.of_kind("speech") if e.state == "pin"]
        assert said[0] == {"text": "*", "masked": True, "heard": said[0]["heard"], "consumed": "pin", "as": "*"}


async def test_a_late_result_of_a_sensitive_entry_stays_masked() -> None:
    async with FlowTester(flow()) as t:
        await t.press("1")
        await t.say("one two three four")
        await t.until_input()
        t.channel.start_speaking()
        await t.press("9876")  # keys win; the entry completes and the call moves on
        t.channel.finish_speaking("nine eight seven six")
        await t.advance(0)
        dropped = t.trace.of_kind("speech")[-1].data
        assert dropped["text"] == "*" and "discarded" in dropped


async def test_confirm_by_voice_no_re_enters() -> None:
    async with FlowTester(flow()) as t:
        await t.press("1")
        await t.say("one two three four")
        await t.say("nine eight seven six")
        await t.until_input()
        await t.say("no")
        t.expect_state("pin")
        t.expect_prompt("Your PIN?")


async def test_listening_stops_when_the_state_is_left_and_at_the_end() -> None:
    async with FlowTester(flow()) as t:
        await t.say("cards")
        await t.advance(10)
        t.expect_ended("hangup")
        assert t.channel.listens[-1] is None and t.channel.listening is None


async def test_a_pin_said_as_keys_end_it_stays_masked_when_the_next_state_listens_openly() -> None:
    """The PIN's Speech can be queued behind the keys that completed its collect: the next
    state's (not sensitive) listening request must not unmask it, nor take it as input."""
    f = load_flow_text(textwrap.dedent("""\
        start: pin
        defaults: {input: [dtmf, speech]}
        states:
          pin:
            collect: {prompt: "Your PIN?", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
            next: main
          main:
            menu:
              prompt: "Say billing or press 1."
              options: {"1": {to: done, say: [billing]}}
          done: {say: "Done.", hangup: true}
    """), "t.yaml")
    async with FlowTester(f) as t:
        await t.until_input()
        t.channel.start_speaking()
        await t.press("9876")  # keys win; the entry completes, the menu listens (not sensitive)
        assert t.channel.listening is not None and not t.channel.listening.sensitive
        t.channel.finish_speaking("nine eight seven six")
        await t.advance(0)
        t.expect_state("main")
        dropped = t.trace.of_kind("speech")[-1].data
        assert dropped["text"] == "*" and "discarded" in dropped
        assert "nine" not in json.dumps([e.data for e in t.trace])
