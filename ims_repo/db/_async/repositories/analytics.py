"""``s.analytics``: daily and monthly figures per user (``queries/analytics.sql``)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import TypeAdapter

from ims_repo.core.errors import InvalidInput
from ims_repo.core.records import AnalyticsDaily, AnalyticsMonthly
from ims_repo.core.records.types import validate_value
from ims_repo.core.statements.analytics import (
    DAILY,
    MONTHLY,
    REFRESH,
)
from ims_repo.db._async.repositories.base import AsyncRepository

_USER_ID = TypeAdapter(int)



class AsyncAnalyticsRepository(AsyncRepository):
    """Per-user figures by UTC day and calendar month, kept by ``ims.refresh_analytics``.

    A crawl session counts on the UTC day of its ``started_at`` (``created_at`` when it
    never started). Each context sees its own rows (an admin, everyone's).
    """

    async def refresh(self, day: date) -> None:
        """Recompute ``day``'s daily figures and its month's monthly figures for every
        user the context can see: the context's own user, or everyone for an admin."""
        await self._session.run(REFRESH.bind({"day": _day(day, "day")}))

    async def daily(self, user_id: int, date_from: date, date_to: date) -> list[AnalyticsDaily]:
        """The user's daily figures from ``date_from`` to ``date_to`` (both included),
        by day; empty for a user the context cannot see."""
        bound = DAILY.bind(
            {
                "user_id": validate_value(_USER_ID, user_id, "user_id"),
                "date_from": _day(date_from, "date_from"),
                "date_to": _day(date_to, "date_to"),
            }
        )
        return await self._session.fetch_all(bound, AnalyticsDaily)

    async def monthly(
        self, user_id: int, month_from: date, month_to: date
    ) -> list[AnalyticsMonthly]:
        """The user's monthly figures for the months of ``month_from`` to ``month_to``
        (any day stands for its month; both included), by month."""
        bound = MONTHLY.bind(
            {
                "user_id": validate_value(_USER_ID, user_id, "user_id"),
                "month_from": _day(month_from, "month_from"),
                "month_to": _day(month_to, "month_to"),
            }
        )
        return await self._session.fetch_all(bound, AnalyticsMonthly)


def _day(value: object, name: str) -> date:
    # A datetime is a date too, but its time (and time zone) would be silently dropped.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a datetime.date, not {type(value).__name__}")
    return value
