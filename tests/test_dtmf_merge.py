"""ivrkit.dtmf_merge: a press sent both as an RFC 4733 event and as in-band tones counts once;
distinct presses are never merged, whichever half arrives first."""

from __future__ import annotations

from ivrkit.dtmf_merge import MERGE_WINDOW, KeyMerge, KeySource


def _passed(keys: list[tuple[float, KeySource, str]]) -> str:
    merge = KeyMerge()
    return "".join(digit for at, source, digit in keys if merge.accept(digit, source, at))


def test_each_press_counts_once_whichever_half_comes_first() -> None:
    assert _passed([(0.0, "rfc4733", "1"), (0.12, "inband", "1")]) == "1"
    assert _passed([(0.0, "inband", "1"), (0.05, "rfc4733", "1")]) == "1"


def test_a_pin_sent_both_ways_arrives_once() -> None:
    keys: list[tuple[float, KeySource, str]] = []
    for i, d in enumerate("1234#"):
        keys += [(0.3 * i, "rfc4733", d), (0.3 * i + 0.15, "inband", d)]
    assert _passed(keys) == "1234#"


def test_the_same_key_pressed_twice_quickly_is_two_presses() -> None:
    # event, tone, event, tone: each half absorbs only one half of the other source
    assert _passed([(0.0, "rfc4733", "1"), (0.1, "inband", "1"), (0.2, "rfc4733", "1"), (0.3, "inband", "1")]) == "11"
    # and when the tones lag behind both events
    assert _passed([(0.0, "rfc4733", "1"), (0.2, "rfc4733", "1"), (0.25, "inband", "1"), (0.45, "inband", "1")]) == "11"


def test_keys_of_one_source_never_merge() -> None:
    assert _passed([(0.0, "rfc4733", "5"), (0.1, "rfc4733", "5")]) == "55"
    assert _passed([(0.0, "inband", "5"), (0.1, "inband", "5")]) == "55"


def test_different_digits_never_merge_and_interleaving_is_kept_in_order() -> None:
    assert _passed([(0.0, "rfc4733", "1"), (0.1, "rfc4733", "2"), (0.15, "inband", "1"), (0.25, "inband", "2")]) == "12"
    assert _passed([(0.0, "rfc4733", "1"), (0.1, "inband", "2")]) == "12"


def test_halves_further_apart_than_the_window_are_two_presses() -> None:
    assert _passed([(0.0, "rfc4733", "9"), (MERGE_WINDOW + 0.01, "inband", "9")]) == "99"
    assert _passed([(0.0, "rfc4733", "9"), (MERGE_WINDOW - 0.01, "inband", "9")]) == "9"


def test_only_one_source_present_passes_every_key() -> None:
    assert _passed([(0.4 * i, "inband", d) for i, d in enumerate("0800")]) == "0800"
