"""Every repository method of ``AsyncSession``, awaited, as the runtime login (RLS applies).

The sync twin's behaviour is tested in depth by the other files; here each async method
runs at least once against the real server and its result is checked, and
``test_every_public_repository_method_has_a_test`` fails when a repository gains a
public method that no test of this file calls (``s.<repository>.<method>(…)``).
"""

from __future__ import annotations

import ast
import inspect
import typing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from uuid import uuid4

import pytest

from ims_repo import (
    AsyncDatabase,
    AsyncSession,
    CrawlSession,
    Issue,
    NewAttachment,
    NewCrawlSession,
    NewIssue,
    NewIssueComment,
    NewIssueHistory,
    NewSearchQuery,
    NewSessionError,
    NewUser,
    NotFound,
    PageIssue,
    UpsertResult,
)
from ims_repo.core.staging import Batch
from tests.fix_async import acrawl
from tests.seed import People

DAY = date(2026, 11, 10)
ADVISORY_LOCKS_HELD = (
    "SELECT count(*) AS n FROM pg_catalog.pg_locks "
    "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def new_issue(s: AsyncSession, issue_id: str, **fields: object) -> Issue:
    return await s.issues.create(
        NewIssue(issue_id=issue_id, title=f"title of {issue_id}", product="OpenFrame", **fields)  # type: ignore[arg-type]
    )


# --- the guard ------------------------------------------------------------------------------


def repository_methods() -> set[str]:
    """``repository.method`` for every public method of every repository of AsyncSession."""
    names: set[str] = set()
    for attribute, value in vars(AsyncSession).items():
        if not isinstance(value, cached_property):
            continue
        repository = typing.get_type_hints(value.func)["return"]
        for name, _ in inspect.getmembers(repository, inspect.isfunction):
            if not name.startswith("_"):
                names.add(f"{attribute}.{name}")
    return names


def called_here() -> set[str]:
    """``repository.method`` for every call ``<x>.<repository>.<method>(…)`` in this file."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    calls: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
        ):
            calls.add(f"{node.func.value.attr}.{node.func.attr}")
    return calls


def test_every_public_repository_method_has_a_test() -> None:
    methods = repository_methods()
    assert len(methods) >= 77  # twelve repositories; the walk found them
    assert sorted(methods - called_here()) == []


# --- users ----------------------------------------------------------------------------------


async def test_users(ims_adb: AsyncDatabase, apeople: People) -> None:
    [session_id] = await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        carol = await s.users.create(NewUser(username="carol", email="carol@example.com"))
        assert await s.users.get(carol.user_id) == carol
        assert await s.users.get(999_999) is None
        assert await s.users.get_by_username("carol") == carol
        assert [u.username for u in await s.users.find(order_by=["-username"], limit=2)] == [
            "root.admin",
            "carol",
        ]
        assert [u.user_id for u in await s.users.find(username_like="a%")] == [apeople.alice]
        updated = await s.users.update(carol.user_id, department="QA", full_name="Carol C")
        assert (updated.department, updated.full_name) == ("QA", "Carol C")
        with_sessions = {
            w.user.username: [c.session_id for c in w.sessions]
            for w in await s.users.with_sessions()
        }
        # Users are shared; the sessions are alice's only (bob has none, carol none).
        assert with_sessions == {
            "alice": [session_id],
            "bob": [],
            "root.admin": [],
            "carol": [],
        }
        stats = await s.users.stats(apeople.alice)
        assert (stats.total_sessions, stats.completed_sessions, stats.total_issues) == (1, 0, 0)
        assert await s.users.delete(carol.user_id) is True
        assert await s.users.delete(carol.user_id) is False
        assert await s.users.get(carol.user_id) is None


# --- crawl sessions -------------------------------------------------------------------------


async def test_crawl_sessions(ims_adb: AsyncDatabase, apeople: People) -> None:
    [bobs] = await acrawl(ims_adb, apeople.bob, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        pk = (await new_issue(s, "CS-1")).issue_pk
        first = await s.crawl_sessions.create(
            NewCrawlSession(
                user_id=apeople.alice,
                product="OpenFrame",
                original_query="timeout",
                status="completed",
                duration_seconds=30,
                session_metadata={"nl_parsing": {"method": "rule_based"}, "tag": 1},
            )
        )
        second = await s.crawl_sessions.create(
            {
                "user_id": apeople.alice,
                "product": "Tibero",
                "original_query": "lock",
                "duration_seconds": 10,
            }
        )
        assert await s.crawl_sessions.get(first.session_id) == first
        assert await s.crawl_sessions.get(bobs) is None  # RLS hides bob's
        assert await s.crawl_sessions.get_by_uuid(first.session_uuid) == first
        assert await s.crawl_sessions.get_by_uuid(str(uuid4())) is None
        assert [c.session_id for c in await s.crawl_sessions.find(product="Tibero")] == [
            second.session_id
        ]
        assert [c.session_id for c in await s.crawl_sessions.list_for_user(apeople.alice)] == [
            first.session_id,
            second.session_id,
        ]
        assert await s.crawl_sessions.list_for_user(apeople.bob) == []
        stats = await s.crawl_sessions.duration_stats()
        assert (stats.min, stats.max, stats.avg) == (10, 30, Decimal(20))
        by_path = await s.crawl_sessions.find_by_metadata(
            path=["nl_parsing", "method"], equals="rule_based"
        )
        assert [c.session_id for c in by_path] == [first.session_id]
        assert [c.session_id for c in await s.crawl_sessions.with_metadata_key("tag")] == [
            first.session_id
        ]
        assert [c.session_id for c in await s.crawl_sessions.metadata_contains({"tag": 1})] == [
            first.session_id
        ]
        await s.session_issues.link(first.session_id, pk, crawl_order=1, crawl_duration_ms=12)
        [crawled] = await s.crawl_sessions.issues(first.session_id)
        assert (crawled.issue.issue_id, crawled.crawl_order, crawled.crawl_duration_ms) == (
            "CS-1",
            1,
            12,
        )
        assert await s.crawl_sessions.issues(bobs) == []
        changed = await s.crawl_sessions.update(second.session_id, status="failed")
        assert changed.status == "failed"
        with pytest.raises(NotFound):
            await s.crawl_sessions.update(bobs, status="failed")
        assert await s.crawl_sessions.delete(second.session_id) is True
        assert await s.crawl_sessions.delete(bobs) is False  # hidden: nothing deleted


# --- issues ---------------------------------------------------------------------------------


async def test_issues_reads_and_writes(ims_adb: AsyncDatabase, apeople: People) -> None:
    async with ims_adb.session(user_id=apeople.alice) as s:
        a = await new_issue(s, "IS-1", status="New", module="net")
        b = await new_issue(s, "IS-2", status="New")
        c = await s.issues.create(
            {"issue_id": "IS-3", "title": "connection timeout", "product": "Tibero"}
        )
        assert await s.issues.get(a.issue_pk) == a
        assert await s.issues.get(999_999) is None
        assert await s.issues.get_by_issue_id("IS-3") == c
        assert [i.issue_id for i in await s.issues.find(product="OpenFrame")] == ["IS-1", "IS-2"]
        page = await s.issues.find(order_by=["issue_id"], limit=2)
        assert [i.issue_id for i in await s.issues.find(order_by=["issue_id"], after=page[-1])] == [
            "IS-3"
        ]
        assert await s.issues.count() == 3
        assert await s.issues.count(status="New") == 2
        assert await s.issues.count_by_product() == {"OpenFrame": 2, "Tibero": 1}
        assert (await s.issues.update(c.issue_pk, priority="High")).priority == "High"
        assert await s.issues.set_status([a.issue_pk, c.issue_pk], "Closed") == 2
        assert await s.issues.set_status([], "Closed") == 0
        assert await s.issues.replace_status("New", "Open") == 1  # only IS-2 was still New
        assert (
            await s.issues.update_many(
                [
                    {"issue_pk": a.issue_pk, "assignee": "kim"},
                    {"issue_pk": b.issue_pk, "assignee": "lee", "severity": "minor"},
                ]
            )
            == 2
        )
        stored = {i.issue_id: i for i in await s.issues.find()}
        assert (stored["IS-1"].status, stored["IS-1"].assignee) == ("Closed", "kim")
        assert (stored["IS-2"].status, stored["IS-2"].severity) == ("Open", "minor")
        again = await s.issues.upsert(
            NewIssue(issue_id="IS-1", title="renamed", product="OpenFrame")
        )
        assert (again.issue_pk, again.title, again.crawl_count, again.module) == (
            a.issue_pk,
            "renamed",
            2,
            "net",  # left unset by the crawl: kept
        )
        await s.issues.lock_for_write(issue_ids=["IS-1", "IS-9"], issue_pks=[b.issue_pk])
        [held] = await s.execute(ADVISORY_LOCKS_HELD)
        assert held["n"] >= 2  # the coarse lock and the buckets: until the transaction ends
        await s.commit()
        assert await s.execute(ADVISORY_LOCKS_HELD) == [{"n": 0}]
        fresh = await s.issues.upsert({"issue_id": "IS-4", "title": "t", "product": "OpenFrame"})
        assert fresh.crawl_count == 1
        assert await s.issues.delete(fresh.issue_pk) is True
        assert await s.issues.delete(fresh.issue_pk) is False


async def test_issues_documents_crawls_and_bulk(ims_adb: AsyncDatabase, apeople: People) -> None:
    [bobs] = await acrawl(ims_adb, apeople.bob, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        pk = (await new_issue(s, "ID-1")).issue_pk
        await new_issue(s, "ID-2")
        await s.comments.create(pk, NewIssueComment(content="first", comment_order=1))
        await s.history.create(pk, NewIssueHistory(field_name="status", new_value="Open"))
        await s.attachments.create(NewAttachment(issue_pk=pk, filename="log.txt"))
        detail = await s.issues.detail("ID-1")
        assert detail is not None
        assert [c.content for c in detail.comments] == ["first"]
        assert [h.field_name for h in detail.history] == ["status"]
        assert [f.filename for f in detail.attachments] == ["log.txt"]
        assert await s.issues.detail("nothing") is None
        detailed = await s.issues.find_detailed(order_by=["issue_id"])
        assert [(d.issue_id, len(d.comments)) for d in detailed] == [("ID-1", 1), ("ID-2", 0)]
        [mine] = await acrawl_in(s, apeople.alice)
        await s.session_issues.link(mine, pk, crawl_order=3)
    async with ims_adb.session(user_id=apeople.bob) as s:
        await s.session_issues.link(bobs, pk)
    async with ims_adb.session(user_id=apeople.alice) as s:
        crawls = await s.issues.sessions(pk)
        assert [(c.session.session_id, c.crawl_order) for c in crawls] == [(mine, 3)]  # not bob's
        many = await s.issues.upsert_many(
            [NewIssue(issue_id=f"UM-{n}", title="t", product="OpenFrame") for n in range(5)],
            batch_size=2,
        )
        assert many == UpsertResult(inserted=5, updated=0, unchanged=0)
        items = [
            NewIssue(issue_id="UM-0", title="t", product="OpenFrame"),
            {"issue_id": "UM-9", "title": "u", "product": "P"},
        ]
        batch = await s.issues.upsert_batch(Batch(items, range(2)))
        assert batch == UpsertResult(inserted=1, updated=0, unchanged=1)
        page = [
            {"issue_id": "UM-0", "title": "t", "product": "OpenFrame", "comments": []},
            PageIssue(issue_id="PG-1", title="p", product="OpenFrame", history=[]),
        ]
        stored = await s.issues.store_page(mine, page, first_crawl_order=10)
        assert (stored.inserted, stored.unchanged, stored.linked) == (1, 1, 2)
    async with ims_adb.session(user_id=apeople.admin) as s:
        assert {c.session.session_id for c in await s.issues.sessions(pk)} == {mine, bobs}


async def acrawl_in(s: AsyncSession, user_id: int) -> list[int]:
    crawl = await s.crawl_sessions.create(
        NewCrawlSession(user_id=user_id, product="OpenFrame", original_query="q")
    )
    return [crawl.session_id]


# --- session issues -------------------------------------------------------------------------


async def test_session_issues(ims_adb: AsyncDatabase, apeople: People) -> None:
    [bobs] = await acrawl(ims_adb, apeople.bob, 1)
    [mine, other] = await acrawl(ims_adb, apeople.alice, 2)
    async with ims_adb.session(user_id=apeople.alice) as s:
        pks = [(await new_issue(s, f"SI-{n}")).issue_pk for n in range(3)]
        link = await s.session_issues.link(mine, pks[0], crawl_order=2, crawl_duration_ms=40)
        assert (link.user_id, link.crawl_order) == (apeople.alice, 2)
        assert await s.session_issues.get(mine, pks[0]) == link
        assert await s.session_issues.get(mine, pks[1]) is None
        assert (
            await s.session_issues.link_many(
                [(mine, pks[1], 1), {"session_id": other, "issue_pk": pks[2]}]
            )
            == 2
        )
        assert [x.issue_pk for x in await s.session_issues.for_session(mine)] == [pks[1], pks[0]]
        assert [
            (x.session_id, x.issue_pk) for x in await s.session_issues.find(issue_pk=pks[2])
        ] == [(other, pks[2])]
        with pytest.raises(NotFound):
            await s.session_issues.link(bobs, pks[0])  # bob's session: hidden
        assert await s.session_issues.for_session(bobs) == []
        assert await s.session_issues.unlink(mine, pks[0]) is True
        assert await s.session_issues.unlink(mine, pks[0]) is False


# --- comments, history, attachments ---------------------------------------------------------


async def test_comments(ims_adb: AsyncDatabase) -> None:
    async with ims_adb.session() as s:
        pk = (await new_issue(s, "CM-1")).issue_pk
        first = await s.comments.create(
            pk, NewIssueComment(content="one", author="kim", comment_order=2)
        )
        assert await s.comments.get(first.comment_id) == first
        assert await s.comments.get(999_999) is None
        assert (
            await s.comments.add_many(
                pk, [{"content": "zero", "comment_order": 1}, NewIssueComment(content="late")]
            )
            == 2
        )
        assert [c.content for c in await s.comments.for_issue(pk)] == ["zero", "one", "late"]
        assert [c.content for c in await s.comments.find(author="kim")] == ["one"]
        assert (await s.comments.update(first.comment_id, content="uno")).content == "uno"
        assert await s.comments.add_many(pk, []) == 0
        assert await s.comments.delete(first.comment_id) is True
        assert await s.comments.delete(first.comment_id) is False


async def test_history(ims_adb: AsyncDatabase) -> None:
    async with ims_adb.session() as s:
        pk = (await new_issue(s, "HI-1")).issue_pk
        change = await s.history.create(
            pk,
            NewIssueHistory(
                field_name="status", old_value="New", new_value="Open", changed_at=at(DAY, 9)
            ),
        )
        assert await s.history.get(change.history_id) == change
        assert await s.history.get(999_999) is None
        added = await s.history.add_many(
            pk,
            [
                {"field_name": "priority", "new_value": "High", "changed_at": at(DAY, 8)},
                NewIssueHistory(field_name="assignee", new_value="kim", changed_at=at(DAY, 10)),
            ],
        )
        assert added == 2
        assert [h.field_name for h in await s.history.for_issue(pk)] == [
            "priority",
            "status",
            "assignee",
        ]
        assert [h.history_id for h in await s.history.find(field_name="status")] == [
            change.history_id
        ]
        assert await s.history.delete(change.history_id) is True
        assert await s.history.delete(change.history_id) is False


async def test_attachments(ims_adb: AsyncDatabase) -> None:
    async with ims_adb.session() as s:
        pk = (await new_issue(s, "AT-1")).issue_pk
        file = await s.attachments.create(
            NewAttachment(issue_pk=pk, filename="dump.bin", file_type="bin", file_size=10)
        )
        other = await s.attachments.create({"issue_pk": pk, "filename": "log.txt"})
        assert await s.attachments.get(file.attachment_id) == file
        assert await s.attachments.get(999_999) is None
        assert [a.filename for a in await s.attachments.for_issue(pk)] == ["dump.bin", "log.txt"]
        assert [a.attachment_id for a in await s.attachments.find(file_type="bin")] == [
            file.attachment_id
        ]
        assert (await s.attachments.update(other.attachment_id, file_size=3)).file_size == 3
        assert await s.attachments.delete(other.attachment_id) is True
        assert await s.attachments.delete(other.attachment_id) is False


# --- the search log and crawl errors ---------------------------------------------------------


async def test_search_queries(ims_adb: AsyncDatabase, apeople: People) -> None:
    [mine] = await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session(user_id=apeople.bob) as s:
        bobs = await s.search_queries.log({"user_id": apeople.bob, "query_text": "bob's"})
    async with ims_adb.session(user_id=apeople.alice) as s:
        logged = await s.search_queries.log(
            NewSearchQuery(
                user_id=apeople.alice, session_id=mine, query_text="timeout", result_count=3
            )
        )
        await s.search_queries.log({"user_id": apeople.alice, "query_text": "lock"})
        assert await s.search_queries.get(logged.query_id) == logged
        assert await s.search_queries.get(bobs.query_id) is None
        assert [q.query_text for q in await s.search_queries.find(order_by=["query_text"])] == [
            "lock",
            "timeout",
        ]
        assert [q.query_id for q in await s.search_queries.find(has_session_id=True)] == [
            logged.query_id
        ]
        assert await s.search_queries.delete(bobs.query_id) is False
        assert await s.search_queries.delete(logged.query_id) is True


async def test_session_errors(ims_adb: AsyncDatabase, apeople: People) -> None:
    [mine] = await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        error = await s.session_errors.create(
            NewSessionError(
                session_id=mine,
                user_id=apeople.alice,
                error_type="Timeout",
                error_message="page took too long",
                context={"page": 3},
            )
        )
        await s.session_errors.create(
            {
                "session_id": mine,
                "user_id": apeople.alice,
                "error_type": "Parse",
                "error_message": "odd HTML",
                "severity": "warning",
            }
        )
        assert await s.session_errors.get(error.error_id) == error
        assert error.context == {"page": 3}
        assert [e.error_type for e in await s.session_errors.for_session(mine)] == [
            "Timeout",
            "Parse",
        ]
        assert [e.error_id for e in await s.session_errors.find(severity="error")] == [
            error.error_id
        ]
        assert await s.session_errors.delete_by_severity("warning") == 1
        assert await s.session_errors.delete(error.error_id) is True
        assert await s.session_errors.delete(error.error_id) is False
    async with ims_adb.session(user_id=apeople.bob) as s:
        assert await s.session_errors.for_session(mine) == []


# --- analytics, audit, search ---------------------------------------------------------------


async def test_analytics(ims_adb: AsyncDatabase, apeople: People) -> None:
    async with ims_adb.session(user_id=apeople.alice) as s:
        for status, duration in (("completed", 100), ("failed", 50)):
            await s.crawl_sessions.create(
                NewCrawlSession(
                    user_id=apeople.alice,
                    product="OpenFrame",
                    original_query="q",
                    status=status,  # type: ignore[arg-type]
                    started_at=at(DAY, 9),
                    completed_at=at(DAY, 10),
                    duration_seconds=duration,
                )
            )
    async with ims_adb.session(user_id=apeople.alice) as s:
        assert await s.analytics.daily(apeople.alice, DAY, DAY) == []  # nothing until refreshed
        await s.analytics.refresh(DAY)
        [day] = await s.analytics.daily(apeople.alice, DAY - timedelta(days=1), DAY)
        assert (day.stat_date, day.sessions_count, day.completed_sessions, day.failed_sessions) == (
            DAY,
            2,
            1,
            1,
        )
        assert day.total_duration_seconds == 150
        [month] = await s.analytics.monthly(apeople.alice, DAY, DAY)
        assert (month.month, month.sessions_count) == (DAY.replace(day=1), 2)
    async with ims_adb.session(user_id=apeople.bob) as s:
        assert await s.analytics.daily(apeople.alice, DAY, DAY) == []  # hidden from bob


async def test_audit(ims_adb: AsyncDatabase, apeople: People) -> None:
    [mine] = await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        await s.crawl_sessions.update(mine, status="running")
    async with ims_adb.session(user_id=apeople.alice) as s:
        rows = await s.audit.find(table_name="crawl_sessions", record_id=mine)
        assert [(r.action, r.user_id) for r in rows] == [
            ("UPDATE", apeople.alice),
            ("INSERT", apeople.alice),
        ]
        assert await s.audit.find(limit=1) == rows[:1]
    async with ims_adb.session() as s:
        assert await s.audit.find() == []  # no context: no rows


async def test_search(ims_adb: AsyncDatabase) -> None:
    async with ims_adb.session() as s:
        await new_issue(s, "SE-1", description="a timeout in the connection pool")
        await s.issues.create(
            {"issue_id": "SE-2", "title": "timeout on login", "product": "Tibero"}
        )
        await new_issue(s, "SE-3")
    async with ims_adb.session() as s:  # shared issues: no context needed
        hits = await s.search.issues("timeout")
        assert {h.issue_id for h in hits} == {"SE-1", "SE-2"}
        assert all(h.rank > 0 for h in hits)
        assert [h.issue_id for h in await s.search.issues("timeout", product="Tibero")] == ["SE-2"]
        assert await s.search.issues("") == []
        # the rank bounds of the three new issues (0011), then none left; hits the same
        assert await s.search.refresh_bounds() == 3
        assert await s.search.refresh_bounds(1) == 0
        assert {h.issue_id for h in await s.search.issues("timeout")} == {"SE-1", "SE-2"}


async def test_records_come_back_typed(ims_adb: AsyncDatabase, apeople: People) -> None:
    await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        [crawl] = await s.crawl_sessions.find()
        assert isinstance(crawl, CrawlSession)
        assert crawl.user_id == apeople.alice
