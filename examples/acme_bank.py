"""Hooks for flows/bank.yaml: PIN check, balance lookup and card blocking against a toy ledger."""

from __future__ import annotations

import hashlib
from typing import Any

# account number -> (sha256 of the PIN, balance in cents). A real bank keeps neither here.
_ACCOUNTS: dict[str, tuple[str, int]] = {
    "12345678": (hashlib.sha256(b"4321").hexdigest(), 123_456),
    "87654321": (hashlib.sha256(b"1111").hexdigest(), 5_000),
}


def check_pin(ctx: Any, digits: str) -> bool:
    """Valid when the PIN matches the account entered just before (compared as hashes)."""
    account = _ACCOUNTS.get(str(ctx.variables.get("account", "")))
    return account is not None and hashlib.sha256(digits.encode()).hexdigest() == account[0]


async def lookup_balance(ctx: Any) -> dict[str, str]:
    """Async on purpose: real balance look-ups are network calls."""
    _pin_hash, cents = _ACCOUNTS[str(ctx.variables["account"])]
    return {"balance": f"{cents // 100}.{cents % 100:02d}"}


def block_card(ctx: Any) -> dict[str, str]:
    """Returns a reference derived from the caller's number so the example is repeatable."""
    seed = (ctx.caller.number or "anonymous").encode()
    return {"reference": str(int(hashlib.sha256(seed).hexdigest(), 16) % 1_000_000).zfill(6)}
