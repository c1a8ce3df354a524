"""The key script (`--keys`, stdin lines): parsing, and errors that name the item and the fix."""

from __future__ import annotations

import pytest

from ivrkit.console.script import HangUp, KeyScriptError, Press, Wait, parse_key_script


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


def test_say_steps_in_a_key_script() -> None:
    from ivrkit.console.script import Say

    assert parse_key_script('say: billing please,"card, wait 1s') == (Say("billing please"), Say("card"), Wait(1.0))
    with pytest.raises(KeyScriptError, match="says nothing"):
        parse_key_script("say:   ")
