"""The peer: SQLAlchemy 2 ORM models of the twelve tables, used the usage guide's way.

The models map onto the existing ``ims`` schema (nothing is created from them). The code
that uses them (``bench.workloads``) is written as /work/shared/USAGE_GUIDE_ORM.md
writes it: ``get_session(user_id)`` setting the RLS context with
``SELECT ims.set_current_user(:u)``, ``session.query(...)``, ``session.get``,
``joinedload``/``selectinload``, ``bulk_save_objects``, ``text()`` for the search
function. Two choices the guide leaves open, made in the ORM's favour:
``expire_on_commit=False`` (objects stay readable after the block, no reload), and the
generated ``search_vector`` is mapped ``deferred`` (never loaded unless asked for).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    Text,
    create_engine,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, TSVECTOR, UUID
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(schema="ims")


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text, server_default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
    last_login_at: Mapped[datetime | None] = mapped_column(TS)

    crawl_sessions: Mapped[list[CrawlSession]] = relationship(back_populates="user")
    search_queries: Mapped[list[SearchQuery]] = relationship(back_populates="user")


class CrawlSession(Base):
    __tablename__ = "crawl_sessions"

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_uuid: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("ims.users.user_id"))
    product: Mapped[str] = mapped_column(Text)
    original_query: Mapped[str] = mapped_column(Text)
    parsed_query: Mapped[str | None] = mapped_column(Text)
    query_language: Mapped[str | None] = mapped_column(Text)
    max_results: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    started_at: Mapped[datetime | None] = mapped_column(TS)
    completed_at: Mapped[datetime | None] = mapped_column(TS)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    total_issues: Mapped[int] = mapped_column(Integer, server_default="0")
    data_path: Mapped[str | None] = mapped_column(Text)
    session_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    user: Mapped[User] = relationship(back_populates="crawl_sessions")
    session_issues: Mapped[list[SessionIssue]] = relationship(back_populates="session")
    errors: Mapped[list[SessionError]] = relationship(back_populates="session", viewonly=True)


class Issue(Base):
    __tablename__ = "issues"

    issue_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[str] = mapped_column(Text, unique=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    product: Mapped[str] = mapped_column(Text)
    module: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(Text)
    issue_created_at: Mapped[datetime | None] = mapped_column(TS)
    issue_updated_at: Mapped[datetime | None] = mapped_column(TS)
    url: Mapped[str | None] = mapped_column(Text)
    raw_data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    first_crawled_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
    last_crawled_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
    crawl_count: Mapped[int] = mapped_column(Integer, server_default="1")
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("search_vector", persisted=True), deferred=True
    )

    session_issues: Mapped[list[SessionIssue]] = relationship(back_populates="issue")
    # Ordered as the layer orders them, so the three implementations can be compared.
    comments: Mapped[list[IssueComment]] = relationship(
        back_populates="issue",
        order_by=lambda: (
            IssueComment.comment_order.asc().nulls_last(),
            IssueComment.commented_at,
            IssueComment.comment_id,
        ),
    )
    history: Mapped[list[IssueHistory]] = relationship(
        back_populates="issue",
        order_by=lambda: (IssueHistory.changed_at, IssueHistory.history_id),
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="issue", order_by=lambda: Attachment.attachment_id
    )


class SessionIssue(Base):
    __tablename__ = "session_issues"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("ims.crawl_sessions.session_id"), primary_key=True
    )
    issue_pk: Mapped[int] = mapped_column(ForeignKey("ims.issues.issue_pk"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    crawl_order: Mapped[int | None] = mapped_column(Integer)
    crawl_duration_ms: Mapped[int | None] = mapped_column(Integer)
    crawled_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    session: Mapped[CrawlSession] = relationship(back_populates="session_issues")
    issue: Mapped[Issue] = relationship(back_populates="session_issues")


class IssueComment(Base):
    __tablename__ = "issue_comments"

    comment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_pk: Mapped[int] = mapped_column(ForeignKey("ims.issues.issue_pk"))
    author: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    commented_at: Mapped[datetime | None] = mapped_column(TS)
    comment_order: Mapped[int | None] = mapped_column(Integer)

    issue: Mapped[Issue] = relationship(back_populates="comments")


class IssueHistory(Base):
    __tablename__ = "issue_history"

    history_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_pk: Mapped[int] = mapped_column(ForeignKey("ims.issues.issue_pk"))
    changed_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))
    changed_by: Mapped[str | None] = mapped_column(Text)
    field_name: Mapped[str] = mapped_column(Text)
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)

    issue: Mapped[Issue] = relationship(back_populates="history")


class Attachment(Base):
    __tablename__ = "attachments"

    attachment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_pk: Mapped[int] = mapped_column(ForeignKey("ims.issues.issue_pk"))
    # A plain reference in the schema (no foreign key, SPEC §2).
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(Text)
    file_type: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    storage_path: Mapped[str | None] = mapped_column(Text)
    checksum_sha256: Mapped[str | None] = mapped_column(Text)
    downloaded_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    issue: Mapped[Issue] = relationship(back_populates="attachments")


class SearchQuery(Base):
    __tablename__ = "search_queries"

    query_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ims.users.user_id"))
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    query_text: Mapped[str] = mapped_column(Text)
    parsed_query: Mapped[str | None] = mapped_column(Text)
    query_language: Mapped[str | None] = mapped_column(Text)
    result_count: Mapped[int | None] = mapped_column(Integer)
    execution_time_ms: Mapped[int | None] = mapped_column(Integer)
    executed_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    user: Mapped[User] = relationship(back_populates="search_queries")


class SessionError(Base):
    __tablename__ = "session_errors"

    error_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("ims.crawl_sessions.session_id"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    severity: Mapped[str] = mapped_column(Text, server_default="error")
    error_type: Mapped[str] = mapped_column(Text)
    error_message: Mapped[str] = mapped_column(Text)
    stack_trace: Mapped[str | None] = mapped_column(Text)
    issue_id: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    occurred_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))

    session: Mapped[CrawlSession] = relationship(back_populates="errors", viewonly=True)


class AnalyticsDaily(Base):
    __tablename__ = "analytics_daily"

    user_id: Mapped[int] = mapped_column(ForeignKey("ims.users.user_id"), primary_key=True)
    stat_date: Mapped[date] = mapped_column(Date, primary_key=True)
    sessions_count: Mapped[int] = mapped_column(Integer, server_default="0")
    completed_sessions: Mapped[int] = mapped_column(Integer, server_default="0")
    failed_sessions: Mapped[int] = mapped_column(Integer, server_default="0")
    issues_crawled: Mapped[int] = mapped_column(Integer, server_default="0")
    unique_issues: Mapped[int] = mapped_column(Integer, server_default="0")
    errors_count: Mapped[int] = mapped_column(Integer, server_default="0")
    avg_duration_seconds: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    total_duration_seconds: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))


class AnalyticsMonthly(Base):
    __tablename__ = "analytics_monthly"

    user_id: Mapped[int] = mapped_column(ForeignKey("ims.users.user_id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    sessions_count: Mapped[int] = mapped_column(Integer, server_default="0")
    completed_sessions: Mapped[int] = mapped_column(Integer, server_default="0")
    failed_sessions: Mapped[int] = mapped_column(Integer, server_default="0")
    issues_crawled: Mapped[int] = mapped_column(Integer, server_default="0")
    unique_issues: Mapped[int] = mapped_column(Integer, server_default="0")
    errors_count: Mapped[int] = mapped_column(Integer, server_default="0")
    avg_duration_seconds: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    total_duration_seconds: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))


class AuditLog(Base):
    __tablename__ = "audit_log"

    audit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)  # no foreign key (SPEC §2)
    action: Mapped[str] = mapped_column(Text)
    table_name: Mapped[str] = mapped_column(Text)
    record_id: Mapped[str | None] = mapped_column(Text)
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip_address: Mapped[str | None] = mapped_column(INET)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("now()"))


class OrmDatabase:
    """The guide's ``database`` module: an engine, a session factory, ``get_session``."""

    def __init__(self, conninfo: str, *, pool_size: int = 4) -> None:
        # A creator, so any libpq connection string works (sockets, several hosts).
        self.engine: Engine = create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(conninfo),
            pool_size=pool_size,
            max_overflow=0,
        )
        self.SessionLocal = sessionmaker(bind=self.engine, expire_on_commit=False)

    @contextmanager
    def get_session(self, user_id: int | None = None) -> Iterator[Session]:
        """The guide's ``get_session``: a session with the RLS context set; commits at the
        end of the block, rolls back on an exception, always closes."""
        session = self.SessionLocal()
        try:
            if user_id is not None:
                session.execute(text("SELECT ims.set_current_user(:user_id)"), {"user_id": user_id})
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()
