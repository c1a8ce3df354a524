"""One exception tree (ivrkit.errors): every exception class ivrkit defines roots in
`IvrkitError`, has a docstring, survives pickling, and is drawn in the `ivrkit.errors` docstring
under its real parent; the drawing names no class that is gone (httpx's tests/test_exceptions.py
is the model). Also the `Issue` formatters."""

from __future__ import annotations

import copy
import importlib
import pickle
import pkgutil
import re
from collections.abc import Callable
from typing import Any

import pytest

import ivrkit
import ivrkit.errors
from ivrkit.errors import (
    FlowError,
    FlowValidationError,
    HookError,
    Issue,
    IvrkitError,
    format_issues,
    issues_to_json,
)

# Private control-flow signals: raised and caught inside one function, never seen by a caller,
# so they stay outside `IvrkitError` (an `except IvrkitError` must not swallow one that leaks:
# a leak is a bug and should surface as one). Keyed by class name, so moving a module keeps the
# entry; each must start with an underscore and still exist (tested below).
PRIVATE_SIGNALS: dict[str, str] = {
    "_EvalError": "conditions: a type mismatch while evaluating; Condition.evaluate_detailed "
    "catches it and returns (False, why)",
}

# Constructors for the classes whose __init__ is not `cls(message)`, for the pickling test.
ISSUE = Issue("flows/a.yaml", 3, 5, "unknown state 'mian'", "unknown-state", loc="states.a.goto", hint="main?")
SAMPLES: dict[str, Callable[[Any], BaseException]] = {
    "FlowError": lambda cls: cls([ISSUE]),
    "FlowLoadError": lambda cls: cls([ISSUE]),
    "FlowValidationError": lambda cls: cls([ISSUE]),
    "HookError": lambda cls: cls("raised KeyError: 'x'", hook="hooks:check", state="main", where="a.yaml:3"),
    "ConditionSyntaxError": lambda cls: cls("invalid syntax", 7),
    "FlowSetError": lambda cls: cls("flows/a.yaml:3:5: error: ...", (ISSUE,)),
}


def _with_message(cls: type[BaseException]) -> BaseException:
    return cls("what went wrong, and the fix")


def _import_every_module() -> None:
    for info in pkgutil.walk_packages(ivrkit.__path__, "ivrkit.", onerror=_raise):
        if info.name.rpartition(".")[2] == "__main__":
            continue  # a `python -m` entry point runs its program when imported; it defines nothing
        importlib.import_module(info.name)


def _raise(name: str) -> None:
    raise ImportError(f"cannot import {name}")


def ivrkit_exceptions() -> list[type[BaseException]]:
    """Every BaseException subclass defined in an ivrkit module, found by walking subclasses."""
    _import_every_module()
    found: set[type[BaseException]] = set()
    todo: list[type[BaseException]] = [BaseException]
    seen: set[type[BaseException]] = set()
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            todo.append(sub)
            if sub.__module__.split(".")[0] == "ivrkit":
                found.add(sub)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


def public_errors() -> list[type[BaseException]]:
    return [cls for cls in ivrkit_exceptions() if cls.__qualname__ not in PRIVATE_SIGNALS]


def drawn_name(cls: type[BaseException]) -> str:
    """How the tree names `cls`: bare in ivrkit.errors, else its module under `ivrkit.` too."""
    if cls.__module__ == "ivrkit.errors":
        return cls.__qualname__
    return f"{cls.__module__.removeprefix('ivrkit.')}.{cls.__qualname__}"


def drawn_tree() -> dict[str, tuple[str | None, str]]:
    """{name: (parent, note)} for each line of the `The tree ...::` block in ivrkit.errors."""
    doc = ivrkit.errors.__doc__ or ""
    match = re.search(r"The tree[^\n]*::\n\n((?:    .*\n)+)", doc)
    assert match, "ivrkit.errors' docstring has no 'The tree::' block"
    tree: dict[str, tuple[str | None, str]] = {}
    stack: list[tuple[int, str]] = []
    for line in match.group(1).splitlines():
        m = re.fullmatch(r"(?P<lead>[ │├└─]*)(?P<name>[A-Za-z_][\w.]*)(?P<note>.*)", line)
        assert m, f"cannot read this line of the tree: {line!r}"
        depth, name = len(m["lead"]), m["name"]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        assert name not in tree, f"{name} is drawn twice"
        tree[name] = (stack[-1][1] if stack else None, m["note"].strip())
        stack.append((depth, name))
    return tree


def drawn_parent(cls: type[BaseException]) -> str | None:
    """The tree parent `cls` should have: its nearest base inside the IvrkitError tree."""
    if cls is IvrkitError:
        return None
    base = next(b for b in cls.__mro__[1:] if issubclass(b, IvrkitError))
    return drawn_name(base)


def test_the_walk_finds_errors_from_engine_and_adapters() -> None:
    names = {drawn_name(cls) for cls in ivrkit_exceptions()}
    assert {"IvrkitError", "HookError", "livekit.routing.RoutingError", "console.audio.AudioUnavailable"} <= names


def test_every_error_roots_in_ivrkit_error() -> None:
    outside = [drawn_name(cls) for cls in public_errors() if not issubclass(cls, IvrkitError)]
    assert not outside, f"subclass IvrkitError (or a class under it) for: {', '.join(outside)}"


def test_private_signals_are_private_and_still_exist() -> None:
    by_name = {cls.__qualname__: cls for cls in ivrkit_exceptions()}
    for name in PRIVATE_SIGNALS:
        assert name.startswith("_"), f"{name}: only a private class may stay outside IvrkitError"
        assert name in by_name, f"{name} is allowed outside IvrkitError but no longer exists"
        assert not issubclass(by_name[name], IvrkitError), f"{name} is an IvrkitError: drop it from PRIVATE_SIGNALS"


def test_every_error_is_drawn_under_its_parent() -> None:
    tree = drawn_tree()
    for cls in public_errors():
        name = drawn_name(cls)
        assert name in tree, f"draw {name} in the tree of ivrkit/errors.py's docstring"
        assert tree[name][0] == drawn_parent(cls), f"{name} is drawn under {tree[name][0]}, its parent is {drawn_parent(cls)}"


def test_the_tree_names_no_class_that_is_gone() -> None:
    gone = set(drawn_tree()) - {drawn_name(cls) for cls in public_errors()}
    assert not gone, f"the tree in ivrkit/errors.py's docstring names classes that do not exist: {sorted(gone)}"


def test_the_tree_says_which_stdlib_class_an_error_also_is() -> None:
    tree = drawn_tree()
    for cls in public_errors():
        if cls is IvrkitError:
            continue  # the root is an Exception, as every error is
        extra = [b.__name__ for b in cls.__bases__ if not issubclass(b, IvrkitError)]
        said = re.findall(r"also an? (\w+)", tree[drawn_name(cls)][1])
        assert said == extra, f"{drawn_name(cls)} is also {extra or 'nothing else'}; the tree says {said}"


def test_every_error_says_when_it_is_raised() -> None:
    for cls in ivrkit_exceptions():
        doc = cls.__dict__.get("__doc__")
        assert doc and doc.strip(), f"{drawn_name(cls)} has no docstring saying when it is raised"


@pytest.mark.parametrize("cls", public_errors(), ids=drawn_name)
def test_every_error_pickles_and_copies_whole(cls: type[BaseException]) -> None:
    exc = SAMPLES.get(cls.__qualname__, _with_message)(cls)
    for again in (pickle.loads(pickle.dumps(exc)), copy.copy(exc)):
        assert type(again) is cls
        assert str(again) == str(exc) and repr(again) == repr(exc) and again.args == exc.args
        assert vars(again) == vars(exc)


def test_hook_error_keeps_its_fields_through_pickling() -> None:
    exc = pickle.loads(pickle.dumps(HookError("timed out", hook="h:f", state="pin", where="a.yaml:9")))
    assert (exc.hook, exc.state, exc.where) == ("h:f", "pin", "a.yaml:9")
    assert str(exc) == "a.yaml:9: hook h:f in state 'pin': timed out"


def test_flow_error_keeps_its_issues_through_pickling() -> None:
    exc = pickle.loads(pickle.dumps(FlowValidationError([ISSUE])))
    assert exc.issues == (ISSUE,) and exc.errors == (ISSUE,)
    assert repr(exc) == "FlowValidationError(1 issue(s))"
    assert isinstance(exc, FlowError)


def test_format_issues_counts_errors_and_warnings_per_file() -> None:
    warning = Issue("flows/a.yaml", 9, 1, "state 'x' is unreachable", "unreachable", severity="warning")
    text = format_issues([ISSUE, warning])
    assert text.splitlines()[0] == "flows/a.yaml:3:5: error: unknown state 'mian' (states.a.goto)  [unknown-state]"
    assert "  note: main?" in text
    assert text.splitlines()[-1] == "flows/a.yaml: 1 error, 1 warning"
    assert '"code": "unknown-state"' in issues_to_json([ISSUE])
