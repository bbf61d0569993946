"""The named statements of ``queries/analytics.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import AnalyticsDaily, AnalyticsMonthly

SQL = load("analytics")
REFRESH = SQL.statement("refresh", "day")
DAILY = SQL.statement("daily", "user_id", "date_from", "date_to", record=AnalyticsDaily)
MONTHLY = SQL.statement("monthly", "user_id", "month_from", "month_to", record=AnalyticsMonthly)
