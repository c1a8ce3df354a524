"""Hooks for flows/appointments.yaml: which dates can be booked, and booking a slot."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any


def _today(ctx: Any) -> date:
    """Today; a `today` variable (ISO date) overrides it, which tests use."""
    override = ctx.variables.get("today")
    return date.fromisoformat(override) if override else datetime.now().date()


def _as_date(ctx: Any, mmdd: str) -> date | None:
    """MMDD in the next twelve months (a date already past this year means next year)."""
    today = _today(ctx)
    try:
        candidate = date(today.year, int(mmdd[:2]), int(mmdd[2:]))
    except ValueError:
        return None
    if candidate < today:
        try:
            candidate = candidate.replace(year=today.year + 1)
        except ValueError:  # 29 February
            return None
    return candidate


def date_is_bookable(ctx: Any, digits: str) -> bool:
    """A weekday from tomorrow up to ninety days ahead."""
    day = _as_date(ctx, digits)
    today = _today(ctx)
    return day is not None and day.weekday() < 5 and today < day <= today + timedelta(days=90)


async def _book(ctx: Any, time: str) -> dict[str, str]:
    await asyncio.sleep(0)  # stands in for the booking system's API call
    day = _as_date(ctx, str(ctx.variables["date"]))
    if day is None:  # date_is_bookable let it through: a bug worth the flow's error path
        raise ValueError("booking needs a date that date_is_bookable accepted")
    return {"reference": f"{day:%m%d}{time[:2]}", "time": f"{time} on {day:%A %B %-d}"}


async def book_morning(ctx: Any) -> dict[str, str]:
    return await _book(ctx, "09:30")


async def book_afternoon(ctx: Any) -> dict[str, str]:
    return await _book(ctx, "14:00")
