"""Conditions for `goto` arms: a tiny, safe expression language over call variables.

A flow file branches on variables without Python code::

    goto:
      - {if: "balance > 100 and tier == 'gold'", then: vip}
      - {if: "len(pin) < 4 or pin_reason == 'first_digit_timeout'", then: retry}
      - {else: main}

The source is parsed with Python's `ast` and only a whitelist of nodes is accepted: variable
names, constants (numbers, strings, True/False/None — `true`/`false`/`null` too, as YAML authors
write them), tuples/lists of those for `in`, comparisons (== != < <= > >= in, not in),
`and`/`or`/`not`, unary minus, `+`/`-`, and `len(x)`. Nothing else parses: no attribute access,
no calls other than len, no subscripts — a flow file must not be a way to run code.

Evaluation never raises. A variable that is not set is None. Collected digits are strings, so a
comparison between a number and a numeric string compares numbers (`amount > 100` works for
`amount = "150"`). Any other type mismatch (`None > 3`) makes the whole condition False and is
reported through `evaluate_detailed`, so the runtime can log it instead of crashing the call.
The report shows values as the variables hold them (`'0042'`, never a converted `42`), so the
runtime's masking of sensitive values by their text also covers this message.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivrkit.errors import ConditionSyntaxError

_CONSTANT_NAMES: dict[str, object] = {
    "True": True, "False": False, "None": None, "true": True, "false": False, "null": None,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {ast.Add: operator.add, ast.Sub: operator.sub}
_MAX_LENGTH = 1000


class _EvalError(Exception):
    """A type mismatch during evaluation; turned into (False, message) at the top.

    A private signal, never raised out of `Condition.evaluate_detailed`, so deliberately not an
    `IvrkitError` (tests/test_errors.py lists it as such).
    """


def _check(node: ast.AST, names: set[str]) -> None:
    """Raise ConditionSyntaxError for the first node outside the whitelist; collect names."""
    col = getattr(node, "col_offset", 0) + 1
    if isinstance(node, ast.Expression):
        _check(node.body, names)
    elif isinstance(node, ast.Name):
        if node.id not in _CONSTANT_NAMES:
            names.add(node.id)
    elif isinstance(node, ast.Constant):
        if not (node.value is None or isinstance(node.value, (bool, int, float, str))):
            raise ConditionSyntaxError(f"constant {node.value!r} is not allowed", col)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            _check(elt, names)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise ConditionSyntaxError(
                    f"operator '{type(op).__name__}' is not allowed; use == != < <= > >= in, not in", col
                )
        _check(node.left, names)
        for comparator in node.comparators:
            _check(comparator, names)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, names)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub)):
            raise ConditionSyntaxError("only 'not' and unary '-' are allowed", col)
        _check(node.operand, names)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise ConditionSyntaxError("only + and - are allowed in arithmetic", col)
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "len") or node.keywords or len(node.args) != 1:
            raise ConditionSyntaxError("the only function allowed is len(variable)", col)
        _check(node.args[0], names)
    else:
        raise ConditionSyntaxError(f"'{type(node).__name__}' expressions are not allowed in conditions", col)


def _as_number(value: object) -> object:
    """A numeric string becomes a number (digits are collected as strings); else unchanged."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(a: object, b: object) -> tuple[object, object]:
    if _is_number(a) and isinstance(b, str):
        return a, _as_number(b)
    if _is_number(b) and isinstance(a, str):
        return _as_number(a), b
    return a, b


def _eval(node: ast.AST, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, variables)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANT_NAMES:
            return _CONSTANT_NAMES[node.id]
        return variables.get(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, variables) for e in node.elts)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(bool(_eval(v, variables)) for v in node.values)
        return any(bool(_eval(v, variables)) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        raw = _eval(node.operand, variables)
        if isinstance(node.op, ast.Not):
            return not raw
        operand = _as_number(raw)
        if not _is_number(operand):
            raise _EvalError(f"cannot negate {raw!r}")
        return -operand  # type: ignore[operator]
    if isinstance(node, ast.BinOp):
        raw_left, raw_right = _eval(node.left, variables), _eval(node.right, variables)
        left, right = _coerce(raw_left, raw_right)
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right
        if not (_is_number(left) and _is_number(right)):
            # the values as the variables hold them: a caller can then mask them by their text
            sign = "+" if isinstance(node.op, ast.Add) else "-"
            raise _EvalError(f"cannot compute {raw_left!r} {sign} {raw_right!r}")
        return _ARITH[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, variables)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, variables)
            if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, tuple):
                found = any(operator.eq(*_coerce(left, item)) for item in right)
                result = found if isinstance(op, ast.In) else not found
                if not result:
                    return False
                left = right
                continue
            a, b = _coerce(left, right)
            try:
                result = _COMPARE[type(op)](a, b)
            except TypeError:
                raise _EvalError(f"cannot compare {left!r} and {right!r}") from None
            if not result:
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        value = _eval(node.args[0], variables)
        try:
            return len(value)
        except TypeError:
            raise _EvalError(f"len() of {value!r} is undefined") from None
    raise _EvalError(f"unexpected {type(node).__name__}")  # unreachable after _check


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed, checked condition. Equal and hashable by its source text."""

    source: str
    names: frozenset[str] = field(compare=False)
    _tree: ast.Expression = field(compare=False, repr=False)

    @classmethod
    def parse(cls, source: str) -> Condition:
        """Parse `source`. Raises ConditionSyntaxError (a ValueError) naming the column."""
        if not isinstance(source, str) or not source.strip():
            raise ConditionSyntaxError("a condition must be a non-empty expression", 1)
        if len(source) > _MAX_LENGTH:
            raise ConditionSyntaxError(f"condition is longer than {_MAX_LENGTH} characters", _MAX_LENGTH)
        if "\n" in source.strip():
            raise ConditionSyntaxError("a condition must fit on one line", source.index("\n") + 1)
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            lead = len(source) - len(source.lstrip())
            raise ConditionSyntaxError("invalid syntax" if exc.msg == "invalid syntax" else f"invalid syntax ({exc.msg})", (exc.offset or 1) + lead) from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ConditionSyntaxError(f"cannot parse: {exc}", 1) from None
        names: set[str] = set()
        try:
            _check(tree, names)
        except RecursionError:
            raise ConditionSyntaxError("condition is nested too deeply", 1) from None
        except ConditionSyntaxError as exc:
            lead = len(source) - len(source.lstrip())
            raise ConditionSyntaxError(str(exc).split(": ", 1)[1], exc.col + lead) from None
        return cls(source, frozenset(names), tree)

    def evaluate_detailed(self, variables: Mapping[str, Any]) -> tuple[bool, str | None]:
        """(result, problem). `problem` describes a type mismatch that forced the result False."""
        try:
            return bool(_eval(self._tree, variables)), None
        except _EvalError as exc:
            return False, f"condition {self.source!r}: {exc}"
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            return False, f"condition {self.source!r}: {type(exc).__name__}: {exc}"

    def evaluate(self, variables: Mapping[str, Any]) -> bool:
        """True when the condition holds; False also when it cannot be evaluated (see above)."""
        return self.evaluate_detailed(variables)[0]

    def __str__(self) -> str:
        return self.source
