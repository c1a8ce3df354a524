"""Hooks for flows/support.yaml: business hours, queue position, call-backs and tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

OFFICE = ZoneInfo("Europe/London")
_TICKETS = {"123456": "being worked on", "20261125": "resolved"}
_QUEUE_LENGTH = {"tech_queue": 2}


def _now(ctx: Any) -> datetime:
    """The office's local time; a `now` variable (ISO 8601) overrides it, which tests use."""
    override = ctx.variables.get("now")
    return datetime.fromisoformat(override) if override else datetime.now(OFFICE)


def business_hours(ctx: Any) -> dict[str, bool]:
    now = _now(ctx)
    return {"open": now.weekday() < 5 and 9 <= now.hour < 17}


def queue_position(ctx: Any) -> dict[str, int]:
    """A toy queue: the `queue_length` variable (tests) or the table above."""
    ahead = int(ctx.variables.get("queue_length", _QUEUE_LENGTH.get(ctx.state, 0)))
    return {"position": ahead + 1, "wait_minutes": 4 * (ahead + 1)}


def schedule_callback(ctx: Any) -> dict[str, str]:
    number = ctx.caller.number or "unknown"
    return {"callback_ref": "".join(ch for ch in number if ch.isdigit())[-4:].rjust(4, "0")}


def ticket_exists(ctx: Any, digits: str) -> bool:
    return digits in _TICKETS


def ticket_status(ctx: Any) -> dict[str, str]:
    return {"status": _TICKETS[str(ctx.variables["ticket"])]}
