"""Press-or-say in the flow language: `input:`, options with `say:` words, `max_attempts`, and
the load-time checks, each naming file, line and column."""

from __future__ import annotations

import textwrap

from ivrkit.flow.loader import CheckResult, check_flow_text
from tests.flow.test_validate import FILE, at, one


def check(text: str) -> CheckResult:
    return check_flow_text(textwrap.dedent(text), FILE, check_hooks=False)


FLOW = """\
    start: main
    defaults: {input: [dtmf, speech], max_attempts: 3}
    states:
      main:
        menu:
          prompt: "Say billing, or press 1. For cards press 2."
          options:
            "1": {to: billing, say: [Billing, bills, "my invoice"]}
            "2": cards
      billing:
        input: dtmf
        collect: {prompt: "Your account number?", into: account}
        next: cards
      cards: {say: "Cards.", hangup: true}
"""


def test_options_take_words_and_plain_options_still_work() -> None:
    r = check(FLOW)
    assert r.issues == (), [i.format() for i in r.issues]
    assert r.flow is not None
    main = r.flow.states["main"]
    assert main.menu is not None
    assert dict(main.menu.options) == {"1": "billing", "2": "cards"}
    assert dict(main.menu.words) == {"1": ("billing", "bills", "my invoice")}  # normalised: lower case
    assert main.settings.input == ("dtmf", "speech") and main.settings.speech and main.settings.max_attempts == 3
    billing = r.flow.states["billing"].settings
    assert billing.input == ("dtmf",) and not billing.speech and billing.max_attempts == 3


def test_the_default_is_keys_only_and_no_total_limit() -> None:
    r = check("""\
        start: m
        states:
          m: {menu: {prompt: p, options: {"1": e}}}
          e: {say: bye, hangup: true}
    """)
    assert r.flow is not None
    s = r.flow.states["m"].settings
    assert s.input == ("dtmf",) and s.max_attempts is None


def test_the_same_word_on_two_options_is_an_error_at_its_second_place() -> None:
    r = check("""\
        start: m
        input: speech
        states:
          m:
            input: [speech, dtmf]
            menu:
              prompt: p
              options:
                "1": {to: e, say: [bills, billing]}
                "2": {to: e, say: [cards, Billing]}
          e: {say: bye, hangup: true}
    """)
    issue = at(one(r, "same-word"), 10, 35)
    assert "'billing' chooses option '1' (line 9) and option '2'" in issue.message
    assert issue.hint and "one option" in issue.hint


def test_speech_with_no_words_is_an_error() -> None:
    r = check("""\
        start: m
        states:
          m:
            input: [dtmf, speech]
            menu: {prompt: p, options: {"1": e}}
          e: {say: bye, hangup: true}
    """)
    issue = at(one(r, "speech-no-words"), 5, 23)
    assert "menu 'm' takes speech" in issue.message and issue.hint and "say:" in issue.hint


def test_words_on_a_keys_only_menu_are_a_warning() -> None:
    r = check("""\
        start: m
        states:
          m:
            menu: {prompt: p, options: {"1": {to: e, say: yes}}}
          e: {say: bye, hangup: true}
    """)
    issue = at(one(r, "unused-words"), 4, 23)
    assert issue.severity == "warning" and issue.hint and "input: [dtmf, speech]" in issue.hint


def test_a_speech_only_menu_warns_about_an_option_without_words() -> None:
    r = check("""\
        start: m
        states:
          m:
            input: speech
            menu: {prompt: p, options: {"1": {to: e, say: one}, "2": e}}
          e: {say: bye, hangup: true}
    """)
    assert "option '2' has no words" in at(one(r, "unreachable-option"), 5, 23).message


def test_bad_input_modes_and_phrases() -> None:
    r = check("""\
        start: m
        defaults: {input: [dtmf, voice]}
        states:
          m:
            input: []
            menu: {prompt: p, options: {"1": {to: e, say: ["card 2", ok]}, "2": {say: [x]}}}
          e: {say: bye, hangup: true}
    """)
    bad = [i for i in r.issues if i.code == "bad-value"]
    assert [(i.line, i.col) for i in bad] == [(2, 26), (5, 12)]
    assert "input 'voice' is not one of: dtmf, speech" in bad[0].message
    phrase = at(one(r, "bad-phrase"), 6, 52)
    assert phrase.hint == "write a digit as a word (two, not 2)"
    assert "needs 'to'" in at(one(r, "missing-key"), 6, 73).message


def test_max_attempts_must_be_positive() -> None:
    r = check("""\
        start: m
        states:
          m: {menu: {prompt: p, options: {"1": e}}, max_attempts: 0}
          e: {say: bye, hangup: true}
    """)
    assert any(i.line == 3 and "max_attempts" in i.message for i in r.issues), [i.format() for i in r.issues]


def test_a_flows_stt_plugin_is_checked_at_load_like_its_tts() -> None:
    r = check_flow_text("start: m\nstt: livekit.plugins.nosuch:STT\nstates:\n  m: {say: hi, hangup: true}\n", FILE)
    issue = [i for i in r.issues if i.line == 2]
    assert issue and "livekit.plugins.nosuch" in issue[0].message, [i.format() for i in r.issues]
    ok = check("start: m\nstt: ivrkit.livekit.tts:EspeakTTS\nstates:\n  m: {say: hi, hangup: true}\n")
    assert ok.flow is not None and str(ok.flow.stt) == "ivrkit.livekit.tts:EspeakTTS"
