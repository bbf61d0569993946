"""The sample data set: fixed ids on a fresh database, idempotent loading, its contents
as the API returns them, and the ``ims_sample`` fixture seen from a user's test file."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from decimal import Decimal

import psycopg
import pytest

from ims_repo import Database, NewUser
from ims_repo.services import sample_data as sample
from ims_repo.services.local_server import PgServer
from ims_repo.services.sample_data import Sample, load

EVERY_KIND = {
    "users": 4,
    "sessions": 6,
    "issues": 12,
    "comments": 5,
    "history": 4,
    "attachments": 3,
    "links": 16,
    "searches": 6,
    "errors": 6,
}
NOTHING = dict.fromkeys(EVERY_KIND, 0)


def _table_counts(admin_url: str) -> dict[str, int]:
    """Rows per table, read as the superuser (bypassing RLS: every user's rows)."""
    tables = [
        "users",
        "crawl_sessions",
        "issues",
        "issue_comments",
        "issue_history",
        "attachments",
        "session_issues",
        "search_queries",
        "session_errors",
        "analytics_daily",
        "analytics_monthly",
        "audit_log",
    ]
    query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM ims.{t}" for t in tables)
    with psycopg.connect(admin_url) as conn:
        return {name: count for name, count in conn.execute(query).fetchall()}


def test_fresh_database_gets_the_fixed_ids(ims_db: Database, ims_admin_url: str) -> None:
    loaded = load(ims_db, owner_url=ims_admin_url)
    assert loaded.users == {"admin": 1, "yijae.shin": 2, "john.doe": 3, "minji.kim": 4}
    assert (loaded.admin, loaded.yijae, loaded.john, loaded.minji) == (1, 2, 3, 4)
    assert loaded.sessions == {
        "yijae-1": 1,
        "yijae-2": 2,
        "yijae-3": 3,
        "john-1": 4,
        "john-2": 5,
        "minji-1": 6,
    }
    assert loaded.issues == {f"SAMPLE-{n:03d}": n for n in range(1, 13)}
    assert loaded.created == EVERY_KIND
    assert loaded.notes == ()
    with ims_db.session() as s:
        roles = {user.username: user.role for user in s.users.find()}
        korean = s.users.get(4)
    assert roles == {
        "admin": "admin",
        "yijae.shin": "user",
        "john.doe": "user",
        "minji.kim": "user",
    }
    assert korean is not None and (korean.full_name, korean.department) == ("김민지", "품질보증팀")


def test_sample_001_with_its_children(ims_db: Database, ims_admin_url: str) -> None:
    loaded = load(ims_db, owner_url=ims_admin_url)
    with ims_db.session(user_id=loaded.admin) as s:
        detail = s.issues.detail("SAMPLE-001")
        crawls = s.issues.sessions(loaded.issues["SAMPLE-001"])
    assert detail is not None and detail.issue_pk == 1
    assert (detail.product, detail.status, detail.priority) == ("OpenFrame", "Open", "High")
    assert [c.author for c in detail.comments] == ["john.doe", "yijae.shin", "minji.kim"]
    assert detail.comments[2].content.startswith("QA 환경에서도")
    assert [(h.field_name, h.old_value, h.new_value) for h in detail.history] == [
        ("status", "New", "Open"),
        ("priority", "Medium", "High"),
        ("assignee", None, "john.doe"),
    ]
    source = {a.filename: a for a in sample.ISSUES[0].attachments}
    assert [a.filename for a in detail.attachments] == ["server.log", "thread-dump.txt"]
    for attachment in detail.attachments:
        content = source[attachment.filename].content
        assert attachment.checksum_sha256 == hashlib.sha256(content).hexdigest()
        assert attachment.file_size == len(content)
        assert attachment.session_id == loaded.sessions["yijae-1"]
    # Crawled by three sessions of two users, with its place in each crawl.
    assert [(c.session.session_id, c.crawl_order, c.crawl_duration_ms) for c in crawls] == [
        (1, 1, 850),
        (2, 3, 690),
        (6, 3, 700),
    ]
    assert {c.session.user_id for c in crawls} == {loaded.yijae, loaded.minji}


def test_each_user_sees_their_own_sample_rows(ims_db: Database, ims_admin_url: str) -> None:
    loaded = load(ims_db, owner_url=ims_admin_url)
    seen = {}
    for name, user_id in [*loaded.users.items(), ("nobody", None)]:
        with ims_db.session(user_id=user_id) as s:
            seen[name] = (
                [c.session_id for c in s.crawl_sessions.find()],
                len(s.search_queries.find()),
                sorted(e.severity for e in s.session_errors.find()),
            )
    assert seen == {
        "admin": (
            [1, 2, 3, 4, 5, 6],
            6,
            ["critical", "error", "error", "info", "warning", "warning"],
        ),
        "yijae.shin": ([1, 2, 3], 3, ["critical", "error", "error", "info", "warning"]),
        "john.doe": ([4, 5], 2, ["warning"]),
        "minji.kim": ([6], 1, []),
        "nobody": ([], 0, []),
    }


def test_contents_match_the_module_constants(ims_db: Database, ims_admin_url: str) -> None:
    loaded = load(ims_db, owner_url=ims_admin_url)
    with ims_db.session(user_id=loaded.admin) as s:
        crawls = {c.session_id: c for c in s.crawl_sessions.find()}
        links = s.session_issues.find(order_by=["session_id", "crawl_order"])
        issues = s.issues.find()
    for spec in sample.SESSIONS:
        stored = crawls[loaded.sessions[spec.key]]
        assert stored.session_uuid == spec.session_uuid == loaded.session_uuids[spec.key]
        assert stored.user_id == loaded.users[spec.owner]
        assert (stored.status, stored.started_at, stored.duration_seconds) == (
            spec.status,
            spec.started_at,
            spec.duration_seconds,
        )
        assert stored.total_issues == len(spec.crawled)
        assert stored.session_metadata == spec.metadata
    assert {c.session_metadata["nl_parsing"]["method"] for c in crawls.values()} == {  # type: ignore[index]
        "rule_based",
        "llm",
    }
    by_session: dict[int, list[tuple[int | None, int, int | None]]] = {}
    for link in links:
        by_session.setdefault(link.session_id, []).append(
            (link.crawl_order, link.issue_pk, link.crawl_duration_ms)
        )
    for spec in sample.SESSIONS:
        expected = [
            (order, loaded.issues[issue_id], ms)
            for order, (issue_id, ms) in enumerate(spec.crawled, start=1)
        ]
        assert by_session[loaded.sessions[spec.key]] == expected
    assert [(i.issue_id, i.title, i.crawl_count) for i in issues] == [
        (spec.issue.issue_id, spec.issue.title, 1) for spec in sample.ISSUES
    ]
    assert sum(1 for i in issues if any("\uac00" <= ch <= "\ud7a3" for ch in i.title)) == 4


def test_analytics_are_refreshed_for_the_sample_days(ims_db: Database, ims_admin_url: str) -> None:
    loaded = load(ims_db, owner_url=ims_admin_url)
    with ims_db.session(user_id=loaded.yijae) as s:
        daily = s.analytics.daily(loaded.yijae, date(2026, 11, 1), date(2026, 11, 30))
        monthly = s.analytics.monthly(loaded.yijae, date(2026, 11, 1), date(2026, 11, 1))
    figures = [
        (
            d.stat_date.day,
            d.sessions_count,
            d.completed_sessions,
            d.failed_sessions,
            d.issues_crawled,
            d.errors_count,
            d.total_duration_seconds,
            d.avg_duration_seconds,
        )
        for d in daily
    ]
    assert figures == [
        (2, 1, 1, 0, 5, 2, 120, Decimal("120.00")),
        (3, 2, 1, 1, 4, 3, 345, Decimal("172.50")),
    ]
    [month] = monthly
    assert (month.sessions_count, month.issues_crawled, month.unique_issues) == (3, 9, 7)


def test_korean_search_finds_the_korean_issues(ims_db: Database, ims_admin_url: str) -> None:
    load(ims_db, owner_url=ims_admin_url)
    with ims_db.session() as s:
        hits = [hit.issue_id for hit in s.search.issues("시간")]
    # SAMPLE-001 by its description's "시간이" (the word with its particle, migration 0009)
    assert sorted(hits) == ["SAMPLE-001", "SAMPLE-003", "SAMPLE-006"]


def test_loading_twice_creates_nothing_and_returns_the_same_ids(
    ims_db: Database, ims_admin_url: str
) -> None:
    first = load(ims_db, owner_url=ims_admin_url)
    before = _table_counts(ims_admin_url)
    again = load(ims_db, owner_url=ims_admin_url)
    assert again.created == NOTHING
    assert (again.users, again.sessions, again.issues) == (
        first.users,
        first.sessions,
        first.issues,
    )
    assert _table_counts(ims_admin_url) == before


def test_a_session_target_runs_in_the_callers_transaction(ims_db: Database) -> None:
    with ims_db.session(user_id=None) as s:
        loaded = load(s)  # no owner URL: no commit inside, nobody made an admin
        assert s.user_id is None  # the context is given back
        assert s.users.get_by_username("admin") is not None
        s.rollback()
        assert s.users.get_by_username("admin") is None  # it was all one transaction
    assert loaded.yijae == 2
    with ims_db.session(user_id=None) as s:
        again = load(s)
        assert s.users.get_by_username("admin").role == "user"  # type: ignore[union-attr]
    # The rolled-back first load used up identity values: ids move on, and a note says so.
    assert again.yijae == 6
    assert again.notes and "yijae.shin is 6, not 2" in again.notes[0]


def test_other_users_first_move_the_ids_and_a_note_says_so(
    ims_db: Database, ims_admin_url: str
) -> None:
    with ims_db.session() as s:
        s.users.create(NewUser(username="alice", email="alice@example.com"))
    loaded = load(ims_db, owner_url=ims_admin_url)
    assert loaded.users == {"admin": 2, "yijae.shin": 3, "john.doe": 4, "minji.kim": 5}
    assert loaded.notes == (
        "this database already had other users, so the sample users got the next free ids "
        "(yijae.shin is 3, not 2)",
    )


# --- the ims_sample fixture, from a user's test file ------------------------------------

SEEDED = """
from ims_repo import NewIssue


def test_handles(ims_sample):
    assert ims_sample.yijae == 2
    assert ims_sample.issues["SAMPLE-001"] == 1
    assert ims_sample.sessions["yijae-1"] == 1


def test_data_is_there_under_rls(ims_sample, ims_session):
    with ims_session(user_id=ims_sample.yijae) as s:
        assert len(s.crawl_sessions.find()) == 3
        detail = s.issues.detail("SAMPLE-001")
        assert (len(detail.comments), len(detail.history), len(detail.attachments)) == (3, 3, 2)
    with ims_session(user_id=ims_sample.admin) as s:
        assert len(s.crawl_sessions.find()) == 6


def test_writes_stay_in_this_test(ims_sample, ims_session):
    with ims_session(user_id=ims_sample.admin) as s:
        s.issues.create(NewIssue(issue_id="LOCAL-1", title="only here", product="OpenFrame"))
        assert s.issues.count() == 13


def test_next_test_starts_from_the_sample_again(ims_sample, ims_session):
    with ims_session() as s:
        assert s.issues.count() == 12
        assert s.issues.get_by_issue_id("LOCAL-1") is None


def test_plain_tests_stay_empty(ims_session):
    with ims_session() as s:
        assert s.issues.count() == 0


def test_the_docstring_example(ims_sample, ims_session):
    with ims_session(user_id=ims_sample.john) as s:
        assert [c.session_id for c in s.crawl_sessions.find()] == [
            ims_sample.sessions["john-1"], ims_sample.sessions["john-2"]
        ]
    with ims_session(user_id=ims_sample.yijae) as s:
        assert s.issues.detail("SAMPLE-001").comments  # shared: seen by all


def test_requested_late_it_loads_into_the_test_database(request, ims_db):
    seeded = request.getfixturevalue("ims_sample")
    assert seeded.yijae == 2
    with ims_db.session(user_id=seeded.admin) as s:
        assert len(s.crawl_sessions.find()) == 6
"""


def test_ims_sample_fixture_from_a_user_test_file(
    pytester: pytest.Pytester, ims_server: PgServer
) -> None:
    def seeded_templates() -> set[str]:
        """This process's seeded templates (this test session may have its own)."""
        with psycopg.connect(ims_server.url()) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [f"ims_sample_{os.getpid()}_%"],
            ).fetchall()
        return {name for (name,) in rows}

    before = seeded_templates()
    pytester.makepyfile(test_user=SEEDED)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}")
    result.assert_outcomes(passed=7)
    assert seeded_templates() == before, "the seeded template was left behind"


def test_sample_is_a_frozen_record_of_ids() -> None:
    loaded = Sample(users={"admin": 1}, sessions={}, issues={}, created={})
    with pytest.raises(AttributeError):
        loaded.users = {}  # type: ignore[misc]
    assert len(sample.USERS) == 4 and sample.USERS[1].username == "yijae.shin"
    assert len({crawl.session_uuid for crawl in sample.SESSIONS}) == 6
