"""Records of ``ims.users``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from ims_repo.core.records.crawl_sessions import CrawlSession
from ims_repo.core.records.types import (
    INDEXED_TEXT_MAX,
    INPUT_CONFIG,
    RECORD_CONFIG,
    JsonObject,
    Text,
    UserRole,
)

_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class User(BaseModel):
    """A row of ``ims.users``."""

    model_config = RECORD_CONFIG

    user_id: int
    username: str
    email: str
    full_name: str | None
    department: str | None
    role: UserRole
    is_active: bool
    preferences: dict[str, object]
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class NewUser(BaseModel):
    """A user to create. ``role`` may only be ``user`` here: admins are made by the owner
    (``ims-repo set-role``), and the database refuses the rest."""

    model_config = INPUT_CONFIG

    username: Text = Field(min_length=1, max_length=INDEXED_TEXT_MAX)
    email: Text = Field(max_length=INDEXED_TEXT_MAX, pattern=_EMAIL_PATTERN)
    full_name: Text | None = None
    department: Text | None = None
    role: UserRole = "user"
    is_active: bool = True
    preferences: JsonObject = Field(default_factory=dict)
    last_login_at: datetime | None = None


class UserWithSessions(BaseModel):
    """A user and their crawl sessions (empty for a user without any)."""

    model_config = RECORD_CONFIG

    user: User
    """The user."""
    sessions: list[CrawlSession]
    """Their crawl sessions that the context can see, oldest first."""


class UserStats(BaseModel):
    """One row of ``ims.get_user_stats``."""

    model_config = RECORD_CONFIG

    total_sessions: int
    completed_sessions: int
    failed_sessions: int
    total_issues: int
    avg_duration_seconds: Decimal | None
    last_session_at: datetime | None
