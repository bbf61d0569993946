"""What users do: ``s.search_queries`` (search log), ``s.session_errors``,
``s.analytics`` and ``s.audit``; every method through the public API, as the runtime
login (row-level security applies)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address

import pytest

from ims_repo import (
    Database,
    ForeignKeyViolation,
    InvalidInput,
    NewCrawlSession,
    NewSearchQuery,
    NewSessionError,
    NewUser,
    PermissionDenied,
    Session,
)
from tests.seed import crawl, people

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


def add_issue(s: Session, issue_id: str, title: str = "An issue") -> int:
    """A shared issue, inserted as the runtime role; its issue_pk."""
    [row] = s.execute(
        "INSERT INTO ims.issues (issue_id, title, product) "
        "VALUES (%(issue_id)s, %(title)s, 'OpenFrame') RETURNING issue_pk",
        {"issue_id": issue_id, "title": title},
    )
    return int(row["issue_pk"])


def link(s: Session, session_id: int, issue_pk: int, user_id: int) -> None:
    s.execute(
        "INSERT INTO ims.session_issues (session_id, issue_pk, user_id) "
        "VALUES (%(session_id)s, %(issue_pk)s, %(user_id)s)",
        {"session_id": session_id, "issue_pk": issue_pk, "user_id": user_id},
    )


# --- search log ----------------------------------------------------------------------


def test_log_a_search_and_read_it_back(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [crawl_id] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        before = s.execute("SELECT now() AS t")[0]["t"]
        logged = s.search_queries.log(
            NewSearchQuery(
                user_id=p.alice,
                session_id=crawl_id,
                query_text="연결 시간 초과 'quoted'",
                parsed_query="+연결 +시간",
                query_language="ko",
                result_count=12,
                execution_time_ms=340,
            )
        )
        assert logged.query_id > 0 and logged.session_id == crawl_id
        assert logged.query_text == "연결 시간 초과 'quoted'" and logged.result_count == 12
        assert logged.executed_at == before  # defaults to now(), the transaction's time
        assert s.search_queries.get(logged.query_id) == logged
        assert s.search_queries.get(logged.query_id + 1000) is None
        # a mapping is validated like the record; executed_at may be given
        bare = s.search_queries.log({"user_id": p.alice, "query_text": "x", "executed_at": T0})
        assert (bare.session_id, bare.parsed_query, bare.executed_at) == (None, None, T0)
    with ims_db.session(user_id=p.bob) as s:
        assert s.search_queries.get(logged.query_id) is None  # only its owner sees it
    with ims_db.session(user_id=p.admin) as s:
        assert s.search_queries.get(logged.query_id) == logged  # an admin sees all
    with ims_db.session() as s:
        assert s.search_queries.find() == []  # no context: no rows


def test_logging_for_another_user_or_their_session_is_refused(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [bobs] = crawl(ims_db, p.bob, 1)
    with (
        pytest.raises(PermissionDenied, match="search_queries"),
        ims_db.session(user_id=p.alice) as s,
    ):
        s.search_queries.log(NewSearchQuery(user_id=p.bob, query_text="q"))
    # alice's own user_id with bob's session: the composite foreign key refuses it
    with pytest.raises(ForeignKeyViolation), ims_db.session(user_id=p.alice) as s:
        s.search_queries.log(NewSearchQuery(user_id=p.alice, session_id=bobs, query_text="q"))
    # even an admin cannot log a search under bob's session for alice
    with pytest.raises(ForeignKeyViolation), ims_db.session(user_id=p.admin) as s:
        s.search_queries.log(NewSearchQuery(user_id=p.alice, session_id=bobs, query_text="q"))
    with ims_db.session(user_id=p.admin) as s:
        assert s.search_queries.find() == []


@pytest.mark.parametrize(
    "fields",
    [
        {"query_text": "a\x00b"},
        {"result_count": -1},
        {"execution_time_ms": -5},
        {"query_text": None},
        {"user_id": "one"},
        {"unknown": 1},
    ],
)
def test_bad_search_log_input_is_refused_before_any_sql(
    ims_db: Database, ims_admin_url: str, fields: dict[str, object]
) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        with pytest.raises(InvalidInput):
            s.search_queries.log({"user_id": p.alice, "query_text": "q"} | fields)
        assert s.statements_sent == 0


def test_find_search_log_filters_order_and_owner(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [crawl_id] = crawl(ims_db, p.alice, 1)
    specs = [
        ("connection timeout", "en", crawl_id, 5, T0),
        ("연결 오류", "ko", None, 0, T0 + timedelta(hours=1)),
        ("connection refused", "en", None, None, T0 + timedelta(hours=2)),
    ]
    with ims_db.session(user_id=p.alice) as s:
        ids = [
            s.search_queries.log(
                NewSearchQuery(
                    user_id=p.alice,
                    query_text=text,
                    query_language=lang,
                    session_id=session,
                    result_count=count,
                    executed_at=at,
                )
            ).query_id
            for text, lang, session, count, at in specs
        ]
    with ims_db.session(user_id=p.bob) as s:
        bobs = s.search_queries.log(NewSearchQuery(user_id=p.bob, query_text="connection")).query_id

    with ims_db.session(user_id=p.alice) as s:

        def found(**kw: object) -> list[int]:
            return [q.query_id for q in s.search_queries.find(**kw)]  # type: ignore[arg-type]

        assert found() == ids  # bob's search is not visible
        assert found(query_text_like="connection%") == [ids[0], ids[2]]
        assert found(query_language="ko") == [ids[1]]
        assert found(session_id=crawl_id) == [ids[0]]
        assert found(has_session_id=False) == [ids[1], ids[2]]
        assert found(has_result_count=False) == [ids[2]]
        assert found(result_count_in=[0, 5]) == [ids[0], ids[1]]
        assert found(executed_at_from=T0 + timedelta(hours=1)) == [ids[1], ids[2]]
        assert found(executed_at_to=T0 + timedelta(hours=1)) == [ids[0]]
        assert found(order_by=["-executed_at"]) == list(reversed(ids))
        assert found(order_by=["-executed_at"], limit=1, offset=1) == [ids[1]]
        assert found(user_id=p.bob) == []
        with pytest.raises(InvalidInput, match="unknown filter"):
            found(text="x")
    with ims_db.session(user_id=p.admin) as s:
        assert [q.query_id for q in s.search_queries.find()] == [*ids, bobs]
        assert [q.query_id for q in s.search_queries.find(user_id=p.bob)] == [bobs]


def test_delete_a_logged_search(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.bob) as s:
        bobs = s.search_queries.log(NewSearchQuery(user_id=p.bob, query_text="b")).query_id
    with ims_db.session(user_id=p.alice) as s:
        mine = s.search_queries.log(NewSearchQuery(user_id=p.alice, query_text="a")).query_id
        assert s.search_queries.delete(bobs) is False  # hidden: not deleted
        assert s.search_queries.delete(mine) is True
        assert s.search_queries.delete(mine) is False
        assert s.search_queries.get(mine) is None
    with ims_db.session(user_id=p.bob) as s:
        assert s.search_queries.get(bobs) is not None


def test_deleting_the_session_keeps_the_logged_search(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [crawl_id] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        logged = s.search_queries.log(
            NewSearchQuery(user_id=p.alice, session_id=crawl_id, query_text="q")
        )
        assert s.crawl_sessions.delete(crawl_id) is True
        kept = s.search_queries.get(logged.query_id)
        assert kept is not None and kept.session_id is None and kept.user_id == p.alice


# --- session errors --------------------------------------------------------------------


def test_create_get_and_list_a_sessions_errors(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [crawl_id, other] = crawl(ims_db, p.alice, 2)
    with ims_db.session(user_id=p.alice) as s:
        now = s.execute("SELECT now() AS t")[0]["t"]
        first = s.session_errors.create(
            NewSessionError(
                session_id=crawl_id,
                user_id=p.alice,
                error_type="TimeoutError",
                error_message="page did not load in 30 s",
            )
        )
        assert (first.severity, first.context, first.stack_trace, first.issue_id) == (
            "error",
            {},
            None,
            None,
        )
        assert first.occurred_at == now
        earlier = s.session_errors.create(
            {
                "session_id": crawl_id,
                "user_id": p.alice,
                "severity": "critical",
                "error_type": "LoginError",
                "error_message": "로그인 실패",
                "stack_trace": "Traceback ...",
                "issue_id": "SAMPLE-001",
                "context": {"attempt": 3, "url": "https://ims/login", "중첩": {"a": [1]}},
                "occurred_at": datetime(2020, 1, 1, tzinfo=UTC),  # before now()
            }
        )
        assert earlier.context == {"attempt": 3, "url": "https://ims/login", "중첩": {"a": [1]}}
        s.session_errors.create(
            NewSessionError(session_id=other, user_id=p.alice, error_type="X", error_message="y")
        )
        assert s.session_errors.get(first.error_id) == first
        assert s.session_errors.get(first.error_id + 1000) is None
        # in the order they occurred
        assert s.session_errors.for_session(crawl_id) == [earlier, first]
    with ims_db.session(user_id=p.bob) as s:
        assert s.session_errors.get(first.error_id) is None
        assert s.session_errors.for_session(crawl_id) == []
        assert s.session_errors.find() == []
    with ims_db.session(user_id=p.admin) as s:
        assert s.session_errors.for_session(crawl_id) == [earlier, first]
        assert len(s.session_errors.find()) == 3


def test_errors_for_another_user_or_session_are_refused(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [alices] = crawl(ims_db, p.alice, 1)
    [bobs] = crawl(ims_db, p.bob, 1)
    error = {"error_type": "E", "error_message": "m"}
    with pytest.raises(PermissionDenied), ims_db.session(user_id=p.alice) as s:
        s.session_errors.create({"session_id": bobs, "user_id": p.bob} | error)
    with pytest.raises(ForeignKeyViolation), ims_db.session(user_id=p.alice) as s:
        s.session_errors.create({"session_id": bobs, "user_id": p.alice} | error)
    # an admin passes RLS, but user_id must still be the session's
    with pytest.raises(ForeignKeyViolation), ims_db.session(user_id=p.admin) as s:
        s.session_errors.create({"session_id": alices, "user_id": p.bob} | error)
    with ims_db.session(user_id=p.admin) as s:
        assert s.session_errors.find() == []


@pytest.mark.parametrize(
    "fields",
    [
        {"severity": "fatal"},
        {"error_type": ""},
        {"error_message": "a\x00b"},
        {"context": ["not", "an", "object"]},
        {"context": {"k": "\x00"}},
        {"log": "no such field"},
    ],
)
def test_bad_error_input_is_refused_before_any_sql(
    ims_db: Database, ims_admin_url: str, fields: dict[str, object]
) -> None:
    p = people(ims_db, ims_admin_url)
    [crawl_id] = crawl(ims_db, p.alice, 1)
    data = {"session_id": crawl_id, "user_id": p.alice, "error_type": "E", "error_message": "m"}
    with ims_db.session(user_id=p.alice) as s:
        with pytest.raises(InvalidInput):
            s.session_errors.create(data | fields)
        assert s.statements_sent == 0


def test_find_errors_by_severity_type_issue_and_time(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [one, two] = crawl(ims_db, p.alice, 2)
    specs = [
        (one, "info", "Retry", None, None, T0),
        (one, "warning", "SlowPage", "SAMPLE-001", None, T0 + timedelta(minutes=1)),
        (two, "error", "TimeoutError", "SAMPLE-002", "Traceback", T0 + timedelta(minutes=2)),
        (two, "critical", "LoginError", None, "Traceback", T0 + timedelta(minutes=3)),
    ]
    with ims_db.session(user_id=p.alice) as s:
        ids = [
            s.session_errors.create(
                NewSessionError(
                    session_id=session,
                    user_id=p.alice,
                    severity=severity,  # type: ignore[arg-type]
                    error_type=kind,
                    error_message="m",
                    issue_id=issue,
                    stack_trace=trace,
                    occurred_at=at,
                )
            ).error_id
            for session, severity, kind, issue, trace, at in specs
        ]

        def found(**kw: object) -> list[int]:
            return [e.error_id for e in s.session_errors.find(**kw)]  # type: ignore[arg-type]

        assert found(session_id=two) == ids[2:]
        assert found(user_id=p.alice) == ids
        assert found(severity="warning") == [ids[1]]
        assert found(severity_in=["error", "critical"]) == ids[2:]
        assert found(error_type="TimeoutError") == [ids[2]]
        assert found(error_type_like="%Error") == [ids[2], ids[3]]
        assert found(issue_id="SAMPLE-001") == [ids[1]]
        assert found(has_issue_id=False) == [ids[0], ids[3]]
        assert found(has_stack_trace=True) == ids[2:]
        assert found(occurred_at_from=T0 + timedelta(minutes=1), occurred_at_to=T0 + timedelta(minutes=3)) == ids[1:3]  # fmt: skip
        assert found(order_by=["-occurred_at"], limit=2) == [ids[3], ids[2]]
        with pytest.raises(InvalidInput):
            found(severity="fatal")
        with pytest.raises(InvalidInput, match="order_by"):
            found(order_by=["context"])


def test_delete_one_error_and_bulk_delete_by_severity(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [alices] = crawl(ims_db, p.alice, 1)
    [bobs] = crawl(ims_db, p.bob, 1)

    def error(s: Session, session_id: int, user_id: int, severity: str) -> int:
        return s.session_errors.create(
            {
                "session_id": session_id,
                "user_id": user_id,
                "severity": severity,
                "error_type": "E",
                "error_message": "m",
            }
        ).error_id

    with ims_db.session(user_id=p.bob) as s:
        bobs_info = error(s, bobs, p.bob, "info")
        bobs_warning = error(s, bobs, p.bob, "warning")
    with ims_db.session(user_id=p.alice) as s:
        info = [error(s, alices, p.alice, "info") for _ in range(2)]
        warning = error(s, alices, p.alice, "warning")
        spare = error(s, alices, p.alice, "critical")

        assert s.session_errors.delete(bobs_warning) is False  # hidden: not deleted
        assert s.session_errors.delete(spare) is True
        assert s.session_errors.delete(spare) is False

        assert s.session_errors.delete_by_severity("info") == 2  # alice's two only
        assert [e.error_id for e in s.session_errors.find()] == [warning]
        assert s.session_errors.delete_by_severity("info") == 0
        assert all(s.session_errors.get(i) is None for i in info)
    with ims_db.session(user_id=p.bob) as s:
        assert [e.error_id for e in s.session_errors.find()] == [bobs_info, bobs_warning]
    with ims_db.session(user_id=p.admin) as s:
        assert s.session_errors.delete_by_severity("info") == 1  # an admin: everyone's
        assert [e.error_id for e in s.session_errors.find()] == [bobs_warning, warning]


@pytest.mark.parametrize("severity", ["fatal", "INFO", "", 1, None, "info'; DELETE --"])
def test_delete_by_severity_refuses_unknown_severities_before_any_sql(
    ims_db: Database, ims_admin_url: str, severity: object
) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        with pytest.raises(InvalidInput, match="severity"):
            s.session_errors.delete_by_severity(severity)  # type: ignore[arg-type]
        assert s.statements_sent == 0


# --- analytics -------------------------------------------------------------------------

DAY = date(2026, 11, 3)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def new_crawl(
    user_id: int, status: str, started_at: datetime, seconds: int | None
) -> NewCrawlSession:
    return NewCrawlSession(
        user_id=user_id,
        product="OpenFrame",
        original_query="q",
        status=status,  # type: ignore[arg-type]
        started_at=started_at,
        duration_seconds=seconds,
    )


def build_alices_month(db: Database, alice: int) -> None:
    """Alice's crawls: three on DAY (UTC), one early on the next UTC day (the evening
    of DAY in New York), one in October."""
    new_york = timezone(timedelta(hours=-5))
    with db.session(user_id=alice) as s:
        issues = [add_issue(s, f"AN-{n}") for n in range(3)]
        s1 = s.crawl_sessions.create(new_crawl(alice, "completed", at(DAY, 0, 5), 100))
        s2 = s.crawl_sessions.create(new_crawl(alice, "failed", at(DAY, 23, 59), 50))
        s.crawl_sessions.create(new_crawl(alice, "pending", at(DAY, 12), None))  # s3
        s4 = s.crawl_sessions.create(
            new_crawl(alice, "completed", datetime(2026, 11, 3, 19, 30, tzinfo=new_york), 10)
        )
        s5 = s.crawl_sessions.create(new_crawl(alice, "completed", at(date(2026, 10, 20), 9), 7))
        for session, found in [(s1, [0, 1]), (s2, [1]), (s4, [2]), (s5, [0])]:
            for index in found:
                link(s, session.session_id, issues[index], alice)
        for session, count in [(s1, 1), (s2, 2), (s5, 4)]:
            for _ in range(count):
                s.session_errors.create(
                    NewSessionError(
                        session_id=session.session_id,
                        user_id=alice,
                        error_type="E",
                        error_message="m",
                    )
                )


def figures(row: object) -> tuple[object, ...]:
    return tuple(
        getattr(row, name)
        for name in (
            "sessions_count",
            "completed_sessions",
            "failed_sessions",
            "issues_crawled",
            "unique_issues",
            "errors_count",
            "avg_duration_seconds",
            "total_duration_seconds",
        )
    )


def test_refresh_gives_the_exact_daily_and_monthly_figures(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    build_alices_month(ims_db, p.alice)
    with ims_db.session(user_id=p.alice) as s:
        assert s.analytics.daily(p.alice, DAY, DAY) == []  # nothing until refreshed
        s.analytics.refresh(DAY)
        s.analytics.refresh(DAY + timedelta(days=1))
        s.analytics.refresh(date(2026, 10, 20))

        days = s.analytics.daily(p.alice, DAY - timedelta(days=30), DAY + timedelta(days=30))
        assert [(d.user_id, d.stat_date) for d in days] == [
            (p.alice, date(2026, 10, 20)),
            (p.alice, DAY),
            (p.alice, DAY + timedelta(days=1)),
        ]
        # DAY: s1, s2, s3; issues 0, 1 (s1) and 1 again (s2); 1 + 2 errors;
        # durations 100 and 50 (s3 has none)
        assert figures(days[1]) == (3, 1, 1, 3, 2, 3, Decimal("75.00"), 150)
        # the next UTC day: s4, started at 19:30 in New York on DAY
        assert figures(days[2]) == (1, 1, 0, 1, 1, 0, Decimal("10.00"), 10)
        assert figures(days[0]) == (1, 1, 0, 1, 1, 4, Decimal("7.00"), 7)
        # both bounds are included
        assert [d.stat_date for d in s.analytics.daily(p.alice, DAY, DAY)] == [DAY]
        assert [d.stat_date for d in s.analytics.daily(p.alice, DAY, DAY + timedelta(days=1))] == [
            DAY,
            DAY + timedelta(days=1),
        ]

        [november] = s.analytics.monthly(p.alice, date(2026, 11, 15), date(2026, 11, 20))
        assert november.month == date(2026, 11, 1)
        # s1..s4: issues 0, 1, 1, 2 (3 distinct); durations 100, 50, 10
        assert figures(november) == (4, 2, 1, 4, 3, 3, Decimal("53.33"), 160)
        months = s.analytics.monthly(p.alice, date(2026, 10, 31), date(2026, 11, 1))
        assert [m.month for m in months] == [date(2026, 10, 1), date(2026, 11, 1)]
        assert figures(months[0]) == (1, 1, 0, 1, 1, 4, Decimal("7.00"), 7)
        assert s.analytics.monthly(p.alice, date(2026, 12, 1), date(2027, 1, 31)) == []

        # a refresh recomputes: a session deleted, the day and month follow
        s.execute("DELETE FROM ims.crawl_sessions WHERE status = 'failed'")
        s.analytics.refresh(DAY)
        [day] = s.analytics.daily(p.alice, DAY, DAY)
        assert figures(day) == (2, 1, 0, 2, 2, 1, Decimal("100.00"), 100)
        [november] = s.analytics.monthly(p.alice, DAY, DAY)
        assert figures(november) == (3, 2, 0, 3, 3, 1, Decimal("55.00"), 110)

        # a day left with no sessions loses its row
        s.execute("DELETE FROM ims.crawl_sessions WHERE started_at >= %(d)s", {"d": at(DAY, 0)})
        s.analytics.refresh(DAY)
        assert s.analytics.daily(p.alice, DAY, DAY) == []
    with ims_db.session(user_id=p.bob) as s:
        assert s.analytics.daily(p.alice, date(2026, 10, 1), date(2026, 12, 31)) == []
        assert s.analytics.monthly(p.alice, date(2026, 10, 1), date(2026, 12, 31)) == []


def test_an_ordinary_users_refresh_leaves_other_users_rows_alone(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.bob) as s:
        s.crawl_sessions.create(new_crawl(p.bob, "completed", at(DAY, 9), 30))
        s.analytics.refresh(DAY)
        [bobs_before] = s.analytics.daily(p.bob, DAY, DAY)
        # bob crawls again; his figures are stale until someone who sees them refreshes
        s.crawl_sessions.create(new_crawl(p.bob, "failed", at(DAY, 10), 10))
    with ims_db.session(user_id=p.alice) as s:
        s.crawl_sessions.create(new_crawl(p.alice, "completed", at(DAY, 11), 20))
        s.analytics.refresh(DAY)
        assert figures(s.analytics.daily(p.alice, DAY, DAY)[0])[:3] == (1, 1, 0)
        assert s.analytics.daily(p.bob, DAY, DAY) == []  # hidden from alice
    with ims_db.session(user_id=p.bob) as s:
        assert s.analytics.daily(p.bob, DAY, DAY) == [bobs_before]  # untouched, not deleted
        [bobs_month] = s.analytics.monthly(p.bob, DAY, DAY)
        assert figures(bobs_month)[:3] == (1, 1, 0)
        assert s.analytics.daily(p.alice, DAY, DAY) == []
    with ims_db.session(user_id=p.admin) as s:
        s.analytics.refresh(DAY)  # an admin recomputes everyone's
        [bobs_after] = s.analytics.daily(p.bob, DAY, DAY)
        assert figures(bobs_after) == (2, 1, 1, 0, 0, 0, Decimal("20.00"), 40)
        assert figures(s.analytics.daily(p.alice, DAY, DAY)[0])[:3] == (1, 1, 0)
        assert figures(s.analytics.monthly(p.bob, DAY, DAY)[0])[:3] == (2, 1, 1)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("refresh", (datetime(2026, 11, 3, tzinfo=UTC),)),
        ("refresh", ("2026-11-03",)),
        ("daily", (1, "2026-11-01", DAY)),
        ("daily", (1, DAY, datetime(2026, 11, 4))),
        ("daily", ("1", DAY, DAY)),
        ("monthly", (1, DAY, None)),
        ("monthly", (True, DAY, DAY)),
    ],
)
def test_analytics_refuse_bad_dates_before_any_sql(
    ims_db: Database, call: str, args: tuple[object, ...]
) -> None:
    with ims_db.session(user_id=1) as s:
        with pytest.raises(InvalidInput):
            getattr(s.analytics, call)(*args)
        assert s.statements_sent == 0


# --- audit -----------------------------------------------------------------------------


def test_audit_rows_record_changes_with_their_actor_newest_first(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        crawl_id = s.crawl_sessions.create(
            new_crawl(p.alice, "running", at(DAY, 8), None)
        ).session_id
    with ims_db.session(user_id=p.alice) as s:
        s.crawl_sessions.update(crawl_id, status="completed", duration_seconds=5)
    with ims_db.session(user_id=p.alice) as s:
        issue_pk = add_issue(s, "AUD-1", "Old title")
    with ims_db.session(user_id=p.alice) as s:
        s.execute(
            "UPDATE ims.issues SET title = 'New title' WHERE issue_pk = %(pk)s", {"pk": issue_pk}
        )
    with ims_db.session(user_id=p.alice) as s:
        carol = s.users.create(NewUser(username="carol", email="carol@example.com")).user_id
    [bobs_crawl] = crawl(ims_db, p.bob, 1)

    with ims_db.session(user_id=p.alice) as s:
        rows = s.audit.find()
        assert [(r.table_name, r.action, r.record_id) for r in rows] == [
            ("users", "INSERT", str(carol)),
            ("issues", "UPDATE", str(issue_pk)),
            ("issues", "INSERT", str(issue_pk)),
            ("crawl_sessions", "UPDATE", str(crawl_id)),
            ("crawl_sessions", "INSERT", str(crawl_id)),
        ]
        assert {r.user_id for r in rows} == {p.alice}  # the actor; bob's rows are hidden
        assert [r.created_at for r in rows] == sorted((r.created_at for r in rows), reverse=True)
        assert all(r.ip_address is None or isinstance(r.ip_address, IPv4Address | IPv6Address) for r in rows)  # fmt: skip

        issue_update = rows[1]
        assert issue_update.old_values is not None and issue_update.new_values is not None
        assert (issue_update.old_values["title"], issue_update.new_values["title"]) == (
            "Old title",
            "New title",
        )
        assert "search_vector" not in issue_update.new_values
        assert rows[2].old_values is None and rows[0].new_values is not None
        assert rows[0].new_values["username"] == "carol"

        session_rows = s.audit.find(table_name="crawl_sessions", record_id=crawl_id)
        assert [r.action for r in session_rows] == ["UPDATE", "INSERT"]
        assert session_rows == s.audit.find(table_name="crawl_sessions", record_id=str(crawl_id))
        update = session_rows[0]
        assert update.old_values is not None and update.new_values is not None
        assert (update.old_values["status"], update.new_values["status"]) == (
            "running",
            "completed",
        )
        assert [r.action for r in s.audit.find(table_name="issues")] == ["UPDATE", "INSERT"]
        # record_id alone spans tables (keys are per table)
        assert s.audit.find(record_id=carol) == [rows[0]]
        assert s.audit.find(limit=2) == rows[:2]
        assert s.audit.find(table_name="crawl_sessions", record_id=bobs_crawl) == []
        assert s.audit.find(table_name="nothing") == []
    with ims_db.session(user_id=p.bob) as s:
        [bobs_row] = s.audit.find()
        assert (bobs_row.user_id, bobs_row.record_id) == (p.bob, str(bobs_crawl))
    with ims_db.session(user_id=p.admin) as s:
        everyone = s.audit.find(table_name="crawl_sessions")
        assert [(r.user_id, r.record_id) for r in everyone] == [
            (p.bob, str(bobs_crawl)),
            (p.alice, str(crawl_id)),
            (p.alice, str(crawl_id)),
        ]
    with ims_db.session() as s:
        assert s.audit.find() == []  # no context: no rows (also not the actor-less ones)


def test_the_runtime_login_can_neither_change_nor_delete_audit_rows(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.admin, 1)
    with ims_db.session(user_id=p.admin) as s:
        before = s.audit.find()
    assert len(before) == 1
    for sql in [
        "UPDATE ims.audit_log SET action = 'DELETE'",
        "UPDATE ims.audit_log SET user_id = NULL WHERE audit_id = %(id)s",
        "DELETE FROM ims.audit_log",
        "DELETE FROM ims.audit_log WHERE audit_id = %(id)s",
        "INSERT INTO ims.audit_log (action, table_name) VALUES ('INSERT', 'users')",
        "TRUNCATE ims.audit_log",
    ]:
        for user_id in (p.admin, p.alice, None):
            with pytest.raises(PermissionDenied), ims_db.session(user_id=user_id) as s:
                s.execute(sql, {"id": before[0].audit_id} if "%(id)s" in sql else None)
    with ims_db.session(user_id=p.admin) as s:
        assert s.audit.find() == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": -1},
        {"limit": True},
        {"limit": "10"},
        {"table_name": "users\x00"},
        {"table_name": 5},
        {"record_id": 1.5},
        {"record_id": True},
    ],
)
def test_audit_find_refuses_bad_arguments_before_any_sql(
    ims_db: Database, kwargs: dict[str, object]
) -> None:
    with ims_db.session(user_id=1) as s:
        with pytest.raises(InvalidInput):
            s.audit.find(**kwargs)  # type: ignore[arg-type]
        assert s.statements_sent == 0
