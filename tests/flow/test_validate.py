"""Every load-time check of the flow validator: each test asserts the issue names the file AND the
line (and the column where it matters), its stable code, and a helpful hint."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivrkit.errors import FlowLoadError, FlowValidationError, Issue
from ivrkit.flow.loader import CheckResult, check_flow, check_flow_text, load_flow, load_flow_text

FILE = "flows/t.yaml"


def check(text: str, **kw: bool) -> CheckResult:
    return check_flow_text(textwrap.dedent(text), FILE, check_hooks=kw.get("check_hooks", False))


def one(result: CheckResult, code: str) -> Issue:
    found = [i for i in result.issues if i.code == code]
    assert len(found) == 1, f"expected one {code!r}, got {[i.format() for i in result.issues]}"
    return found[0]


def at(issue: Issue, line: int, col: int | None = None, file: str = FILE) -> Issue:
    assert issue.file == file
    assert issue.line == line, issue.format()
    if col is not None:
        assert issue.col == col, issue.format()
    assert issue.format().startswith(f"{file}:{line}:")
    assert issue.source_line is not None and issue.format().count("^") >= 1
    return issue


def test_unknown_state_in_option_names_file_line_and_suggests() -> None:
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options: {"1": billing_mnu}
          billing_menu: {say: Bills, hangup: true}
        """)
    issue = at(one(r, "unknown-state"), 6, 22)
    assert "unknown state 'billing_mnu'" in issue.message
    assert issue.hint == "did you mean 'billing_menu'?"
    assert issue.loc == 'states.main.menu.options."1"'
    assert r.flow is None


def test_unknown_state_without_close_match_lists_the_states() -> None:
    r = check("""\
        start: main
        states:
          main: {say: Hi, next: zzz}
        """)
    assert at(one(r, "unknown-state"), 3, 25).hint == "defined states: main"


def test_empty_menu_key_says_a_hash_may_have_been_eaten() -> None:
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options: {"1": main, "": main}
        """)
    issue = at(one(r, "key-not-string"), 6, 28)
    assert "empty key" in issue.message and '"#"' in (issue.hint or "")


def test_unknown_state_in_next_goto_and_on_max_retries() -> None:
    r = check("""\
        start: a
        error: oops
        states:
          a: {say: x, next: nowhere}
          b:
            goto: [{if: "x == 1", then: nope}, {else: a}]
          c:
            menu: {prompt: p, options: {"1": a}, on_max_retries: gone}
        """)
    lines = sorted(i.line for i in r.issues if i.code == "unknown-state")
    assert lines == [2, 4, 6, 8]


def test_unreachable_state_is_a_warning_with_position() -> None:
    r = check("""\
        start: main
        states:
          main: {say: Hi, hangup: true}
          orphan: {say: lonely, hangup: true}
        """)
    issue = at(one(r, "unreachable-state"), 4, 3)
    assert issue.severity == "warning"
    assert r.flow is not None  # warnings do not stop loading


def test_missing_start_and_unknown_start() -> None:
    r = check("""\
        states:
          main: {say: Hi, hangup: true}
        """)
    at(one(r, "missing-start"), 1)
    r = check("""\
        start: mian
        states:
          main: {say: Hi, hangup: true}
        """)
    issue = at(one(r, "unknown-state"), 1, 8)
    assert "start state 'mian'" in issue.message and issue.hint == "did you mean 'main'?"


def test_duplicate_yaml_keys_are_caught_naming_both_lines() -> None:
    r = check("""\
        start: main
        states:
          main: {say: Hi, hangup: true}
          main: {say: Again, hangup: true}
        """)
    issue = at(one(r, "duplicate-key"), 4, 3)
    assert "first defined on line 3" in issue.message
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options:
                "1": main
                "1": main
        """)
    at(one(r, "duplicate-key"), 8)


def test_unquoted_hash_key_in_block_options_is_a_comment() -> None:
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options:
                "1": main
                #: bye
          bye: {say: Bye, hangup: true}
        """)
    issue = at(one(r, "key-not-string"), 8, 9)
    assert "comment" in issue.message
    assert issue.hint == 'quote the key: "#": bye'


def test_unquoted_hash_key_as_first_option_and_as_only_option() -> None:
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options:
                #: main
                "1": main
        """)
    at(one(r, "key-not-string"), 7, 9)
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options:
                #: main
              no_match: Sorry
        """)
    at(one(r, "key-not-string"), 7, 9)
    assert "unquoted # starts a comment" in (at(one(r, "bad-type"), 6, 15).hint or "")


def test_unquoted_hash_as_a_key_setting_is_an_error_not_no_key() -> None:
    """`terminator: #` reads as empty: taken as "no terminator", the caller's # would end up
    in the collected digits. Each key setting says so; an explicit null still means none."""
    r = check("""\
        start: main
        defaults:
          terminator: # end with pound
        states:
          main:
            collect: {prompt: PIN, into: pin, clear_key: null}
            terminator:
            next: main_menu
          main_menu:
            menu:
              prompt: Hi
              options: {"1": main}
              repeat_key: #
        """)
    issues = [i for i in r.issues if i.code == "key-not-string"]
    assert [(i.line, i.loc) for i in issues] == [
        (3, "defaults.terminator"), (7, "states.main.terminator"), (13, "states.main_menu.menu.repeat_key"),
    ], [i.format() for i in r.issues]
    for issue in issues:
        at(issue, issue.line)
        assert "is empty" in issue.message
        assert issue.hint is not None and "unquoted # starts a YAML comment" in issue.hint and ': "#"' in issue.hint
    ok = check("""\
        start: main
        defaults: {terminator: null}
        states:
          main: {collect: {prompt: PIN, into: pin, clear_key: ~}, terminator: "", next: main}
        """)
    assert ok.flow is not None, [i.format() for i in ok.issues]
    assert ok.flow.states["main"].settings.terminator is None


def test_unquoted_hash_key_in_flow_options_explains_the_comment() -> None:
    with pytest.raises(FlowLoadError) as exc:
        load_flow_text('start: main\nstates:\n  main:\n    menu: {prompt: Hi, options: {"1": main, #: main}}\n', FILE, check_hooks=False)
    issue = exc.value.issues[0]
    assert issue.code == "yaml-syntax" and issue.file == FILE and issue.line >= 4
    assert issue.hint is not None and "unquoted # starts a YAML comment" in issue.hint


def test_unquoted_star_key_is_an_alias_error_with_quoting_hint() -> None:
    text = 'start: main\nstates:\n  main:\n    menu:\n      prompt: Hi\n      options:\n        *: main\n'
    with pytest.raises(FlowLoadError) as exc:
        load_flow_text(text, FILE, check_hooks=False)
    issue = exc.value.issues[0]
    assert (issue.file, issue.line, issue.code) == (FILE, 7, "yaml-syntax")
    assert issue.hint is not None and 'quote DTMF keys' in issue.hint and '"*"' in issue.hint
    assert f"{FILE}:7:" in str(exc.value)


def test_octal_looking_key_says_how_to_quote() -> None:
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options: {012: main}
        """)
    issue = at(one(r, "key-not-string"), 6, 17)
    assert "read by YAML as a number (a leading 0 makes it octal)" in issue.message
    assert issue.hint is not None and '"012"' in issue.hint and "collect" in issue.hint


def test_unquoted_single_digit_key_is_accepted_and_lower_case_normalised() -> None:
    flow = load_flow_text(textwrap.dedent("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options: {1: main, "b": main}
        """), FILE, check_hooks=False)
    assert dict(flow.states["main"].menu.options) == {"1": "main", "B": "main"}  # type: ignore[union-attr]


@pytest.mark.parametrize("key, code", [("E", "bad-dtmf-key"), ("x", "bad-dtmf-key"), ("12", "multi-key"), ("#*", "multi-key")])
def test_invalid_and_multi_char_menu_keys(key: str, code: str) -> None:
    r = check(f"""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options:
                "{key}": main
        """)
    issue = at(one(r, code), 7, 9)
    if code == "multi-key":
        assert "only single keys are supported" in issue.message and "collect" in (issue.hint or "")
    else:
        assert "0-9 * # A B C D" in (issue.hint or "")


def test_min_digits_greater_than_max_digits() -> None:
    r = check("""\
        start: pin
        states:
          pin:
            collect: {prompt: PIN, into: pin, min_digits: 6, max_digits: 4}
            next: pin
        """)
    issue = at(one(r, "digit-range"), 4)
    assert "min_digits (6) is greater than max_digits (4)" in issue.message


def test_terminator_that_is_also_a_menu_option() -> None:
    r = check("""\
        start: main
        defaults: {terminator: "#"}
        states:
          main:
            menu:
              prompt: Hi
              options: {"1": main, "#": main}
        """)
    issue = at(one(r, "terminator-clash"), 7)
    assert "terminator" in issue.message and "terminator: null" in (issue.hint or "")
    r = check("""\
        start: main
        states:
          main:
            menu:
              prompt: Hi
              options: {"1": main, "#": main}
            terminator: null
        """)
    assert not r.issues


@pytest.mark.parametrize("key", ["clear_key", "back_key"])
def test_terminator_that_is_also_a_collect_key(key: str) -> None:
    r = check(f"""\
        start: pin
        states:
          pin:
            collect:
              prompt: PIN
              into: pin
              {key}: "#"
            next: pin
        """)
    at(one(r, "terminator-clash"), 7, len(key) + 9)


def test_loop_that_never_waits_for_the_caller() -> None:
    r = check("""\
        start: main
        states:
          main:
            menu: {prompt: Hi, options: {"1": a}}
          a: {say: A, next: b}
          b:
            goto: [{if: "x == 1", then: a}, {else: c}]
          c: {run: m:f, next: a}
        """)
    issue = at(one(r, "spin-loop"), 5, 3)
    assert "a -> b -> c -> a" in issue.message and "never waits" in issue.message
    r = check("""\
        start: a
        states:
          a: {say: A, next: a}
        """)
    at(one(r, "spin-loop"), 3)


def test_loop_through_a_menu_is_fine() -> None:
    r = check("""\
        start: main
        states:
          main:
            menu: {prompt: Hi, options: {"1": a}}
          a: {say: A, next: main}
        """)
    assert r.issues == ()


def test_a_retry_once_path_through_on_error_is_not_a_spin_loop() -> None:
    """A second error before the caller is waited on goes to the built-in error state, so an
    on_error edge back into the loop cannot spin."""
    r = check("""\
        start: intro
        states:
          intro: {say: One moment., next: lookup}
          lookup: {run: m:f, on_error: sorry, next: bye}
          sorry: {say: Sorry., next: intro}
          bye: {say: Bye, hangup: true}
        """)
    # and a state reached only through on_error is reachable
    assert [i.code for i in r.issues] == [], [i.format() for i in r.issues]


def test_hooks_that_cannot_be_imported_or_are_not_callable(tmp_path: Path) -> None:
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "ivr_t_hooks.py").write_text("def ok(ctx):\n    return {}\nNOT_CALLABLE = 3\n")
    (tmp_path / "flow.yaml").write_text(textwrap.dedent("""\
        start: a
        python_path: [hooks]
        hooks: {call_start: ivr_t_hooks:ok, call_end: [ivr_t_hooks:NOT_CALLABLE]}
        states:
          a: {run: ivr_t_hooks:missing, next: b}
          b: {run: no_such_module_xyz:f, next: c}
          c:
            collect: {prompt: P, into: p, validate: ivr_t_hooks:ok}
            hangup: false
            next: c
        """))
    r = check_flow(tmp_path / "flow.yaml")
    bad = sorted((i.line, i.message) for i in r.issues if i.code == "bad-hook")
    assert [line for line, _ in bad] == [3, 5, 6]
    assert "not a function" in bad[0][1] and "has no attribute 'missing'" in bad[1][1]
    assert "cannot import module 'no_such_module_xyz'" in bad[2][1]
    assert all(i.file == str(tmp_path / "flow.yaml") for i in r.issues)
    # switchable: without hook checks the same file has no errors
    assert check_flow(tmp_path / "flow.yaml", check_hooks=False).flow is not None


def test_malformed_hook_reference() -> None:
    r = check("""\
        start: a
        states:
          a: {run: "not a hook", hangup: true}
        """)
    issue = at(one(r, "bad-hook-ref"), 3, 12)
    assert "module:function" in issue.message


def test_template_variables_nothing_sets_are_warnings() -> None:
    r = check("""\
        start: pin
        states:
          pin:
            collect: {prompt: "PIN for {caller_number}", into: pin}
            next: show
          show:
            run: {hook: m:f, sets: [balance]}
            say: "PIN {pin} ({pin_reason}), balance {balance}, {balanse}, {tier}"
            hangup: true
        """)
    warnings = [i for i in r.issues if i.code == "unset-variable"]
    assert sorted(i.message for i in warnings) == [
        "variable 'balanse' is used but nothing sets it", "variable 'tier' is used but nothing sets it"]
    assert all(i.severity == "warning" and i.line == 8 and i.file == FILE for i in warnings)
    assert any(i.hint == "did you mean 'balance'?" for i in warnings)
    assert r.flow is not None


def test_malformed_template_is_an_error() -> None:
    r = check("""\
        start: a
        states:
          a: {say: "Hi {user.name}", hangup: true}
        """)
    at(one(r, "bad-template"), 3, 12)


@pytest.mark.parametrize("value", ["5 parsecs", "-1s", "fast", "1.2.3s", "true"])
def test_durations_that_do_not_parse(value: str) -> None:
    r = check(f"""\
        start: a
        defaults:
          timeout: {value}
        states:
          a: {{say: A, hangup: true}}
        """)
    issue = at(one(r, "bad-duration"), 3, 12)
    assert "duration" in issue.message


def test_durations_that_parse() -> None:
    flow = load_flow_text(textwrap.dedent("""\
        start: a
        defaults: {timeout: 1.5s, inter_digit_timeout: 250ms, hook_timeout: 2m, dtmf_pace: 0.3}
        states:
          a: {say: A, hangup: true, timeout: 7}
        """), FILE, check_hooks=False)
    assert (flow.defaults.timeout, flow.defaults.inter_digit_timeout, flow.defaults.hook_timeout) == (1.5, 0.25, 120.0)
    assert flow.states["a"].settings.timeout == 7.0 and flow.states["a"].settings.dtmf_pace == 0.3


@pytest.mark.parametrize("section, line, typo, suggestion", [
    ("state", 4, "nxt", "next"), ("menu", 6, "optoins", "options"), ("collect", 10, "max_digit", "max_digits")])
def test_unknown_keys_with_did_you_mean(section: str, line: int, typo: str, suggestion: str) -> None:
    text = textwrap.dedent("""\
        start: main
        states:
          main:
            STATE_KEY: x
            menu:
              MENU_KEY: {"1": p}
              options: {"1": p}
              prompt: Hi
          p:
            collect: {prompt: P, into: p, COLLECT_KEY: 4}
            next: main
        """)
    for sec, key in (("state", "STATE_KEY"), ("menu", "MENU_KEY"), ("collect", "COLLECT_KEY")):
        text = text.replace(key, typo if sec == section else {"STATE_KEY": "timeout", "MENU_KEY": "repeat_key", "COLLECT_KEY": "max_digits"}[key])
    text = text.replace("repeat_key: {\"1\": p}", "repeat_key: \"*\"").replace("timeout: x", "timeout: 3s")
    r = check_flow_text(text, FILE, check_hooks=False)
    issue = at(one(r, "unknown-key"), line)
    assert issue.hint == f"did you mean '{suggestion}'?"


def test_unknown_top_level_key() -> None:
    r = check("""\
        start: a
        stats:
          a: {say: A, hangup: true}
        """)
    assert at(one(r, "unknown-key"), 2).hint == "did you mean 'states'?"


def test_state_with_two_actions() -> None:
    r = check("""\
        start: a
        states:
          a:
            menu: {prompt: Hi, options: {"1": a}}
            collect: {prompt: P, into: p}
        """)
    issue = at(one(r, "two-actions"), 5, 5)
    assert "'menu' and 'collect'" in issue.message


def test_goto_without_unconditional_else_and_arms_after_else() -> None:
    r = check("""\
        start: m
        states:
          m: {menu: {prompt: Hi, options: {"1": g}}}
          g:
            goto:
              - {if: "x == 1", then: m}
        """)
    issue = at(one(r, "goto-no-else"), 6)
    assert "else" in (issue.hint or "")
    r = check("""\
        start: m
        states:
          m: {menu: {prompt: Hi, options: {"1": g}}}
          g:
            goto:
              - {else: m}
              - {if: "x == 1", then: m}
        """)
    at(one(r, "unreachable-arm"), 7)


def test_bad_condition_syntax_points_at_the_column() -> None:
    r = check("""\
        start: m
        states:
          m: {menu: {prompt: Hi, options: {"1": g}}}
          g:
            goto: [{if: "x == 1 and os.system", then: m}, {else: m}]
        """)
    issue = at(one(r, "bad-condition"), 5)
    assert issue.col == 29  # the 'o' of os.system: column 12 of the condition, which starts at col 18
    assert "Attribute" in issue.message


def test_send_dtmf_with_invalid_characters() -> None:
    r = check("""\
        start: a
        states:
          a: {send_dtmf: "12x4#", next: b}
          b: {say: done, hangup: true}
        """)
    issue = at(one(r, "bad-dtmf-key"), 3, 21)
    assert "'x'" in issue.message
    flow = load_flow_text('start: a\nstates:\n  a: {send_dtmf: {digits: "12w{acct}#a", pace: 300ms}, hangup: true}\n', FILE, check_hooks=False)
    assert flow.states["a"].send_dtmf.digits == "12w{acct}#A"  # type: ignore[union-attr]
    assert flow.states["a"].send_dtmf.pace == 0.3  # type: ignore[union-attr]


def test_bad_regex_pattern() -> None:
    r = check("""\
        start: p
        states:
          p:
            collect:
              prompt: P
              into: p
              pattern: "[0-9"
            hangup: true
        """)
    issue = at(one(r, "bad-pattern"), 7, 16)
    assert "not a valid regular expression" in issue.message


def test_unknown_prompt_reference() -> None:
    r = check("""\
        start: a
        prompts: {welcome: Hello}
        states:
          a: {say: "@welcom", hangup: true}
        """)
    issue = at(one(r, "unknown-prompt"), 4, 12)
    assert issue.hint == "did you mean 'welcome'?"


def test_missing_audio_file_and_resolved_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "hi.wav").write_bytes(b"RIFF")
    path = tmp_path / "f.yaml"
    path.write_text('start: a\nstates:\n  a: {say: [{audio: audio/hi.wav}, {audio: audio/nope.wav}], hangup: true}\n')
    r = check_flow(path, check_hooks=False)
    issue = one(r, "missing-audio")
    assert (issue.file, issue.line) == (str(path), 3) and "audio/nope.wav" in issue.message
    path.write_text('start: a\nstates:\n  a: {say: [{audio: audio/hi.wav}], hangup: true}\n')
    flow = load_flow(path, check_hooks=False)
    assert flow.states["a"].say.parts[0].value == str(tmp_path / "audio" / "hi.wav")  # type: ignore[union-attr]


def test_missing_next_and_unused_next() -> None:
    r = check("""\
        start: a
        states:
          a: {say: A}
          b:
            menu: {prompt: Hi, options: {"1": a}}
            next: a
        """)
    at(one(r, "missing-next"), 3)
    at(one(r, "unused-next"), 6)


def test_missing_required_keys() -> None:
    r = check("""\
        start: a
        states:
          a:
            menu: {options: {"1": a}}
        """)
    issue = at(one(r, "missing-key"), 4)
    assert "needs 'prompt'" in issue.message


def test_all_issues_are_collected_before_raising() -> None:
    with pytest.raises(FlowValidationError) as exc:
        load_flow_text(textwrap.dedent("""\
            start: a
            states:
              a: {say: "{x}", next: nowhere, timeout: soon}
              b: {menu: {prompt: Hi, options: {"12": a}}}
            """), FILE, check_hooks=False)
    codes = {i.code for i in exc.value.issues}
    assert {"unknown-state", "bad-duration", "multi-key", "unset-variable"} <= codes
    assert f"{FILE}: " in str(exc.value) and "errors" in str(exc.value)


def test_tts_names_a_factory_that_must_import() -> None:
    r = check("""\
        start: a
        tts: ivrkit.livekit.tts:Nope
        states:
          a: {say: Hi, hangup: true}
        """, check_hooks=True)
    issue = at(one(r, "bad-hook"), 2, 6)
    assert "has no attribute 'Nope'" in issue.message and issue.loc == "tts"
    ok = check("start: a\ntts: ivrkit.livekit.tts:EspeakTTS\nstates:\n  a: {say: Hi, hangup: true}\n", check_hooks=True)
    assert ok.flow is not None and str(ok.flow.tts) == "ivrkit.livekit.tts:EspeakTTS"


def test_dtmf_names_how_keys_arrive_and_a_typo_is_pointed_at() -> None:
    r = check("""\
        start: a
        dtmf: inbnd
        states:
          a: {say: Hi, hangup: true}
        """)
    issue = at(one(r, "bad-value"), 2, 7)
    assert "'inbnd' is not one of rfc4733, inband, both" in issue.message and issue.loc == "dtmf"
    assert issue.hint is not None and "inband" in issue.hint
    for written, mode in (("inband", "inband"), ("Both", "both"), ("rfc4733", "rfc4733")):
        ok = check(f"start: a\ndtmf: {written}\nstates:\n  a: {{say: Hi, hangup: true}}\n")
        assert ok.flow is not None and ok.flow.dtmf == mode
    plain = check("start: a\nstates:\n  a: {say: Hi, hangup: true}\n")
    assert plain.flow is not None and plain.flow.dtmf is None  # the worker's --dtmf decides


def test_reserved_state_names_and_digit_edit_keys() -> None:
    r = check("""\
        start: _ivrkit_error
        states:
          _ivrkit_error:
            collect: {prompt: PIN, into: pin, clear_key: "0"}
            next: _ivrkit_error
        """)
    assert "reserved by ivrkit" in at(one(r, "reserved-state"), 3, 3).message
    warning = at(one(r, "key-clash"), 4, 50)
    assert warning.severity == "warning" and "callers cannot enter 0" in warning.message


def test_numbers_yaml_reads_in_another_base_are_refused_with_the_decimal_to_write() -> None:
    r = check("""\
        start: pin
        defaults: {timeout: 010, retries: 3}
        states:
          pin:
            collect: {prompt: PIN, into: pin, max_digits: 012, min_digits: 04}
            inter_digit_timeout: 1:30
            next: bye
          bye: {say: Bye, hangup: true}
        """)
    found = [i for i in r.issues if i.code == "non-decimal-number"]
    assert [(i.line, i.col) for i in found] == [(2, 21), (5, 51), (6, 26)]  # 04 is octal 4: the same number
    timeout, digits, base60 = found
    assert timeout.message == "timeout 010 is read by YAML as an octal number: 8 s"
    assert timeout.hint is not None and timeout.hint.startswith("write timeout: 10 ")
    assert digits.message == "max_digits 012 is read by YAML as an octal number: 10"
    assert digits.hint is not None and digits.hint.startswith("write max_digits: 12 ")
    assert base60.message == "inter_digit_timeout 1:30 is read by YAML as a base 60 number: 90 s"
    assert all(i.severity == "error" for i in found) and not r.ok


def test_plain_decimal_numbers_and_durations_are_accepted() -> None:
    r = check("""\
        start: pin
        defaults: {timeout: 10, retries: 1_0, inter_digit_timeout: 2.5}
        states:
          pin:
            collect: {prompt: PIN, into: pin, max_digits: 12, min_digits: 0}
            next: bye
          bye: {say: Bye, hangup: true}
        """)
    assert not [i for i in r.issues if i.severity == "error"], [i.format() for i in r.issues]
def test_retry_prompts_that_can_never_play_are_a_warning_at_the_first_one() -> None:
    result = check("""\
        start: main
        defaults: {retries: 2}
        states:
          main:
            menu:
              prompt: "Press 1."
              options: {"1": bye}
              no_input: ["Sorry?", "Please press a key now."]
              no_match: "Not a choice."
              on_max_retries: bye
          bye: {say: "Bye.", hangup: true}
        """)
    issue = at(one(result, "unplayable-prompt"), 8, 28)
    assert issue.severity == "warning" and result.flow is not None
    assert "no_input has 2 prompts but only 1 can play: with retries: 2 the 2nd no-input leaves the state" in issue.message
    assert issue.hint is not None and "retries: 3" in issue.hint
    with_three = check(textwrap.dedent('''\
        start: main
        defaults: {retries: 3}
        states:
          main:
            menu: {prompt: "Press 1.", options: {"1": bye}, no_input: ["Sorry?", "Press a key."], on_max_retries: bye}
          bye: {say: "Bye.", hangup: true}
        '''))
    assert with_three.issues == ()


def test_confirm_retry_prompts_need_a_confirm() -> None:
    result = check("""\
        start: pin
        states:
          pin:
            collect: {prompt: "PIN?", into: pin, confirm_no_input: "Press 1 to confirm."}
            next: bye
          bye: {say: "Bye.", hangup: true}
        """)
    issue = one(result, "unused-key")
    assert issue.severity == "warning" and "no confirm" in issue.message


@pytest.mark.parametrize(("typo", "meant"), [("meun", "menu"), ("nxet", "next"), ("hangpu", "hangup")])
def test_a_misspelled_state_key_is_one_error_with_a_suggestion_and_no_cascade(typo: str, meant: str) -> None:
    """The misspelled key may be the state's action, next: or hangup:, and the states behind it
    cannot be followed: no 'does not say what comes next', no 'cannot be reached' after it."""
    states = {
        "meun": 'meun: {prompt: "1 or 2", options: {"1": a, "2": b}}',
        "nxet": 'say: "Hello."\n            nxet: a',
        "hangpu": 'say: "Hello."\n            hangpu: true',
    }
    result = check(f"""\
        start: main
        states:
          main:
            {states[typo]}
          a: {{say: "A.", next: b}}
          b: {{say: "B.", next: c}}
          c: {{say: "C.", hangup: true}}
        """)
    assert [i.code for i in result.issues] == ["unknown-key"], [i.format() for i in result.issues]
    (issue,) = result.issues
    assert issue.message == f"unknown key '{typo}' in state 'main'" and issue.hint == f"did you mean '{meant}'?"
