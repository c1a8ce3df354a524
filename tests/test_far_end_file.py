"""The far end file (`ivrkit console --far-end`): read into a `ScriptedIvr`, every mistake at its
file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrkit.errors import FlowLoadError, FlowValidationError
from ivrkit.far_end_file import load_far_end, load_far_end_text

EXAMPLE = Path(__file__).resolve().parent.parent / "flows" / "far_ends" / "acme_billing.yaml"


def test_the_example_reads_into_menus_with_their_text_and_keys() -> None:
    ivr = load_far_end(EXAMPLE)
    assert ivr.menu == "main" and set(ivr.menus) == {"main", "payments", "billing", "balance"}
    pcm, text, keys = ivr.menus["main"]
    assert text.startswith("Welcome to Acme.") and keys == {"1": "payments", "2": "billing"}
    assert pcm.sample_rate == 8000 and pcm.duration > 2
    assert ivr.invalid is not None and ivr.invalid[1] == "Invalid entry." and ivr.reply_after == 0.3


BAD = """\
start: mian
reply_after: soon
menus:
  main:
    say: "Press 1."
    keys: {"1": nowhere, "x": main}
    kyes: {}
  other: {keys: {"2": main}}
"""


def test_every_mistake_is_reported_at_its_place() -> None:
    with pytest.raises(FlowValidationError) as info:
        load_far_end_text(BAD, "far.yaml")
    found = {(i.line, i.col, i.code) for i in info.value.issues}
    assert found == {
        (1, 8, "unknown-menu"),  # start: mian (did you mean 'main'?)
        (2, 14, "bad-duration"),
        (6, 17, "unknown-menu"),  # "1": nowhere
        (6, 26, "bad-key"),  # "x" is no key
        (7, 5, "unknown-key"),  # kyes (did you mean 'keys'?)
        (8, 10, "missing-key"),  # other has no say
    }, [i.format() for i in info.value.issues]
    text = str(info.value)
    assert "far.yaml:1:8: error: no menu 'mian'" in text and "did you mean 'main'?" in text
    assert "did you mean 'keys'?" in text


def test_a_file_that_is_not_there_or_not_yaml() -> None:
    with pytest.raises(FlowLoadError, match="cannot read far end file 'nope.yaml'"):
        load_far_end("nope.yaml")
    with pytest.raises(FlowLoadError):
        load_far_end_text("menus: [", "far.yaml")
    with pytest.raises(FlowValidationError, match="the far end file needs 'start'"):
        load_far_end_text("menus: {main: {say: hi}}", "far.yaml")
