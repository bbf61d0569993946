"""Records of what users do: the search log, crawl errors, analytics and the audit trail
(all user-owned: row-level security shows each user their own)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address

from pydantic import BaseModel, Field

from ims_repo.core.records.types import (
    INPUT_CONFIG,
    RECORD_CONFIG,
    ErrorSeverity,
    JsonObject,
    Text,
)


class SearchQuery(BaseModel):
    """A row of ``ims.search_queries``: one search a user ran."""

    model_config = RECORD_CONFIG

    query_id: int
    user_id: int
    session_id: int | None
    query_text: str
    parsed_query: str | None
    query_language: str | None
    result_count: int | None
    execution_time_ms: int | None
    executed_at: datetime


class NewSearchQuery(BaseModel):
    """A search to log; ``session_id``, when given, must be the same user's session."""

    model_config = INPUT_CONFIG

    user_id: int
    query_text: Text
    session_id: int | None = None
    parsed_query: Text | None = None
    query_language: Text | None = None
    result_count: int | None = Field(default=None, ge=0)
    execution_time_ms: int | None = Field(default=None, ge=0)
    executed_at: datetime | None = None


class SessionError(BaseModel):
    """A row of ``ims.session_errors``: something that went wrong in a crawl."""

    model_config = RECORD_CONFIG

    error_id: int
    session_id: int
    user_id: int
    severity: ErrorSeverity
    error_type: str
    error_message: str
    stack_trace: str | None
    issue_id: str | None
    context: dict[str, object]
    occurred_at: datetime


class NewSessionError(BaseModel):
    """An error to record against a crawl session (``user_id`` must be the session's)."""

    model_config = INPUT_CONFIG

    session_id: int
    user_id: int
    error_type: Text = Field(min_length=1)
    error_message: Text
    severity: ErrorSeverity = "error"
    stack_trace: Text | None = None
    issue_id: Text | None = None
    context: JsonObject = Field(default_factory=dict)
    occurred_at: datetime | None = None


class AnalyticsDaily(BaseModel):
    """A row of ``ims.analytics_daily``: one user's figures for one UTC day."""

    model_config = RECORD_CONFIG

    user_id: int
    stat_date: date
    sessions_count: int
    completed_sessions: int
    failed_sessions: int
    issues_crawled: int
    unique_issues: int
    errors_count: int
    avg_duration_seconds: Decimal | None
    total_duration_seconds: int
    updated_at: datetime


class AnalyticsMonthly(BaseModel):
    """A row of ``ims.analytics_monthly``: one user's figures for one calendar month
    (``month`` is its first day)."""

    model_config = RECORD_CONFIG

    user_id: int
    month: date
    sessions_count: int
    completed_sessions: int
    failed_sessions: int
    issues_crawled: int
    unique_issues: int
    errors_count: int
    avg_duration_seconds: Decimal | None
    total_duration_seconds: int
    updated_at: datetime


class AuditLog(BaseModel):
    """A row of ``ims.audit_log``, written by trigger; nobody but the owner changes it.

    One row per inserted, changed or deleted row (migration 0010): an ``UPDATE`` holds
    in ``old_values``/``new_values`` only the columns that changed (old -> new); an
    ``INSERT`` of an issue holds ``new_values = {"issue_id": …}`` (the inserted row is
    ``ims.issues``' own), one of a user or a crawl session the whole new row; a
    ``DELETE`` the whole old row in ``old_values``.
    """

    model_config = RECORD_CONFIG

    audit_id: int
    user_id: int | None
    action: str
    table_name: str
    record_id: str | None
    old_values: dict[str, object] | None
    new_values: dict[str, object] | None
    ip_address: IPv4Address | IPv6Address | None
    created_at: datetime
