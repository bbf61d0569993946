"""The sample data set: small, deterministic, loaded through the public API.

What ``ims-repo demo`` walks through and what the ``ims_sample`` pytest fixture seeds:

- 4 users, created in this order so that on a fresh database their ids are fixed:
  ``admin`` (1, made an admin the owner's way), ``yijae.shin`` (2), ``john.doe`` (3) and
  ``minji.kim`` (4, 김민지).
- 6 crawl sessions (ids 1 to 6 on a fresh database): yijae.shin 3 (completed, completed,
  failed), john.doe 2 (completed, running), minji.kim 1 (completed); the admin has none.
  Fixed UUIDs; ``session_metadata`` with ``crawler_version`` (1.0.0 or 1.1.0) and
  ``nl_parsing.method`` (``rule_based`` or ``llm``); two Korean queries.
- 12 issues ``SAMPLE-001`` … ``SAMPLE-012`` (issue_pk 1 to 12): 8 OpenFrame, 4 Tibero,
  statuses New/Open/In Progress/Resolved/Closed, 4 with Korean titles. ``SAMPLE-001``
  has 3 comments, 3 history entries and 2 attachments (with SHA-256 checksums) and was
  crawled by three sessions of two users.
- 16 session-issue links with crawl order and duration, 6 logged searches (one outside
  any session), 6 session errors of all four severities, and the daily and monthly
  analytics of 2 to 4 November 2026, refreshed for each user.

``load`` is idempotent: what exists (users by username, sessions by UUID, issues by IMS
id, ad-hoc searches by text and time) is reused, and children are added only with the
row they belong to. A second load creates nothing and returns the same ids.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from ims_repo.core.records import (
    NewAttachment,
    NewCrawlSession,
    NewIssue,
    NewIssueComment,
    NewIssueHistory,
    NewSearchQuery,
    NewSessionError,
    NewSessionIssue,
    NewUser,
)
from ims_repo.core.records.types import ErrorSeverity, SessionStatus
from ims_repo.db import Database, Session
from ims_repo.services.migrations import set_role

__all__ = [
    "ADMINS",
    "ISSUES",
    "SEARCHES",
    "SESSIONS",
    "USERS",
    "Sample",
    "SampleAttachment",
    "SampleError",
    "SampleIssue",
    "SampleSearch",
    "SampleSession",
    "load",
]

_UUIDS = UUID("6f1c3a52-1d0e-4c47-9a53-0f5d2b1e9c11")
"""Namespace of the sessions' UUIDs (``uuid5`` of the session's key): fixed, so the
data set, and what the demo prints, are the same on every machine."""


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026, UTC (when the sample crawls ran)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _oct(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of October 2026, UTC (when the sample issues were filed)."""
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


# --- the records --------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleAttachment:
    """A file attached to an issue; size and checksum come from ``content``."""

    filename: str
    file_type: str
    content: bytes
    downloaded_at: datetime
    session: str | None
    """Key of the sample session that downloaded it."""

    @property
    def checksum_sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def new(self, issue_pk: int, session_id: int | None) -> NewAttachment:
        return NewAttachment(
            issue_pk=issue_pk,
            filename=self.filename,
            session_id=session_id,
            file_type=self.file_type,
            file_size=len(self.content),
            storage_path=f"/data/attachments/{issue_pk}/{self.filename}",
            checksum_sha256=self.checksum_sha256,
            downloaded_at=self.downloaded_at,
        )


@dataclass(frozen=True)
class SampleIssue:
    """An issue with the children it is loaded with."""

    issue: NewIssue
    comments: tuple[NewIssueComment, ...] = ()
    history: tuple[NewIssueHistory, ...] = ()
    attachments: tuple[SampleAttachment, ...] = ()


@dataclass(frozen=True)
class SampleSession:
    """A crawl session of one sample user, with the issues it crawled, in crawl order."""

    key: str
    owner: str
    """Username of the user who ran it."""
    product: str
    original_query: str
    parsed_query: str
    query_language: str
    status: SessionStatus
    started_at: datetime
    duration_seconds: int | None
    """None while running."""
    metadata: dict[str, Any]
    crawled: tuple[tuple[str, int], ...]
    """(issue_id, crawl_duration_ms) in crawl order (crawl_order 1, 2, …)."""
    data_path: str | None = None

    @property
    def session_uuid(self) -> UUID:
        return uuid5(_UUIDS, self.key)

    def new(self, user_id: int) -> NewCrawlSession:
        done = self.duration_seconds is not None
        return NewCrawlSession(
            user_id=user_id,
            session_uuid=self.session_uuid,
            product=self.product,
            original_query=self.original_query,
            parsed_query=self.parsed_query,
            query_language=self.query_language,
            max_results=100,
            status=self.status,
            started_at=self.started_at,
            completed_at=(
                self.started_at + timedelta(seconds=self.duration_seconds or 0) if done else None
            ),
            duration_seconds=self.duration_seconds,
            total_issues=len(self.crawled),
            data_path=self.data_path,
            session_metadata=self.metadata,
        )


@dataclass(frozen=True)
class SampleSearch:
    """A logged search; ``session`` None for one run outside any crawl."""

    owner: str
    session: str | None
    query_text: str
    parsed_query: str
    query_language: str
    result_count: int
    execution_time_ms: int
    executed_at: datetime


@dataclass(frozen=True)
class SampleError:
    """An error met in a sample session."""

    session: str
    severity: ErrorSeverity
    error_type: str
    error_message: str
    occurred_at: datetime
    issue_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    stack_trace: str | None = None


@dataclass(frozen=True)
class Sample:
    """What ``load`` loaded: ids by natural key, and what this call created.

    ``users`` by username, ``sessions`` by sample key (``"yijae-1"`` …), ``issues``
    (issue_pk) by IMS id. On a fresh database the ids are fixed (yijae.shin is 2,
    SAMPLE-001 is issue_pk 1, session ``yijae-1`` is session_id 1).
    """

    users: dict[str, int]
    sessions: dict[str, int]
    issues: dict[str, int]
    created: dict[str, int]
    """Rows this call created, by kind (``users``, ``sessions``, ``issues``, …); all zero
    when everything was there already."""
    notes: tuple[str, ...] = ()
    """Anything a reader should know (e.g. ids differ because other users existed)."""

    @property
    def admin(self) -> int:
        return self.users["admin"]

    @property
    def yijae(self) -> int:
        return self.users["yijae.shin"]

    @property
    def john(self) -> int:
        return self.users["john.doe"]

    @property
    def minji(self) -> int:
        return self.users["minji.kim"]

    @property
    def session_uuids(self) -> dict[str, UUID]:
        """The sessions' fixed UUIDs, by sample key."""
        return {crawl.key: crawl.session_uuid for crawl in SESSIONS}


# --- the data -----------------------------------------------------------------------------

USERS: tuple[NewUser, ...] = (
    NewUser(
        username="admin",
        email="admin@company.com",
        full_name="IMS Admin",
        department="IT Operations",
    ),
    NewUser(
        username="yijae.shin",
        email="yijae.shin@company.com",
        full_name="Yijae Shin",
        department="Platform",
        preferences={"theme": "light"},
    ),
    NewUser(
        username="john.doe",
        email="john.doe@company.com",
        full_name="John Doe",
        department="Engineering",
        preferences={"theme": "dark"},
    ),
    NewUser(
        username="minji.kim",
        email="minji.kim@company.com",
        full_name="김민지",
        department="품질보증팀",
        preferences={"theme": "dark", "language": "ko"},
    ),
)
"""The users, in creation order (their ids on a fresh database are 1, 2, 3, 4)."""

ADMINS: tuple[str, ...] = ("admin",)
"""Usernames made admins by the owner (``migrations.set_role``) when ``load`` is given
an owner URL."""

_RULES_1_0 = {"crawler_version": "1.0.0", "nl_parsing": {"method": "rule_based"}}
_RULES_1_1 = {"crawler_version": "1.1.0", "nl_parsing": {"method": "rule_based"}}
_LLM_1_1 = {"crawler_version": "1.1.0", "nl_parsing": {"method": "llm", "model": "ims-nl-2"}}

SESSIONS: tuple[SampleSession, ...] = (
    SampleSession(
        key="yijae-1",
        owner="yijae.shin",
        product="OpenFrame",
        original_query="connection timeout",
        parsed_query="+connection +timeout",
        query_language="en",
        status="completed",
        started_at=_at(2, 9),
        duration_seconds=120,
        metadata={**_RULES_1_0, "browser": {"headless": True}},
        crawled=(
            ("SAMPLE-001", 850),
            ("SAMPLE-002", 1200),
            ("SAMPLE-003", 640),
            ("SAMPLE-007", 980),
            ("SAMPLE-008", 1530),
        ),
        data_path="/data/crawls/yijae.shin/2026-11-02-0900",
    ),
    SampleSession(
        key="yijae-2",
        owner="yijae.shin",
        product="OpenFrame",
        original_query="배치 작업 실패",
        parsed_query="+batch +job +failure",
        query_language="ko",
        status="completed",
        started_at=_at(3, 14),
        duration_seconds=300,
        metadata=_LLM_1_1,
        crawled=(("SAMPLE-004", 2100), ("SAMPLE-008", 760), ("SAMPLE-001", 690)),
        data_path="/data/crawls/yijae.shin/2026-11-03-1400",
    ),
    SampleSession(
        key="yijae-3",
        owner="yijae.shin",
        product="Tibero",
        original_query="memory leak",
        parsed_query="+memory +leak",
        query_language="en",
        status="failed",
        started_at=_at(3, 16),
        duration_seconds=45,
        metadata=_RULES_1_1,
        crawled=(("SAMPLE-009", 3400),),
    ),
    SampleSession(
        key="john-1",
        owner="john.doe",
        product="OpenFrame",
        original_query="login error",
        parsed_query="+login +error",
        query_language="en",
        status="completed",
        started_at=_at(2, 11),
        duration_seconds=90,
        metadata=_RULES_1_0,
        crawled=(("SAMPLE-005", 720), ("SAMPLE-006", 810)),
        data_path="/data/crawls/john.doe/2026-11-02-1100",
    ),
    SampleSession(
        key="john-2",
        owner="john.doe",
        product="Tibero",
        original_query="slow query",
        parsed_query="+slow +query",
        query_language="en",
        status="running",
        started_at=_at(4, 10),
        duration_seconds=None,
        metadata=_LLM_1_1,
        crawled=(("SAMPLE-010", 1100), ("SAMPLE-012", 940)),
    ),
    SampleSession(
        key="minji-1",
        owner="minji.kim",
        product="OpenFrame",
        original_query="세션 시간 초과",
        parsed_query="+session +timeout",
        query_language="ko",
        status="completed",
        started_at=_at(4, 13),
        duration_seconds=200,
        metadata=_LLM_1_1,
        crawled=(("SAMPLE-006", 900), ("SAMPLE-003", 1050), ("SAMPLE-001", 700)),
        data_path="/data/crawls/minji.kim/2026-11-04-1300",
    ),
)
"""The crawl sessions, in creation order (ids 1 to 6 on a fresh database)."""

_LOG_LINES = b"".join(
    f"2026-11-02 08:{minute:02d}:00 ERROR batch-server: connection timeout after 30s\n".encode()
    for minute in range(40)
)
_THREAD_DUMP = b'"batch-worker-1" waiting on <0x7f3a> (java.net.SocketInputStream.read)\n' * 25
_HEAP = b"class,instances,bytes\nQueryCacheEntry,1048576,268435456\n"

ISSUES: tuple[SampleIssue, ...] = (
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-001",
            title="Connection timeout when the batch server is under load",
            description=(
                "Batch jobs fail with a connection timeout after 30 seconds when more than "
                "200 jobs run at once. 배치 서버에 부하가 걸리면 연결 시간이 초과됩니다."
            ),
            product="OpenFrame",
            module="Batch",
            version="7.1",
            status="Open",
            priority="High",
            severity="Critical",
            reporter="yijae.shin",
            assignee="john.doe",
            issue_created_at=_oct(20, 9, 30),
            issue_updated_at=_oct(28, 17),
            url="https://ims.example.com/issues/SAMPLE-001",
            raw_data={"labels": ["timeout", "batch"], "customer": "ACME", "votes": 7},
        ),
        comments=(
            NewIssueComment(
                author="john.doe",
                content="Reproduced with 250 concurrent jobs; the pool runs dry first.",
                commented_at=_oct(21, 10),
                comment_order=1,
            ),
            NewIssueComment(
                author="yijae.shin",
                content="Raising the pool size to 64 moves the limit to about 400 jobs.",
                commented_at=_oct(22, 15, 30),
                comment_order=2,
            ),
            NewIssueComment(
                author="minji.kim",
                content="QA 환경에서도 재현됩니다. 로그를 첨부했습니다.",
                commented_at=_oct(28, 16, 45),
                comment_order=3,
            ),
        ),
        history=(
            NewIssueHistory(
                field_name="status",
                old_value="New",
                new_value="Open",
                changed_by="john.doe",
                changed_at=_oct(21, 9),
            ),
            NewIssueHistory(
                field_name="priority",
                old_value="Medium",
                new_value="High",
                changed_by="yijae.shin",
                changed_at=_oct(22, 16),
            ),
            NewIssueHistory(
                field_name="assignee",
                old_value=None,
                new_value="john.doe",
                changed_by="admin",
                changed_at=_oct(28, 17),
            ),
        ),
        attachments=(
            SampleAttachment("server.log", "text/plain", _LOG_LINES, _at(2, 9, 1), "yijae-1"),
            SampleAttachment(
                "thread-dump.txt", "text/plain", _THREAD_DUMP, _at(2, 9, 1), "yijae-1"
            ),
        ),
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-002",
            title="Connection pool exhausted after a network failover",
            description="After a failover the pool keeps dead connections until restart.",
            product="OpenFrame",
            module="Online",
            version="7.1",
            status="In Progress",
            priority="High",
            severity="Major",
            reporter="john.doe",
            assignee="yijae.shin",
            issue_created_at=_oct(18, 14),
            url="https://ims.example.com/issues/SAMPLE-002",
        ),
        comments=(
            NewIssueComment(
                author="yijae.shin",
                content="Validating connections on checkout fixes it in staging.",
                commented_at=_oct(19, 11),
                comment_order=1,
            ),
        ),
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-003",
            title="연결 시간이 초과되었습니다",
            description="배치 작업 중 데이터베이스 연결 시간이 초과되어 작업이 중단됩니다.",
            product="OpenFrame",
            module="Batch",
            version="7.0",
            status="New",
            priority="Medium",
            severity="Major",
            reporter="minji.kim",
            issue_created_at=_oct(25, 8),
            url="https://ims.example.com/issues/SAMPLE-003",
        ),
        comments=(
            NewIssueComment(
                author="minji.kim",
                content="SAMPLE-001과 같은 원인으로 보입니다.",
                commented_at=_oct(25, 9),
                comment_order=1,
            ),
        ),
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-004",
            title="배치 작업이 실패합니다",
            description="야간 배치 작업이 메모리 부족으로 실패합니다.",
            product="OpenFrame",
            module="Batch",
            version="7.1",
            status="Open",
            priority="High",
            severity="Critical",
            reporter="yijae.shin",
            assignee="minji.kim",
            issue_created_at=_oct(26, 23),
            url="https://ims.example.com/issues/SAMPLE-004",
        )
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-005",
            title="Login error after a password change",
            description="Users see 'invalid credentials' until their session cache expires.",
            product="OpenFrame",
            module="Security",
            version="7.1",
            status="Resolved",
            priority="Medium",
            severity="Minor",
            reporter="john.doe",
            assignee="john.doe",
            issue_created_at=_oct(10, 12),
            url="https://ims.example.com/issues/SAMPLE-005",
        ),
        history=(
            NewIssueHistory(
                field_name="status",
                old_value="Open",
                new_value="Resolved",
                changed_by="john.doe",
                changed_at=_oct(30, 10),
            ),
        ),
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-006",
            title="세션 시간 초과 후 로그인 화면으로 이동하지 않음",
            description="세션 시간 초과 뒤에 빈 화면이 표시됩니다.",
            product="OpenFrame",
            module="Online",
            version="7.1",
            status="New",
            priority="Low",
            severity="Minor",
            reporter="minji.kim",
            issue_created_at=_oct(29, 13),
            url="https://ims.example.com/issues/SAMPLE-006",
        )
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-007",
            title="Timeout in the transaction monitor",
            description="The monitor page times out when listing more than 10,000 transactions.",
            product="OpenFrame",
            module="Monitor",
            version="6.5",
            status="Closed",
            priority="Low",
            severity="Minor",
            reporter="yijae.shin",
            issue_created_at=_oct(2, 10),
            url="https://ims.example.com/issues/SAMPLE-007",
        )
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-008",
            title="Batch job hangs on a socket timeout",
            description="A job waiting on a dead socket never ends; no timeout is applied.",
            product="OpenFrame",
            module="Batch",
            version="7.1",
            status="New",
            priority="Medium",
            severity="Major",
            reporter="john.doe",
            issue_created_at=_oct(27, 8, 15),
            url="https://ims.example.com/issues/SAMPLE-008",
        )
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-009",
            title="Memory leak in the query cache",
            description="The query cache grows without bound under ad-hoc queries.",
            product="Tibero",
            module="Cache",
            version="7.2",
            status="Open",
            priority="High",
            severity="Critical",
            reporter="yijae.shin",
            assignee="john.doe",
            issue_created_at=_oct(15, 9),
            url="https://ims.example.com/issues/SAMPLE-009",
            raw_data={"labels": ["memory"], "customer": "Globex"},
        ),
        attachments=(
            SampleAttachment("heap-histogram.csv", "text/csv", _HEAP, _at(3, 16, 1), "yijae-3"),
        ),
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-010",
            title="Slow query on partitioned tables",
            description="Partition pruning is skipped when the key is compared to a bind value.",
            product="Tibero",
            module="Optimizer",
            version="7.2",
            status="In Progress",
            priority="Medium",
            severity="Major",
            reporter="john.doe",
            assignee="john.doe",
            issue_created_at=_oct(12, 16),
            url="https://ims.example.com/issues/SAMPLE-010",
        )
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-011",
            title="메모리 사용량이 계속 증가합니다",
            description="장시간 실행 시 메모리 사용량이 줄어들지 않습니다.",
            product="Tibero",
            module="Cache",
            version="7.2",
            status="New",
            priority="High",
            severity="Major",
            reporter="minji.kim",
            issue_created_at=_oct(30, 11),
            url="https://ims.example.com/issues/SAMPLE-011",
        )
    ),
    SampleIssue(
        NewIssue(
            issue_id="SAMPLE-012",
            title="Optimizer ignores an index hint",
            description="The INDEX hint is ignored when the table has an alias.",
            product="Tibero",
            module="Optimizer",
            version="7.1",
            status="Closed",
            priority="Low",
            severity="Minor",
            reporter="john.doe",
            issue_created_at=_oct(1, 10),
            url="https://ims.example.com/issues/SAMPLE-012",
        )
    ),
)
"""The issues, in creation order (issue_pk 1 to 12 on a fresh database)."""

SEARCHES: tuple[SampleSearch, ...] = (
    # owner, session, query_text, parsed_query, language, results, ms, executed_at
    SampleSearch(
        "yijae.shin",
        "yijae-1",
        "connection timeout",
        "+connection +timeout",
        "en",
        5,
        142,
        _at(2, 9),
    ),
    SampleSearch(
        "yijae.shin", "yijae-2", "배치 작업 실패", "+batch +job +failure", "ko", 3, 388, _at(3, 14)
    ),
    SampleSearch("yijae.shin", "yijae-3", "memory leak", "+memory +leak", "en", 1, 97, _at(3, 16)),
    SampleSearch("john.doe", "john-1", "login error", "+login +error", "en", 2, 120, _at(2, 11)),
    SampleSearch("john.doe", None, "optimizer hint", "+optimizer +hint", "en", 1, 64, _at(4, 9)),
    SampleSearch(
        "minji.kim", "minji-1", "세션 시간 초과", "+session +timeout", "ko", 3, 251, _at(4, 13)
    ),
)
"""The search log; a search is loaded with its session (or, outside any, on its own)."""

ERRORS: tuple[SampleError, ...] = (
    SampleError(
        "yijae-1",
        "info",
        "RetryScheduled",
        "Retrying SAMPLE-002 after a read timeout (attempt 2 of 3)",
        _at(2, 9, 1),
        issue_id="SAMPLE-002",
        context={"attempt": 2, "max_attempts": 3},
    ),
    SampleError(
        "yijae-1",
        "warning",
        "SlowResponse",
        "The IMS took 4.2 s to answer a page request",
        _at(2, 9, 1),
        context={"elapsed_ms": 4200, "page": 2},
    ),
    SampleError(
        "yijae-2",
        "error",
        "ParseError",
        "Could not parse the attachment list of SAMPLE-004",
        _at(3, 14, 3),
        issue_id="SAMPLE-004",
        context={"parser": "html", "selector": "#attachments"},
    ),
    SampleError(
        "yijae-3",
        "critical",
        "OutOfMemoryError",
        "The crawler ran out of memory while downloading attachments",
        _at(3, 16, 0),
        issue_id="SAMPLE-009",
        context={"heap_mb": 512},
        stack_trace="Traceback (most recent call last):\n  ...\nMemoryError",
    ),
    SampleError(
        "yijae-3",
        "error",
        "TimeoutError",
        "The IMS did not answer within 30 s",
        _at(3, 16, 0),
        context={"timeout_s": 30},
    ),
    SampleError(
        "john-2",
        "warning",
        "RateLimited",
        "The IMS asked to slow down (HTTP 429); waiting 10 s",
        _at(4, 10, 2),
        context={"status": 429, "retry_after_s": 10},
    ),
)
"""The session errors, loaded with their session."""

KINDS = (
    "users",
    "sessions",
    "issues",
    "comments",
    "history",
    "attachments",
    "links",
    "searches",
    "errors",
)
"""The kinds of rows ``Sample.created`` counts, in loading order."""

ANALYTICS_DAYS: tuple[date, ...] = tuple(sorted({crawl.started_at.date() for crawl in SESSIONS}))
"""The UTC days the sample crawls ran on; their analytics are refreshed by ``load``."""


# --- loading ------------------------------------------------------------------------------


def load(target: Database | Session, *, owner_url: str | None = None) -> Sample:
    """Load the sample data through the public API, idempotently; the ids.

    ``target`` is a ``Database`` or a ``Session`` logged in as a runtime login (or with
    ``act_as="ims_app"``), on a migrated database. With a ``Database`` everything is
    written in one session (one transaction, plus one commit after the users when an
    admin is to be made). With a ``Session`` it runs in the caller's transaction and
    leaves the session's context as it found it; the caller's block commits it.

    ``owner_url`` (a superuser's or ``ims_owner`` member's URL) makes ``admin`` an admin
    with ``migrations.set_role``, the owner's path; the user is committed first, since
    the owner's connection must see it (with a ``Session`` this commits the caller's
    transaction at that point). Without it the users stay ordinary.

    Ids are fixed on a fresh database (see the module docstring); where other users
    already existed, the sample users get the next free ids and ``Sample.notes`` says so.
    """
    if isinstance(target, Session):
        return _load(target, owner_url)
    with target.session() as s:
        return _load(s, owner_url)


def _load(s: Session, owner_url: str | None) -> Sample:
    context = s.user_id
    created: Counter[str] = Counter()
    try:
        s.set_user(None)
        users = _users(s, created)
        if owner_url is not None:
            if created["users"]:
                s.commit()  # set_role's own connection must see the new users
            for username in ADMINS:
                set_role(owner_url, username, "admin")
        issues, new_issues = _issues(s, created)
        sessions, new_sessions = _sessions(s, users, created)
        _issue_children(s, issues, new_issues, sessions, created)
        _session_children(s, users, issues, sessions, new_sessions, created)
        _searches(s, users, sessions, new_sessions, created)
        for username in sorted({crawl.owner for crawl in SESSIONS}):
            s.set_user(users[username])
            for day in ANALYTICS_DAYS:
                s.analytics.refresh(day)
    finally:
        s.set_user(context)
    notes: tuple[str, ...] = ()
    if users["yijae.shin"] != 2:
        notes = (
            "this database already had other users, so the sample users got the next free "
            f"ids (yijae.shin is {users['yijae.shin']}, not 2)",
        )
    return Sample(users, sessions, issues, {kind: created[kind] for kind in KINDS}, notes)


def _users(s: Session, created: Counter[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for new in USERS:
        user = s.users.get_by_username(new.username)
        if user is None:
            user = s.users.create(new)
            created["users"] += 1
        ids[new.username] = user.user_id
    return ids


def _issues(s: Session, created: Counter[str]) -> tuple[dict[str, int], set[str]]:
    wanted = [sample.issue.issue_id for sample in ISSUES]
    ids = {issue.issue_id: issue.issue_pk for issue in s.issues.find(issue_id_in=wanted)}
    new: set[str] = set()
    for sample in ISSUES:
        if sample.issue.issue_id not in ids:
            ids[sample.issue.issue_id] = s.issues.create(sample.issue).issue_pk
            new.add(sample.issue.issue_id)
            created["issues"] += 1
    return {issue_id: ids[issue_id] for issue_id in wanted}, new


def _sessions(
    s: Session, users: dict[str, int], created: Counter[str]
) -> tuple[dict[str, int], set[str]]:
    ids: dict[str, int] = {}
    new: set[str] = set()
    for crawl in SESSIONS:
        s.set_user(users[crawl.owner])  # RLS: a user sees and writes only their own
        found = s.crawl_sessions.get_by_uuid(crawl.session_uuid)
        if found is None:
            found = s.crawl_sessions.create(crawl.new(users[crawl.owner]))
            new.add(crawl.key)
            created["sessions"] += 1
        ids[crawl.key] = found.session_id
    return ids, new


def _issue_children(
    s: Session,
    issues: dict[str, int],
    new_issues: set[str],
    sessions: dict[str, int],
    created: Counter[str],
) -> None:
    """Comments, history and attachments of the issues created by this load."""
    s.set_user(None)  # shared tables
    for sample in ISSUES:
        if sample.issue.issue_id not in new_issues:
            continue
        issue_pk = issues[sample.issue.issue_id]
        created["comments"] += s.comments.add_many(issue_pk, sample.comments)
        created["history"] += s.history.add_many(issue_pk, sample.history)
        for attachment in sample.attachments:
            session_id = sessions.get(attachment.session) if attachment.session else None
            s.attachments.create(attachment.new(issue_pk, session_id))
            created["attachments"] += 1


def _session_children(
    s: Session,
    users: dict[str, int],
    issues: dict[str, int],
    sessions: dict[str, int],
    new_sessions: set[str],
    created: Counter[str],
) -> None:
    """Links and errors of the sessions created by this load."""
    for crawl in SESSIONS:
        if crawl.key not in new_sessions:
            continue
        s.set_user(users[crawl.owner])
        session_id = sessions[crawl.key]
        links = [
            NewSessionIssue(
                session_id=session_id,
                issue_pk=issues[issue_id],
                crawl_order=order,
                crawl_duration_ms=duration_ms,
            )
            for order, (issue_id, duration_ms) in enumerate(crawl.crawled, start=1)
        ]
        created["links"] += s.session_issues.link_many(links)
        for error in ERRORS:
            if error.session != crawl.key:
                continue
            s.session_errors.create(
                NewSessionError(
                    session_id=session_id,
                    user_id=users[crawl.owner],
                    severity=error.severity,
                    error_type=error.error_type,
                    error_message=error.error_message,
                    stack_trace=error.stack_trace,
                    issue_id=error.issue_id,
                    context=error.context,
                    occurred_at=error.occurred_at,
                )
            )
            created["errors"] += 1


def _searches(
    s: Session,
    users: dict[str, int],
    sessions: dict[str, int],
    new_sessions: set[str],
    created: Counter[str],
) -> None:
    """The search log: with a session created by this load, or (outside any session)
    unless the same user already logged the same text at the same time."""
    for search in SEARCHES:
        user_id = users[search.owner]
        s.set_user(user_id)
        if search.session is not None and search.session not in new_sessions:
            continue
        if search.session is None and s.search_queries.find(
            user_id=user_id,
            has_session_id=False,
            query_text=search.query_text,
            executed_at=search.executed_at,
        ):
            continue
        s.search_queries.log(
            NewSearchQuery(
                user_id=user_id,
                session_id=sessions[search.session] if search.session else None,
                query_text=search.query_text,
                parsed_query=search.parsed_query,
                query_language=search.query_language,
                result_count=search.result_count,
                execution_time_ms=search.execution_time_ms,
                executed_at=search.executed_at,
            )
        )
        created["searches"] += 1
