"""The goto condition language: what parses, what is refused (with a column), how it evaluates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivrkit.errors import ConditionSyntaxError
from ivrkit.flow.conditions import Condition


@pytest.mark.parametrize("source, variables, expected", [
    ("balance > 100 and tier == 'gold'", {"balance": 150, "tier": "gold"}, True),
    ("balance > 100 and tier == 'gold'", {"balance": 50, "tier": "gold"}, False),
    ("amount > 100", {"amount": "150"}, True),  # collected digits are strings
    ("amount == 7", {"amount": "007"}, True),
    ("pin == '0042'", {"pin": "0042"}, True),
    ("x in (1, 2, 3)", {"x": "2"}, True),
    ("x not in ['a', 'b']", {"x": "c"}, True),
    ("'b' in x", {"x": "abc"}, True),
    ("len(pin) < 4 or pin_reason == 'first_digit_timeout'", {"pin": "12", "pin_reason": "terminator"}, True),
    ("not done", {}, True),
    ("missing == None", {}, True),
    ("missing == null", {}, True),
    ("a + 1 == 3", {"a": 2}, True),
    ("a - b > 0", {"a": 5, "b": "3"}, True),
    ("-a < 0", {"a": 1}, True),
    ("1 < x <= 3", {"x": 3}, True),
    ("flag == true", {"flag": True}, True),
    ("first + last == 'ab'", {"first": "a", "last": "b"}, True),
])
def test_evaluate(source: str, variables: dict[str, object], expected: bool) -> None:
    assert Condition.parse(source).evaluate(variables) is expected


@pytest.mark.parametrize("source, variables", [
    ("balance > 100", {}),  # None > 100
    ("len(x) > 1", {"x": 5}),
    ("a - b > 0", {"a": "x", "b": 1}),
    ("x < 'a'", {"x": 1}),
])
def test_type_errors_evaluate_false_and_are_reported(source: str, variables: dict[str, object]) -> None:
    condition = Condition.parse(source)
    result, problem = condition.evaluate_detailed(variables)
    assert result is False and problem is not None and source in problem
    assert condition.evaluate(variables) is False


@pytest.mark.parametrize("source, col, fragment", [
    ("x.y == 1", 1, "Attribute"),
    ("a == 1 and __import__('os')", 12, "len(variable)"),
    ("a[0] == 1", 1, "Subscript"),
    ("a * 2 > 1", 1, "+ and -"),
    ("lambda: 1", 1, "Lambda"),
    ("(x := 1)", 2, "NamedExpr"),
    ("a is None", 1, "'Is'"),
    ("", 1, "non-empty"),
    ("a ==", 1, "invalid syntax"),
    ("  b.c", 3, "Attribute"),
])
def test_refused_with_column(source: str, col: int, fragment: str) -> None:
    with pytest.raises(ValueError) as exc:
        Condition.parse(source)
    assert isinstance(exc.value, ConditionSyntaxError)
    assert exc.value.col == col and f"column {col}" in str(exc.value) and fragment in str(exc.value)


def test_names_and_hashing() -> None:
    c = Condition.parse("balance > 100 and tier in ('gold', 'silver') and len(pin) == 4 and true")
    assert c.names == frozenset({"balance", "tier", "pin"})
    assert c == Condition.parse("balance > 100 and tier in ('gold', 'silver') and len(pin) == 4 and true")
    assert len({c, Condition.parse(c.source)}) == 1
    with pytest.raises(AttributeError):
        c.source = "x"  # type: ignore[misc]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.dictionaries(st.sampled_from(["a", "b", "x"]), st.one_of(st.none(), st.integers(), st.text(max_size=3), st.booleans())))
def test_random_text_parses_or_raises_value_error_and_never_crashes_evaluation(source: str, variables: dict[str, object]) -> None:
    try:
        condition = Condition.parse(source)
    except ValueError:
        return
    assert isinstance(condition.evaluate(variables), bool)


def test_a_problem_shows_values_as_the_variables_hold_them() -> None:
    """The runtime masks sensitive values by their text: a converted `42` would escape that."""
    _, problem = Condition.parse("pin - code > 0").evaluate_detailed({"pin": "0042", "code": "x"})
    assert problem is not None and "'0042' - 'x'" in problem
    _, problem = Condition.parse("-pin > 0").evaluate_detailed({"pin": "x1"})
    assert problem is not None and "'x1'" in problem
