"""Hooks for tests/graph/helpers.EVERY_EDGE."""

from __future__ import annotations

from typing import Any


def pin_ok(ctx: Any, digits: str) -> bool:
    return digits == "1234"


def lookup(ctx: Any) -> dict[str, str] | str:
    if ctx.variables.get("pin") == "9999":
        raise RuntimeError("lookup failed")
    return {"balance": "1"}
