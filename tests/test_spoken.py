"""What recognised words mean: spoken digits, a menu phrase, yes / no."""

from __future__ import annotations

import pytest

from ivrkit.spoken import choose, digits_of, normalise, yes_no


@pytest.mark.parametrize(("said", "digits"), [
    ("four three two one", "4321"), ("Four, three. Two one!", "4321"), ("4321", "4321"), ("4 3 2 1", "4321"),
    ("oh seven", "07"), ("zero o oh", "000"), ("double four one", "441"), ("triple seven", "777"),
    ("twenty one", None), ("four three and one", None), ("", None), ("double", None), ("double double one", None),
    ("double 42", None),
])
def test_spoken_digits(said: str, digits: str | None) -> None:
    assert digits_of(said) == digits


def test_choose_matches_whole_words_and_prefers_the_longest_phrase() -> None:
    words = {"1": ("billing", "bills"), "2": ("card",), "3": ("card payments",)}
    assert choose(words, "Billing") == "1"
    assert choose(words, "uh billing please") == "1"
    assert choose(words, "card payments") == "3"
    assert choose(words, "my card") == "2"
    assert choose(words, "billings") is None  # whole words only: no guessing from a part
    assert choose(words, "") is None


def test_yes_no_and_helpers() -> None:
    assert yes_no("Yes please") is True and yes_no("no") is False and yes_no("yes no") is None and yes_no("maybe") is None
    assert normalise("  Card-Payments,  NOW ") == "card-payments now"
