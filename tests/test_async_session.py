"""``AsyncDatabase`` and ``AsyncSession``: opening and closing, the fail-closed login,
transactions, the RLS context on pooled connections, raw SQL, the error classes, bulk
ingest, and what a checkout costs on the wire.

Every test connects as the runtime login (RLS applies), except where it checks that a
superuser login is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from ims_repo import (
    AsyncDatabase,
    AsyncSession,
    DatabaseUnavailable,
    Duplicate,
    ForeignKeyViolation,
    InvalidInput,
    NewCrawlSession,
    NewIssue,
    NewIssueComment,
    NewUser,
    NotFound,
    PermissionDenied,
    PoolExhausted,
    TransactionAborted,
    UnsafeLogin,
    UpsertResult,
)
from tests.fix_async import Wire, acrawl
from tests.seed import People

CONTEXT = "SELECT current_setting('ims.current_user_id', true) AS ctx"


async def visible_owners(s: AsyncSession) -> set[int]:
    rows = await s.execute("SELECT DISTINCT user_id FROM ims.crawl_sessions")
    return {row["user_id"] for row in rows}


def issue(n: int, **fields: Any) -> NewIssue:
    return NewIssue(issue_id=f"AS-{n:05d}", title=f"issue {n}", product="OpenFrame", **fields)


# --- opening, closing, the login ------------------------------------------------------------


async def test_open_close_and_async_with(ims_app_url: str) -> None:
    db = AsyncDatabase(ims_app_url, min_size=1, max_size=2)  # the constructor does no I/O
    await db.open()
    await db.open()  # opening an open database does nothing
    async with db.session() as s:
        assert await s.execute("SELECT current_user AS role") == [{"role": "ims_test_app"}]
    await db.close()
    async with AsyncDatabase(ims_app_url, max_size=2) as entered, entered.session(user_id=3) as s:
        assert s.user_id == 3
        assert await s.execute(CONTEXT) == [{"ctx": "3"}]
    lazy = AsyncDatabase(ims_app_url, max_size=1)  # never opened: the first session opens it
    try:
        async with lazy.session() as s:
            assert await s.users.find() == []
    finally:
        await lazy.close()


async def test_from_env_reads_ims_database_url(
    monkeypatch: pytest.MonkeyPatch, ims_app_url: str
) -> None:
    monkeypatch.setenv("IMS_DATABASE_URL", ims_app_url)
    async with AsyncDatabase.from_env(max_size=2) as db, db.session() as s:
        assert await s.execute("SELECT current_user AS role") == [{"role": "ims_test_app"}]
        assert db._pool.max_size == 2  # the options reach the pool


async def test_a_superuser_login_is_refused_unless_acting_as_the_runtime_role(
    ims_admin_url: str,
) -> None:
    refused = AsyncDatabase(ims_admin_url)
    with pytest.raises(UnsafeLogin, match="act_as='ims_app'"):
        await refused.open()
    with pytest.raises(UnsafeLogin, match="superuser"):
        async with AsyncDatabase(ims_admin_url):
            pass
    async with AsyncDatabase(ims_admin_url, act_as="ims_app") as db, db.session() as s:
        assert await s.execute("SELECT current_user AS role") == [{"role": "ims_app"}]
        assert await s.crawl_sessions.find() == []  # RLS applies: no context, no rows
    async with AsyncDatabase(ims_admin_url, bypass_rls=True) as db, db.session() as s:
        assert await s.execute("SELECT count(*) AS n FROM ims.users") == [{"n": 0}]


async def test_bad_urls_role_names_and_user_ids_are_refused_before_connecting(
    ims_admin_url: str, ims_adb: AsyncDatabase
) -> None:
    with pytest.raises(InvalidInput, match="not a valid database URL"):
        AsyncDatabase("host=localhost port")
    with pytest.raises(InvalidInput, match="plain role name"):
        AsyncDatabase(ims_admin_url, act_as="ims_app -c role=postgres")
    for bad in ("2", True, 2.0):
        with pytest.raises(InvalidInput, match="user_id"):
            async with ims_adb.session(user_id=bad):  # type: ignore[arg-type]
                pass


async def test_a_server_that_does_not_answer_is_database_unavailable() -> None:
    db = AsyncDatabase("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        await db.open()


async def test_an_exhausted_pool_raises_after_a_bounded_wait(ims_app_url: str) -> None:
    async with AsyncDatabase(ims_app_url, min_size=1, max_size=1, timeout=0.3) as db:
        async with db.session() as held:
            await held.users.find()
            with pytest.raises(PoolExhausted, match="all 1 connections are in use"):
                async with db.session():
                    pass
        async with db.session() as s:  # free again
            assert await s.users.find() == []


# --- transactions and the context -------------------------------------------------------


async def test_a_user_sees_only_their_rows_no_context_none_an_admin_all(
    ims_adb: AsyncDatabase, apeople: People
) -> None:
    await acrawl(ims_adb, apeople.alice, 2)
    await acrawl(ims_adb, apeople.bob, 3)
    async with ims_adb.session(user_id=apeople.alice) as s:
        assert await visible_owners(s) == {apeople.alice}
    async with ims_adb.session() as s:
        assert await s.crawl_sessions.find() == []
    async with ims_adb.session(user_id=apeople.admin) as s:
        assert await visible_owners(s) == {apeople.alice, apeople.bob}


async def test_leaving_the_block_commits_and_an_exception_rolls_back(
    ims_adb: AsyncDatabase,
) -> None:
    async with ims_adb.session() as s:
        await s.users.create(NewUser(username="kept", email="kept@example.com"))
    with pytest.raises(KeyError):
        async with ims_adb.session() as s:
            await s.users.create(NewUser(username="gone", email="gone@example.com"))
            raise KeyError("caller bug")
    async with ims_adb.session() as s:
        assert await s.users.get_by_username("kept") is not None
        assert await s.users.get_by_username("gone") is None


async def test_commit_and_rollback_end_the_transaction_and_the_context_holds(
    ims_adb: AsyncDatabase, apeople: People
) -> None:
    await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        await s.commit()  # nothing open yet: a no-op
        await s.rollback()
        await s.users.update(apeople.alice, department="QA")
        assert s.in_transaction
        await s.commit()
        assert not s.in_transaction
        assert await visible_owners(s) == {apeople.alice}  # the context holds
        await s.users.update(apeople.alice, department="R&D")
        await s.rollback()
        assert not s.in_transaction
        assert await visible_owners(s) == {apeople.alice}
        user = await s.users.get(apeople.alice)
        assert user is not None and user.department == "QA"


async def test_a_savepoint_lets_a_failed_statement_go_and_keeps_the_rest(
    ims_adb: AsyncDatabase,
) -> None:
    async with ims_adb.session() as s:
        await s.users.create(NewUser(username="first", email="first@example.com"))
        with pytest.raises(Duplicate):
            async with s.savepoint():
                await s.users.create(NewUser(username="dup", email="dup@example.com"))
                await s.users.create(NewUser(username="dup", email="dup2@example.com"))
        with pytest.raises(InvalidInput, match="division by zero"):
            async with s.savepoint():
                await s.execute("SELECT 1 / 0")
        await s.users.create(NewUser(username="second", email="second@example.com"))
    async with ims_adb.session() as s:
        names = [u.username for u in await s.users.find(order_by=["username"])]
    assert names == ["first", "second"]  # the savepoints' work undone, the rest committed


async def test_a_block_ending_after_a_swallowed_failure_says_nothing_was_committed(
    ims_adb: AsyncDatabase,
) -> None:
    with pytest.raises(TransactionAborted, match="nothing of it was committed"):
        async with ims_adb.session() as s:
            await s.users.create(NewUser(username="lost", email="lost@example.com"))
            with pytest.raises(InvalidInput):
                await s.execute("SELECT 1 / 0")
    async with ims_adb.session() as s:
        assert await s.users.get_by_username("lost") is None
        with pytest.raises(InvalidInput):
            await s.execute("SELECT 1 / 0")
        await s.rollback()  # after a failed statement, as documented
        assert await s.execute("SELECT 1 AS one") == [{"one": 1}]


async def test_set_user_changes_the_context_at_once_inside_and_outside_a_transaction(
    ims_adb: AsyncDatabase, apeople: People
) -> None:
    await acrawl(ims_adb, apeople.alice, 1)
    await acrawl(ims_adb, apeople.bob, 2)
    async with ims_adb.session() as s:
        assert await visible_owners(s) == set()
        await s.set_user(apeople.bob)  # outside a transaction
        assert s.user_id == apeople.bob
        assert await visible_owners(s) == {apeople.bob}
        await s.users.update(apeople.bob, department="Ops")  # opens a transaction
        await s.set_user(apeople.alice)  # inside it
        assert await visible_owners(s) == {apeople.alice}
        assert await s.execute(CONTEXT) == [{"ctx": str(apeople.alice)}]
        await s.set_user(None)
        assert await visible_owners(s) == set()
        with pytest.raises(InvalidInput, match="user_id"):
            await s.set_user("1")  # type: ignore[arg-type]


async def test_the_context_never_reaches_the_next_checkout_of_a_pooled_connection(
    ims_app_url: str, apeople: People
) -> None:
    async with AsyncDatabase(ims_app_url, min_size=1, max_size=1) as db:
        await acrawl(db, apeople.alice, 1)
        async with db.session(user_id=apeople.alice) as s:
            [pid] = await s.execute("SELECT pg_backend_pid() AS pid")
            # Raw SQL may set a session-level context: the next checkout must not see it.
            await s.execute(
                "SELECT set_config('ims.current_user_id', %(u)s, false)",
                {"u": str(apeople.alice)},
            )
        for ending in ("commit", "rollback", "raise"):
            with pytest.raises(KeyError) if ending == "raise" else contextlib.nullcontext():
                async with db.session(user_id=apeople.alice) as s:
                    await s.users.update(apeople.alice, department=ending)
                    if ending == "rollback":
                        await s.rollback()
                    elif ending == "raise":
                        raise KeyError(ending)
            async with db.session() as s:  # the same, only connection
                assert await s.execute("SELECT pg_backend_pid() AS pid") == [pid]
                assert await s.execute(CONTEXT) == [{"ctx": ""}]
                assert await s.crawl_sessions.find() == []


async def test_a_session_statement_timeout_is_transaction_local(ims_app_url: str) -> None:
    async with AsyncDatabase(ims_app_url, min_size=1, max_size=1) as db:
        async with db.session() as s:
            [default] = await s.execute("SHOW statement_timeout")
        async with db.session(statement_timeout=0.15) as s:
            assert await s.execute("SHOW statement_timeout") == [{"statement_timeout": "150ms"}]
        async with db.session() as s:
            assert await s.execute("SHOW statement_timeout") == [default]


# --- raw SQL and counts ------------------------------------------------------------------


async def test_execute_runs_raw_sql_with_parameters_and_statements_sent_counts_them(
    ims_adb: AsyncDatabase,
) -> None:
    async with ims_adb.session() as s:
        assert s.statements_sent == 0
        assert await s.execute("SELECT 50 % 7 AS r") == [{"r": 1}]  # no params: % as written
        assert await s.execute("SELECT %(a)s::int + 1 AS b", {"a": 41}) == [{"b": 42}]
        assert await s.execute("SET LOCAL work_mem = '8MB'") == []  # no rows: an empty list
        assert s.statements_sent == 3
        await s.users.find()
        await s.commit()  # BEGIN, the context and COMMIT are not the caller's statements
        assert s.statements_sent == 4
        with pytest.raises(InvalidInput, match="NUL"):
            await s.execute("SELECT %(t)s AS t", {"t": "a\x00b"})


# --- the error classes ------------------------------------------------------------------


async def test_the_same_error_classes_as_the_sync_api(
    ims_adb: AsyncDatabase, apeople: People
) -> None:
    async with ims_adb.session() as s:
        with pytest.raises(Duplicate, match="users_username_key"):
            async with s.savepoint():
                await s.users.create(NewUser(username="alice", email="other@example.com"))
        with pytest.raises(NotFound, match="no visible user_id=999999") as missing:
            async with s.savepoint():
                await s.users.update(999_999, department="QA")
        assert (missing.value.table, missing.value.key) == ("users", "999999")
        with pytest.raises(ForeignKeyViolation):
            async with s.savepoint():
                await s.comments.create(999_999, NewIssueComment(content="on no issue"))
    await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session(user_id=apeople.alice) as s:
        with pytest.raises(PermissionDenied):
            async with s.savepoint():
                await s.crawl_sessions.create(
                    NewCrawlSession(user_id=apeople.bob, product="P", original_query="q")
                )
        with pytest.raises(ForeignKeyViolation):  # crawl data of hers exists
            async with s.savepoint():
                await s.users.delete(apeople.alice)


async def test_invalid_input_is_refused_before_any_sql_reaches_the_server(wire: Wire) -> None:
    async with AsyncDatabase(wire.url, min_size=1, max_size=1) as db:
        async with db.session() as s:
            await s.users.find()  # the connection is made and warm
        wire.reset()
        async with db.session(user_id=1) as s:
            with pytest.raises(InvalidInput, match="email"):
                await s.users.create({"username": "u", "email": "not-an-email"})
            with pytest.raises(InvalidInput, match="issue_pk"):
                await s.issues.get("one")  # type: ignore[arg-type]
            with pytest.raises(InvalidInput, match="limit"):
                await s.users.find(limit=-1)
            with pytest.raises(InvalidInput, match="unknown filter 'password'"):
                await s.users.find(password="x")
            with pytest.raises(InvalidInput, match="severity"):
                await s.session_errors.delete_by_severity("fatal")  # type: ignore[arg-type]
            with pytest.raises(InvalidInput, match="batch_size"):
                await s.issues.upsert_many([issue(1)], batch_size=0)
            with pytest.raises(InvalidInput, match="comments\\[1\\]"):
                await s.comments.add_many(1, [{"content": "ok"}, {"author": "no content"}])
            assert s.statements_sent == 0
        assert wire.statements == 0 and wire.round_trips == 0


# --- what a checkout costs on the wire --------------------------------------------------


async def test_one_round_trip_per_read_only_checkout(
    wire: Wire, ims_adb: AsyncDatabase, apeople: People
) -> None:
    [session_id] = await acrawl(ims_adb, apeople.alice, 1)
    async with ims_adb.session() as s:
        pk = (await s.issues.create(issue(1))).issue_pk
    reads: dict[str, Callable[[AsyncSession], Awaitable[object]]] = {
        "users.get": lambda s: s.users.get(apeople.alice),
        "users.find": lambda s: s.users.find(limit=10),
        "issues.get": lambda s: s.issues.get(pk),
        "issues.count": lambda s: s.issues.count(product="OpenFrame"),
        "issues.detail": lambda s: s.issues.detail("AS-00001"),
        "issues.find_detailed": lambda s: s.issues.find_detailed(limit=5),
        "crawl_sessions.find": lambda s: s.crawl_sessions.find(),
        "crawl_sessions.issues": lambda s: s.crawl_sessions.issues(session_id),
        "search.issues": lambda s: s.search.issues("issue"),
        "comments.for_issue": lambda s: s.comments.for_issue(pk),
    }
    async with AsyncDatabase(wire.url, min_size=1, max_size=1) as db:
        async with db.session() as s:
            await s.users.find()  # the connection is made and warm
        trips: dict[str, tuple[int, int]] = {}
        for name, read in reads.items():
            wire.reset()
            async with db.session(user_id=apeople.alice) as s:
                await read(s)
            trips[name] = (wire.round_trips, wire.statements)
        # One round trip: the context and the statement pipelined; no BEGIN, no COMMIT.
        assert trips == dict.fromkeys(reads, (1, 2))
        wire.reset()
        async with db.session(user_id=apeople.alice) as s:
            await s.users.update(apeople.alice, department="QA")
        # A write: BEGIN, the context and the statement in one round trip, then COMMIT.
        assert (wire.round_trips, wire.statements) == (2, 4)
        for size in (1, 30):  # a crawl page: one pipeline, then COMMIT, whatever its size
            page = [
                {"issue_id": f"PG-{size}-{n}", "title": "t", "product": "P", "comments": []}
                for n in range(size)
            ]
            wire.reset()
            async with db.session(user_id=apeople.alice) as s:
                await s.issues.store_page(session_id, page, first_crawl_order=1)
            # BEGIN, the context, the lock, 4 for the stage, comments, links; COMMIT
            assert (wire.round_trips, wire.statements) == (2, 10)


# --- bulk ingest --------------------------------------------------------------------------


async def test_upsert_many_from_a_list_and_from_an_async_generator(ims_adb: AsyncDatabase) -> None:
    async with ims_adb.session() as s:
        first = await s.issues.upsert_many([issue(n) for n in range(30)], batch_size=7)
    assert first == UpsertResult(inserted=30, updated=0, unchanged=0)

    async def crawl() -> AsyncIterator[NewIssue]:
        for n in range(20, 50):
            await asyncio.sleep(0)  # a crawler awaiting its pages
            yield issue(n, status="Open" if n < 25 else None)

    async with ims_adb.session() as s:
        second = await s.issues.upsert_many(crawl(), batch_size=8)
    assert second == UpsertResult(inserted=20, updated=5, unchanged=5)
    async with ims_adb.session() as s:
        assert await s.issues.count() == 50
        stored = {i.issue_id: i for i in await s.issues.find()}
    assert stored["AS-00020"].crawl_count == 2 and stored["AS-00020"].status == "Open"
    assert stored["AS-00049"].crawl_count == 1


async def test_an_async_generator_may_commit_between_batches(ims_adb: AsyncDatabase) -> None:
    with pytest.raises(RuntimeError, match="crawler died"):
        async with ims_adb.session() as s:

            async def crawl(s: AsyncSession = s) -> AsyncIterator[NewIssue]:
                for n in range(25):
                    if n and n % 10 == 0:
                        await s.commit()  # the batches so far are kept
                    yield issue(n)
                raise RuntimeError("crawler died")

            await s.issues.upsert_many(crawl(), batch_size=10)
    async with ims_adb.session() as s:
        assert await s.issues.count() == 20


def _issues(count: int) -> Iterator[NewIssue]:
    return (issue(n, raw_data={"n": n}) for n in range(count))


async def test_upsert_issues_over_two_connections_from_a_list_and_an_async_iterable(
    ims_adb: AsyncDatabase,
) -> None:
    result = await ims_adb.upsert_issues(list(_issues(300)), connections=2, batch_size=40)
    assert result == UpsertResult(inserted=300, updated=0, unchanged=0)

    async def crawl() -> AsyncIterator[NewIssue]:
        for item in _issues(400):
            yield item

    again = await ims_adb.upsert_issues(crawl(), connections=2, batch_size=64)
    assert again == UpsertResult(inserted=100, updated=0, unchanged=300)
    async with ims_adb.session() as s:
        assert await s.issues.count() == 400
        counts = {i.issue_id: i.crawl_count for i in await s.issues.find()}
    assert sum(counts.values()) == 700  # every item counted one crawl, once


async def test_upsert_issues_refuses_a_bad_item_naming_its_position(
    ims_adb: AsyncDatabase,
) -> None:
    items: list[Any] = [*_issues(50), {"issue_id": "BAD", "title": None, "product": "P"}]
    with pytest.raises(InvalidInput, match=r"issues\[50\]"):
        await ims_adb.upsert_issues(items, connections=2, batch_size=10)
    with pytest.raises(InvalidInput, match="connections"):
        await ims_adb.upsert_issues([], connections=0)
    async with ims_adb.session() as s:  # the pool is whole: every connection came back
        assert await s.execute("SELECT 1 AS one") == [{"one": 1}]
    assert ims_adb._pool.get_stats()["pool_available"] == ims_adb._pool.get_stats()["pool_size"]


async def test_a_cancelled_upsert_issues_propagates_and_returns_its_connections(
    ims_app_url: str, ims_admin_url: str
) -> None:
    async with AsyncDatabase(ims_app_url, min_size=3, max_size=3) as db:

        async def endless() -> AsyncIterator[NewIssue]:
            n = 0
            while True:
                yield issue(n % 5000)
                n += 1
                if n % 500 == 0:
                    await asyncio.sleep(0)

        task = asyncio.create_task(db.upsert_issues(endless(), connections=2, batch_size=200))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.session() as a, db.session() as b, db.session() as c:  # all three
            for s in (a, b, c):
                assert await s.execute(CONTEXT) == [{"ctx": ""}]
    with psycopg.connect(ims_admin_url, autocommit=True) as admin:
        busy = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
        ).fetchone()
    assert busy == (0,)


async def test_a_task_cancelled_while_its_checkout_tests_a_connection_gives_it_back(
    ims_app_url: str, ims_admin_url: str
) -> None:
    """After a lost connection, the others opened before it are tested once at their next
    checkout (an empty query): a cancellation landing in that test must not take the
    connection out of the pool for good."""
    async with AsyncDatabase(ims_app_url, min_size=2, max_size=2, timeout=1) as db:
        async with db.session() as a, db.session() as b:  # both connections exist
            await a.users.find()
            await b.users.find()
        with pytest.raises(DatabaseUnavailable):
            async with db.session() as s:  # one dies: the other is now suspect
                await s.execute("SELECT pg_terminate_backend(pg_backend_pid())")

        entered: list[bool] = []

        async def cancelled_at_its_checkout() -> None:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # lands at the first suspension: the suspect connection's test
            async with db.session():
                entered.append(True)  # a good connection is not tested: no suspension

        # Both connections in the pool (the dead one's replacement is made in the
        # background): the pool hands them out in turn, so of two checkouts one meets
        # the suspect connection and one the good one, in either order.
        for _ in range(1000):
            if db._pool.get_stats().get("pool_available", 0) == 2:
                break
            await asyncio.sleep(0.01)
        for _ in range(2):
            with pytest.raises(asyncio.CancelledError):
                await asyncio.create_task(cancelled_at_its_checkout())
        assert entered == [True]  # the other checkout was cancelled in the suspect's test
        async with db.session() as a, db.session() as b:  # still both, at once
            assert await a.execute(CONTEXT) == await b.execute(CONTEXT) == [{"ctx": ""}]
