"""RFC 4733 checks of DTMF events crossing the LiveKit boundary (ivrkit.livekit.dtmf)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivrkit.channel import DTMF_CODES
from ivrkit.livekit.dtmf import KEY_FOR_CODE, DtmfRejected, check_incoming, outgoing

TABLE = [(str(d), d) for d in range(10)] + [("*", 10), ("#", 11), ("A", 12), ("B", 13), ("C", 14), ("D", 15)]


@pytest.mark.parametrize(("digit", "code"), TABLE)
def test_every_key_of_the_table_is_accepted(digit: str, code: int) -> None:
    assert check_incoming(code, digit) == digit


@pytest.mark.parametrize(("digit", "code"), [("a", 12), ("b", 13), ("c", 14), ("d", 15)])
def test_lowercase_a_to_d_as_livekit_sip_delivers_them_are_normalised(digit: str, code: int) -> None:
    assert check_incoming(code, digit) == digit.upper()


@pytest.mark.parametrize(("code", "digit"), [(0, "5"), (5, "6"), (12, "#"), (11, "*"), (13, "a")])
def test_a_code_that_disagrees_with_the_digit_is_rejected_not_guessed(code: int, digit: str) -> None:
    with pytest.raises(DtmfRejected, match="does not match"):
        check_incoming(code, digit)


@pytest.mark.parametrize("digit", ["E", "e", "x", "12", "ab", " ", "\x00", "５"])
def test_a_digit_outside_the_table_is_rejected(digit: str) -> None:
    with pytest.raises(DtmfRejected):
        check_incoming(1, digit)


@pytest.mark.parametrize("code", [16, -1, 255])
def test_an_event_code_outside_0_to_15_without_digit_is_rejected(code: int) -> None:
    with pytest.raises(DtmfRejected, match="not an RFC 4733 key"):
        check_incoming(code, "")


def test_a_code_without_digit_is_the_rfc4733_event_itself() -> None:
    assert [check_incoming(code, "") for code in range(16)] == [KEY_FOR_CODE[c] for c in range(16)]
    assert check_incoming(12, "") == "A"


@given(st.integers(min_value=-5, max_value=40), st.text(max_size=3))
def test_incoming_never_returns_a_key_whose_code_differs(code: int, digit: str) -> None:
    try:
        key = check_incoming(code, digit)
    except DtmfRejected:
        return
    assert key in DTMF_CODES
    assert DTMF_CODES[key] == code


@pytest.mark.parametrize(("key", "code", "digit"), [("1", 1, "1"), ("#", 11, "#"), ("*", 10, "*"), ("A", 12, "a"), ("d", 15, "d"), ("0", 0, "0")])
def test_outgoing_keys_carry_their_code_and_a_lowercase_letter(key: str, code: int, digit: str) -> None:
    out = outgoing(key)
    assert (out.code, out.digit) == (code, digit)


@pytest.mark.parametrize("key", ["w", "", "12", "E", "+"])
def test_outgoing_refuses_what_is_not_one_key(key: str) -> None:
    with pytest.raises(ValueError, match="cannot send"):
        outgoing(key)


def test_round_trip_every_key() -> None:
    for key in DTMF_CODES:
        out = outgoing(key)
        assert check_incoming(out.code, out.digit) == key
