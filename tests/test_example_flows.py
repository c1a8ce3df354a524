"""The example flows in flows/ behave as a caller expects, on the virtual clock.

These are also the model for how a team tests its own flow: FlowTester, keys, virtual time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrkit.channel import CallerInfo
from ivrkit.flow.loader import check_flow, load_flow
from ivrkit.machine import FlowMachine
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock

FLOWS = Path(__file__).resolve().parent.parent / "flows"


@pytest.fixture(scope="module")
def bank() -> FlowMachine:
    return FlowMachine(load_flow(FLOWS / "bank.yaml"))


@pytest.fixture(scope="module")
def support() -> FlowMachine:
    return FlowMachine(load_flow(FLOWS / "support.yaml"))


@pytest.fixture(scope="module")
def clinic() -> FlowMachine:
    return FlowMachine(load_flow(FLOWS / "appointments.yaml"))


@pytest.mark.parametrize("name", sorted(p.name for p in FLOWS.glob("*.yaml")))
def test_every_example_flow_checks_clean(name: str) -> None:
    result = check_flow(FLOWS / name)
    assert result.issues == (), "\n".join(i.format() for i in result.issues)


# --- bank ---------------------------------------------------------------------------------------


async def test_bank_balance_after_account_and_pin(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        t.expect_prompt("Welcome to Acme Bank")
        await t.until_input()
        await t.press("1")
        t.expect_prompt("eight digit account number")
        await t.press("12345678")  # eight digits complete the input at once: no pound needed
        t.expect_prompt("four digit PIN")
        await t.press("4321")
        t.expect_prompt("Your balance is 1234.56 dollars.")
        await t.until_input()
        t.expect_state("main")
        t.expect_prompt("Welcome to Acme Bank")


async def test_bank_pin_never_appears_in_the_trace(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("1")
        await t.press("12345678")
        await t.press("4321")
        t.expect_prompt("Your balance is")
        keys = [e.data for e in t.trace.keys()]
        assert len(keys) == 13  # every key is recorded, none lost or invented
        assert [k["digit"] for k in keys[-4:]] == ["*"] * 4
        assert "4321" not in t.trace.to_jsonl()
        assert "12345678" in t.trace.to_jsonl()  # the account number is not sensitive


async def test_bank_regular_caller_types_ahead_through_every_prompt(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("1123456784321", gap=0.2)  # all during the welcome prompt
        t.expect_prompt("Your balance is 1234.56 dollars.")
        cut = [e.state for e in t.trace.of_kind("prompt_end") if e.data["interrupted"]]
        assert cut[:3] == ["main", "account", "pin"]  # barge-in: each prompt cut by the next key


async def test_bank_wrong_pin_three_times_locks(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("1")
        await t.press("87654321")
        for _ in range(3):
            await t.until_input()
            await t.press("9999")
        t.expect_prompt("That PIN is not correct")
        t.expect_prompt("phone banking is now locked")
        await t.advance(30)
        t.expect_ended("hangup")


async def test_bank_star_clears_a_mistyped_pin(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("1")
        await t.press("87654321")
        await t.until_input()
        await t.press("12*1111")
        t.expect_prompt("Your balance is 50.00 dollars.")


async def test_bank_no_input_escalates_then_says_goodbye(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Sorry, I didn't hear a choice.")
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Please press a key on your phone now.")
        await t.until_input()
        await t.advance(5)
        t.expect_prompt("Thank you for calling Acme Bank. Goodbye.")
        await t.advance(10)
        t.expect_ended("hangup")


async def test_bank_lost_card_reads_a_reference_digit_by_digit(bank: FlowMachine) -> None:
    async with FlowTester(bank, caller=CallerInfo(number="+15550100")) as t:
        await t.press("2")
        text = t.expect_prompt("Your card is now blocked")
        reference = t.variables["reference"]
        assert len(reference) == 6 and " ".join(reference) in text


async def test_bank_agent_is_announced_then_transferred(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("0")
        t.expect_prompt("Please hold")
        await t.until_input()
        assert t.channel.transfers == ["sip:agents@pbx.example.com"]
        t.expect_ended("transfer")


# --- support ------------------------------------------------------------------------------------


async def test_support_closed_outside_business_hours(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-28T10:00:00"}) as t:  # a Saturday
        t.expect_prompt("Thank you for calling Example Support.")
        await t.advance(30)
        t.expect_prompt("Our lines are open Monday to Friday")
        t.expect_ended("hangup")


async def test_support_short_queue_goes_straight_to_a_technician(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00", "queue_length": 1}) as t:
        await t.until_input()
        await t.until_input()
        await t.press("1")
        t.expect_prompt("You are number 2 in the queue. The expected wait is 8 minutes.")
        await t.advance(30)
        assert t.channel.transfers == ["sip:tech@pbx.example.com"]


async def test_support_long_queue_offers_a_call_back(support: FlowMachine) -> None:
    caller = CallerInfo(number="+441234567890")
    async with FlowTester(support, caller=caller, variables={"now": "2026-11-25T10:00:00", "queue_length": 9}) as t:
        await t.press("1")
        t.expect_prompt("You are number 10 in the queue")
        await t.until_input()
        t.expect_prompt("To get a call back")
        await t.press("1")
        t.expect_prompt("We will call you back. Your reference is 7 8 9 0")
        await t.advance(30)
        t.expect_ended("hangup")


async def test_support_ticket_is_confirmed_before_lookup(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00"}) as t:
        await t.press("3")
        t.expect_prompt("enter your ticket number")
        await t.press("123456#")
        t.expect_prompt("You entered 1 2 3 4 5 6")
        await t.press("1")
        t.expect_prompt("Your ticket is being worked on.")


async def test_support_unknown_ticket_is_a_no_match(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00"}) as t:
        await t.press("3")
        await t.press("999999#")
        t.expect_prompt("We could not find that ticket.")
        t.expect_state("ticket")


# --- appointments -------------------------------------------------------------------------------


async def test_appointment_booked_after_date_confirmed(clinic: FlowMachine) -> None:
    async with FlowTester(clinic, variables={"today": "2026-11-25"}) as t:
        t.expect_prompt("City Clinic")
        await t.until_input()
        await t.until_input()
        await t.press("1201")  # Tuesday 1 December
        t.expect_prompt("You entered 1 2 0 1")
        await t.press("1")
        t.expect_prompt("For a morning appointment")
        await t.press("2")
        t.expect_prompt("You are booked at 14:00 on Tuesday December 1. Your reference is 1 2 0 1 1 4")
        t.expect_variable("date_reason", "max_digits")


async def test_appointment_weekend_date_is_refused_and_reentry_works(clinic: FlowMachine) -> None:
    async with FlowTester(clinic, variables={"today": "2026-11-25"}) as t:
        await t.press("1128")  # a Saturday
        t.expect_prompt("That date cannot be booked.")
        await t.until_input()
        await t.press("1202")
        t.expect_prompt("You entered 1 2 0 2")
        await t.press("2")  # re-enter
        t.expect_prompt("Please enter the date")
        await t.press("1203")
        await t.press("1")
        t.expect_state("slot")


async def test_appointment_back_key_returns_to_the_date(clinic: FlowMachine) -> None:
    async with FlowTester(clinic, variables={"today": "2026-11-25"}) as t:
        await t.press("1201")
        await t.press("1")
        t.expect_state("slot")
        await t.press("*")
        t.expect_state("date")
        t.expect_prompt("Please enter the date")


# --- every edge of every example flow (`pytest --ivr-cov` reaches 100 %) -------------------------


async def test_bank_star_repeats_the_menu_and_a_wrong_key_is_a_no_match(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.until_input()
        await t.press("*")
        t.expect_prompt("Welcome to Acme Bank")
        t.expect_prompt("Welcome to Acme Bank")  # played again, not a retry
        await t.until_input()
        await t.press("5")
        t.expect_prompt("That is not a valid choice.")
        assert [e.data["count"] for e in t.trace.of_kind("no_match")] == [1]
        t.expect_state("main")


async def test_bank_star_in_the_account_number_goes_back_to_the_menu(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("1")
        t.expect_prompt("eight digit account number")
        await t.press("*")
        t.expect_state("main")
        t.expect_prompt("Welcome to Acme Bank")


async def test_bank_account_number_silence_then_too_short_then_back_to_the_menu(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("1")
        await t.until_input()
        await t.advance(5)
        assert t.trace.of_kind("no_input")[-1].state == "account"
        t.expect_prompt("eight digit account number")  # asked again
        await t.until_input()
        await t.press("123#")
        t.expect_prompt("That account number is not valid.")
        await t.until_input()
        await t.press("123#")
        await t.until_input()
        await t.press("123#")  # the third no-match: on_max_retries is the main menu
        t.expect_state("main")
        t.expect_prompt("Welcome to Acme Bank")


async def test_bank_pin_silence_then_too_short_is_asked_again(bank: FlowMachine) -> None:
    async with FlowTester(bank) as t:
        await t.press("1")
        await t.press("87654321")
        await t.until_input()
        await t.advance(5)
        assert t.trace.of_kind("no_input")[-1].state == "pin"
        await t.until_input()
        await t.press("12#")
        t.expect_prompt("That PIN is not correct.")
        assert "12" not in [e.data["digit"] for e in t.trace.keys()][-3:]  # masked
        await t.until_input()
        await t.press("1111")
        t.expect_prompt("Your balance is 50.00 dollars.")


async def test_bank_after_blocking_a_card_the_caller_is_back_in_the_menu(bank: FlowMachine) -> None:
    async with FlowTester(bank, caller=CallerInfo(number="+15550100")) as t:
        await t.press("2")
        t.expect_prompt("Your card is now blocked")
        await t.until_input()
        t.expect_state("main")
        t.expect_prompt("Welcome to Acme Bank")


async def test_bank_a_failed_transfer_takes_the_error_state(bank: FlowMachine) -> None:
    clock = VirtualClock()
    async with FlowTester(bank, channel=FakeChannel(clock, fail_transfer=True)) as t:
        await t.press("0")
        await t.until_input()
        t.expect_prompt("technical difficulties")
        await t.advance(30)
        t.expect_ended("hangup")
        assert t.trace.of_kind("error")[0].state == "agent"


async def test_support_billing_is_transferred(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00"}) as t:
        await t.press("2")
        t.expect_prompt("Connecting you to billing.")
        await t.advance(30)
        assert t.channel.transfers == ["sip:billing@pbx.example.com"]
        t.expect_ended("transfer")


async def test_support_a_failed_transfer_apologises(support: FlowMachine) -> None:
    channel = FakeChannel(VirtualClock(), fail_transfer=True)
    async with FlowTester(support, channel=channel, variables={"now": "2026-11-25T10:00:00"}) as t:
        await t.press("2")
        await t.advance(30)
        t.expect_prompt("Sorry, something went wrong on our side.")
        t.expect_ended("hangup")


async def test_support_menu_repeat_no_match_then_silence_queues_for_a_technician(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00", "queue_length": 0}) as t:
        await t.until_input()
        await t.until_input()
        await t.press("*")
        t.expect_prompt("For technical support")
        await t.until_input()
        await t.press("9")
        t.expect_prompt("Sorry, that is not an option.")
        await t.until_input()
        await t.advance(6)
        t.expect_prompt("Please choose an option.")
        await t.until_input()
        await t.advance(6)  # retries: 2, so the second silence leaves for the queue
        t.expect_prompt("You are number 1 in the queue.")


async def test_support_call_back_offer_keep_waiting(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00", "queue_length": 9}) as t:
        await t.press("1")
        await t.until_input()
        t.expect_prompt("To get a call back")
        await t.until_input()
        await t.press("2")
        t.expect_prompt("Connecting you to a technician.")


async def test_support_call_back_offer_silence_and_wrong_keys_end_with_a_technician(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00", "queue_length": 9}) as t:
        await t.press("1")
        await t.until_input()
        await t.until_input()
        await t.advance(6)
        t.expect_state("callback_offer")
        await t.until_input()
        await t.press("7")
        t.expect_state("callback_offer")
        await t.until_input()
        await t.press("8")  # the second no-match: on_max_retries
        t.expect_prompt("Connecting you to a technician.")
        await t.advance(30)
        assert t.channel.transfers == ["sip:tech@pbx.example.com"]


async def test_support_ticket_reentered_then_status_then_the_menu(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00"}) as t:
        await t.press("3")
        await t.press("20261125#")  # a ticket that exists, but not the one the caller meant
        t.expect_prompt("You entered 2 0 2 6 1 1 2 5")
        await t.press("2")  # re-enter
        t.expect_prompt("enter your ticket number")
        await t.press("123456#")
        await t.press("1")
        t.expect_prompt("Your ticket is being worked on.")
        await t.until_input()
        t.expect_state("main")


async def test_support_ticket_silence_then_too_short_returns_to_the_menu(support: FlowMachine) -> None:
    async with FlowTester(support, variables={"now": "2026-11-25T10:00:00"}) as t:
        await t.press("3")
        await t.until_input()
        await t.advance(6)
        t.expect_state("ticket")
        await t.until_input()
        await t.press("12#")
        t.expect_prompt("We could not find that ticket.")
        await t.until_input()
        await t.press("12#")  # the second no-match: back to the menu
        t.expect_state("main")


async def test_appointment_morning_slot_is_booked(clinic: FlowMachine) -> None:
    async with FlowTester(clinic, variables={"today": "2026-11-25"}) as t:
        await t.press("1201")
        await t.press("1")
        await t.press("1")
        t.expect_prompt("You are booked at 09:30 on Tuesday December 1. Your reference is 1 2 0 1 0 9")


async def test_appointment_silence_and_impossible_dates_end_in_an_apology(clinic: FlowMachine) -> None:
    async with FlowTester(clinic, variables={"today": "2026-11-25"}) as t:
        await t.until_input()
        await t.until_input()
        await t.advance(6)
        t.expect_prompt("Please enter four digits for the date.")
        await t.until_input()
        await t.press("1340")  # no 13th month: the pattern refuses it
        t.expect_prompt("That date cannot be booked.")
        await t.until_input()
        await t.press("1399")
        t.expect_prompt("Please choose a weekday in the next ninety days.")  # the second no_match prompt
        await t.until_input()
        await t.press("0000")  # the third no-match (no-input is counted apart): on_max_retries
        t.expect_prompt("Sorry, we could not book your appointment.")
        await t.advance(30)
        t.expect_ended("hangup")


async def test_appointment_slot_menu_silence_and_wrong_keys_end_in_an_apology(clinic: FlowMachine) -> None:
    async with FlowTester(clinic, variables={"today": "2026-11-25"}) as t:
        await t.press("1201")
        await t.press("1")
        await t.until_input()
        await t.advance(6)
        t.expect_state("slot")
        await t.until_input()
        await t.press("5")
        t.expect_prompt("Please press 1 or 2.")
        await t.until_input()
        await t.press("6")
        await t.until_input()
        await t.press("7")  # the third no-match: on_max_retries
        t.expect_prompt("Sorry, we could not book your appointment.")


async def test_appointment_a_failing_hook_takes_the_error_state(clinic: FlowMachine) -> None:
    async with FlowTester(clinic, variables={"today": "not a date"}) as t:  # the validate hook raises
        await t.press("1201")
        t.expect_prompt("Sorry, we could not book your appointment.")
        assert "ValueError" in t.trace.of_kind("error")[0].data["message"]


# --- press or say -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def press_or_say() -> FlowMachine:
    return FlowMachine(load_flow(FLOWS / "press_or_say.yaml"))


async def test_press_or_say_by_voice_all_the_way(press_or_say: FlowMachine) -> None:
    async with FlowTester(press_or_say) as t:
        await t.say("billing")  # over the welcome prompt: barge-in
        t.expect_prompt("say or type your four digit account number")
        await t.until_input()
        await t.say("four oh two one")
        t.expect_prompt("I heard 4 0 2 1")
        await t.say("yes")
        t.expect_prompt("Your account 4 0 2 1 has no payment due.")
        await t.advance(20)
        t.expect_ended("hangup")


async def test_press_or_say_mixes_keys_and_words_and_a_no_barge_in_menu(press_or_say: FlowMachine) -> None:
    async with FlowTester(press_or_say) as t:
        await t.press("2")
        t.expect_prompt("lost or stolen")
        await t.say("stolen")  # barge_in: false: not heard over the prompt
        t.expect_state("lost_card")
        await t.until_input()
        await t.say("stolen")
        t.expect_prompt("Your card is now blocked")


async def test_press_or_say_four_attempts_of_either_kind_reach_an_agent(press_or_say: FlowMachine) -> None:
    async with FlowTester(press_or_say) as t:
        await t.until_input()
        await t.say("pizza")
        await t.until_input()
        await t.advance(6)
        await t.until_input()
        await t.press("7")
        await t.until_input()
        await t.advance(6)  # no-input 2, no-match 2: four attempts (each kind's retries is 3)
        t.expect_prompt("Connecting you to an agent")


async def test_press_or_say_keys_still_work_and_every_retry_path(press_or_say: FlowMachine) -> None:
    async with FlowTester(press_or_say) as t:
        await t.press("1")
        await t.until_input()
        await t.advance(6)  # no input
        t.expect_prompt("say or type your four digit account number")
        await t.until_input()
        await t.say("four three")  # two digits: too short
        t.expect_prompt("not a four digit account number")
        await t.until_input()
        await t.press("1234")
        await t.until_input()
        await t.say("no")  # the confirm step: enter it again
        t.expect_state("account")
        for _ in range(3):  # no-input three times: retries run out
            await t.until_input()
            await t.advance(6)
        t.expect_prompt("Connecting you to an agent")
    async with FlowTester(press_or_say) as t:
        await t.press("0")
        t.expect_prompt("Connecting you to an agent")
    async with FlowTester(press_or_say) as t:
        await t.press("2")
        await t.until_input()
        await t.advance(6)
        await t.until_input()
        await t.say("found")  # no option's word
        await t.until_input()
        await t.say("lost")
        t.expect_prompt("Your card is now blocked")
        await t.advance(10)
        t.expect_prompt("Goodbye")
        t.expect_ended("hangup")
    async with FlowTester(press_or_say) as t:
        await t.press("2")
        for _ in range(3):
            await t.until_input()
            await t.press("9")
        t.expect_prompt("Connecting you to an agent")


# --- navigate (a legacy IVR at the far end: flows/far_ends/acme_billing.yaml) --------------------


@pytest.mark.parametrize(("account", "ends", "menu"), [
    ("4321", "We found your balance.", "balance"),
    ("1234", "The billing line did not accept that.", "billing"),  # "Invalid entry." from the far end
])
async def test_navigate_drives_the_scripted_billing_line(account: str, ends: str, menu: str) -> None:
    from ivrkit.far_end_file import load_far_end

    ivr = load_far_end(FLOWS / "far_ends" / "acme_billing.yaml")
    channel = FakeChannel(VirtualClock(), far_end=ivr)
    async with FlowTester(load_flow(FLOWS / "navigate.yaml"), channel=channel) as t:
        await t.press(account)
        await t.advance(60)
    t.expect_ended("hangup")
    assert ends in t.prompts[-1] and ivr.menu == menu
    assert [k[0] for k in ivr.keys][:2] == ["2", account[0]] and not any(k[3] for k in ivr.keys[:2])
    assert account not in t.trace.to_jsonl()  # the account is sensitive: masked as it is sent


async def test_navigate_gives_up_when_the_far_end_never_offers_billing() -> None:
    from ivrkit.testing import ScriptedIvr

    ivr = ScriptedIvr({"main": ("Thank you for calling. Our offices are closed.", {})}, "main")
    async with FlowTester(load_flow(FLOWS / "navigate.yaml"), channel=FakeChannel(VirtualClock(), far_end=ivr)) as t:
        await t.press("4321")
        await t.advance(60)
    t.expect_variable("navigate_failed", "step 1: no 'for billing' heard within 20 s "
                      "(heard 'Thank you for calling. Our offices are closed.')")
    assert "did not answer as expected" in t.prompts[-1] and ivr.keys == []


async def test_navigate_account_entry_too_short_then_silent_ends_on_the_error_path() -> None:
    async with FlowTester(load_flow(FLOWS / "navigate.yaml")) as t:
        await t.until_input()
        await t.press("12")
        await t.advance(20)  # too short after the inter-digit timeout, then nothing more
        t.expect_prompt("Enter your four digit account number.")
        await t.advance(60)
    assert t.channel.dials == []
    t.expect_ended()
