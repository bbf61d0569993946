"""Records of ``ims.crawl_sessions``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from pydantic import BaseModel, Field

from ims_repo.core.records.types import (
    INDEXED_TEXT_MAX,
    INPUT_CONFIG,
    RECORD_CONFIG,
    JsonObject,
    SessionStatus,
    Text,
)


class CrawlSession(BaseModel):
    """A row of ``ims.crawl_sessions``: one search-and-download run of one user."""

    model_config = RECORD_CONFIG

    session_id: int
    session_uuid: UUID
    user_id: int
    product: str
    original_query: str
    parsed_query: str | None
    query_language: str | None
    max_results: int | None
    status: SessionStatus
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: int | None
    total_issues: int
    data_path: str | None
    session_metadata: dict[str, object]
    created_at: datetime


class NewCrawlSession(BaseModel):
    """A crawl session to record. ``user_id`` must be the context's (RLS refuses others)."""

    model_config = INPUT_CONFIG

    user_id: int
    product: Text = Field(min_length=1, max_length=INDEXED_TEXT_MAX)
    original_query: Text
    session_uuid: UUID = Field(default_factory=uuid4)
    parsed_query: Text | None = None
    query_language: Text | None = None
    max_results: int | None = Field(default=None, gt=0)
    status: SessionStatus = "pending"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: int | None = Field(default=None, ge=0)
    total_issues: int = Field(default=0, ge=0)
    data_path: Text | None = None
    session_metadata: JsonObject = Field(default_factory=dict)


class DurationStats(BaseModel):
    """Average, shortest and longest ``duration_seconds`` of the visible sessions."""

    model_config = RECORD_CONFIG

    avg: Decimal | None
    """Mean ``duration_seconds``; None when no visible session has one."""
    min: int | None
    """Shortest ``duration_seconds``, or None."""
    max: int | None
    """Longest ``duration_seconds``, or None."""
