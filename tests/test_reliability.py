"""Reliability under load and faults (issue 6), each test reporting its figure.

- No RLS context leak over 10,000 pooled checkouts from 8 threads on a 3-connection pool,
  with commits, rollbacks, exceptions, failed statements, context switches, raw SQL that
  sets a session-level context and connections that die under the session.
- A server restart in the middle of a 10⁵-issue ``upsert_many``: one clear error, every
  committed batch intact, nothing half-written, and the same ``Database`` serves the next
  checkout (a private server: the shared one is never restarted).
- Concurrent crawlers of overlapping issue sets in every transaction shape, with parallel
  ingests: no deadlock counted by the server, no ``TransactionConflict``, no duplicate,
  exact ``crawl_count`` (issue 11: the lock order of ``repositories/issues.py``).
- Statement timeouts (per database and per session) and an exhausted pool raise clear
  errors after a bounded wait and leave everything usable.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ims_repo import Database, InvalidInput, NewCrawlSession, NewIssue, NewUser, Session
from ims_repo.errors import (
    DatabaseUnavailable,
    PoolExhausted,
    StatementTimeout,
    TransactionConflict,
)
from tests.conftest import PrivateServer, ReportFigure
from tests.seed import people, server_deadlocks

# --- 1. no context leak under load ----------------------------------------------------------

# Who owns the visible rows of the user-owned tables, and the context, in one statement.
SEEN = """
SELECT ims.current_user_id() AS ctx,
       (
           SELECT coalesce(jsonb_object_agg(o.user_id::text, o.n), '{}'::jsonb)
           FROM (
               SELECT owned.user_id, count(*) AS n
               FROM (
                   SELECT user_id FROM ims.crawl_sessions
                   UNION ALL
                   SELECT user_id FROM ims.session_issues
                   UNION ALL
                   SELECT user_id FROM ims.search_queries
                   UNION ALL
                   SELECT user_id FROM ims.session_errors
               ) AS owned
               GROUP BY owned.user_id
           ) AS o
       ) AS seen
"""

THREADS = 8
CHECKOUTS_PER_THREAD = 1250
ACTIONS = {  # what a checkout does around its first look, and how often
    "look again": 30,
    "commit": 12,
    "rollback": 12,
    "switch user": 10,
    "failed statement in a savepoint": 8,
    "failed statement": 8,
    "exception": 8,
    "session-level context": 8,
    "repository read": 10,
    "repository read first": 10,
    "connection dies": 1,
}


class CallerBug(Exception):
    """An exception raised by the caller's own code inside a session block."""


def own_rows(db: Database, user_id: int, sessions: int, issue_pk: int) -> int:
    """``sessions`` crawl sessions of the user, each with a link, a search and an error;
    how many user-owned rows that makes."""
    with db.session(user_id=user_id) as s:
        for n in range(sessions):
            crawl = s.crawl_sessions.create(
                NewCrawlSession(user_id=user_id, product="OpenFrame", original_query=f"q{n}")
            )
            s.session_issues.link(crawl.session_id, issue_pk, crawl_order=n)
            s.search_queries.log(
                {"user_id": user_id, "session_id": crawl.session_id, "query_text": "q"}
            )
            s.session_errors.create(
                {
                    "session_id": crawl.session_id,
                    "user_id": user_id,
                    "error_type": "E",
                    "error_message": "m",
                }
            )
    return 4 * sessions


@pytest.mark.slow
def test_no_context_leaks_over_ten_thousand_checkouts_from_eight_threads(
    ims_db: Database, ims_admin_url: str, ims_app_url: str, report_figure: ReportFigure
) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session() as s:
        carol = s.users.create(NewUser(username="carol", email="carol@example.com")).user_id
        issue_pk = s.issues.create(
            NewIssue(issue_id="LEAK-1", title="t", product="OpenFrame")
        ).issue_pk
    owned = {
        p.alice: own_rows(ims_db, p.alice, 2, issue_pk),
        p.bob: own_rows(ims_db, p.bob, 3, issue_pk),
        carol: own_rows(ims_db, carol, 1, issue_pk),
    }
    users: list[int | None] = [None, p.alice, p.bob, carol, p.admin]
    names, weights = list(ACTIONS), list(ACTIONS.values())
    totals: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def look(s: Session, user: int | None, tally: Counter[str]) -> None:
        """One look at every visible user-owned row, scored against what ``user`` may see."""
        [row] = s.execute(SEEN)
        seen = {int(owner): n for owner, n in row["seen"].items()}
        tally["looks"] += 1
        tally["wrong context"] += row["ctx"] != user
        if user is None:
            tally["rows seen without context"] += sum(seen.values())
        elif user == p.admin:
            tally["admin saw a different set"] += seen != owned
        else:
            tally["rows of another user seen"] += sum(n for o, n in seen.items() if o != user)
            tally["own rows missing"] += seen.get(user, 0) != owned[user]

    def read(s: Session, user: int | None, tally: Counter[str]) -> None:
        """A repository read, scored like a look (``find`` adds no user filter: RLS does)."""
        found = s.crawl_sessions.find()
        if user is None:
            tally["rows seen without context"] += len(found)
        elif user != p.admin:
            tally["rows of another user seen"] += sum(c.user_id != user for c in found)

    def worker(number: int) -> None:
        rng = random.Random(number)
        tally: Counter[str] = Counter()
        try:
            for _ in range(CHECKOUTS_PER_THREAD):
                user = rng.choice(users)
                action = rng.choices(names, weights)[0]
                tally["checkouts"] += 1
                try:
                    with db.session(user_id=user) as s:
                        if action == "repository read first":
                            # A lone read-only named statement opens the checkout: it
                            # runs without BEGIN, in one implicit transaction with the
                            # context (core/transaction.py).
                            read(s, user, tally)
                        look(s, user, tally)
                        if action == "look again":
                            look(s, user, tally)
                        elif action == "commit":
                            s.commit()
                            look(s, user, tally)
                        elif action == "rollback":
                            s.rollback()
                            look(s, user, tally)
                        elif action == "switch user":
                            user = rng.choice(users)
                            s.set_user(user)
                            look(s, user, tally)
                        elif action == "failed statement in a savepoint":
                            with pytest.raises(InvalidInput), s.savepoint():
                                s.execute("SELECT 1 / 0")
                            look(s, user, tally)
                        elif action == "failed statement":
                            s.execute("SELECT 1 / 0")
                        elif action == "exception":
                            raise CallerBug
                        elif action == "session-level context":
                            # Raw SQL may set the context for the whole connection: the
                            # caller is trusted, but the next checkout must not inherit it.
                            s.execute(
                                "SELECT set_config('ims.current_user_id', %(u)s, false)",
                                {"u": str(rng.choice([p.alice, p.bob, carol]))},
                            )
                        elif action == "repository read":
                            read(s, user, tally)
                        elif action == "connection dies":
                            s.execute("SELECT pg_terminate_backend(pg_backend_pid())")
                except (CallerBug, InvalidInput) as error:
                    tally[type(error).__name__] += 1
                except DatabaseUnavailable:
                    tally["connections lost"] += 1
        except BaseException as error:  # pragma: no cover - reported below
            unexpected.append(error)
        with lock:
            totals.update(tally)

    with Database(ims_app_url, min_size=3, max_size=3) as db:
        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started

    assert unexpected == []
    report_figure("context leak: pooled checkouts (8 threads, pool of 3)", totals["checkouts"])
    report_figure("context leak: looks at every user-owned row", totals["looks"])
    report_figure("context leak: rows of another user seen", totals["rows of another user seen"])
    report_figure("context leak: rows seen without context", totals["rows seen without context"])
    report_figure("context leak: checkouts with a wrong context", totals["wrong context"])
    report_figure("context leak: connections killed under a session", totals["connections lost"])
    report_figure("context leak: checkouts per second", round(totals["checkouts"] / elapsed))
    assert totals["checkouts"] == THREADS * CHECKOUTS_PER_THREAD >= 10_000
    assert totals["looks"] > totals["checkouts"]
    assert totals["rows of another user seen"] == 0
    assert totals["rows seen without context"] == 0
    assert totals["wrong context"] == 0
    assert totals["own rows missing"] == 0
    assert totals["admin saw a different set"] == 0
    # every kind of ending happened, many times
    assert totals["CallerBug"] > 500 and totals["InvalidInput"] > 500
    assert totals["connections lost"] > 30


# --- 3. a server restart in the middle of a bulk ingest --------------------------------------


def crawled(n: int) -> NewIssue:
    return NewIssue(
        issue_id=f"IMS-{n:06d}",
        title=f"issue {n}",
        product="OpenFrame",
        status="Open",
        raw_data={"n": n},
    )


def stored_issues(admin_url: str) -> dict[str, tuple[str, Any, int]]:
    with psycopg.connect(admin_url) as conn:
        return {
            issue_id: (title, raw_data, crawl_count)
            for issue_id, title, raw_data, crawl_count in conn.execute(
                "SELECT issue_id, title, raw_data, crawl_count FROM ims.issues"
            )
        }


def expected_issues(count: int) -> dict[str, tuple[str, Any, int]]:
    return {f"IMS-{n:06d}": (f"issue {n}", {"n": n}, 1) for n in range(count)}


@pytest.mark.slow
def test_a_server_restart_mid_ingest_fails_one_batch_and_the_pool_serves_the_next_checkout(
    private_server: PrivateServer, report_figure: ReportFigure
) -> None:
    admin_url, app_url = private_server.new_database()
    total, size = 100_000, 5_000
    committed: list[float] = []  # when each batch was committed, by the generator
    failure: list[BaseException] = []

    def issues(s: Session, start: int) -> Iterator[NewIssue]:
        """The crawler's stream, committing each batch as the next one starts."""
        for n in range(start, total):
            if n > start and (n - start) % size == 0:
                s.commit()
                committed.append(time.perf_counter())
            yield crawled(n)

    def ingest(db: Database) -> None:
        try:
            with db.session() as s:
                s.issues.upsert_many(issues(s, 0), batch_size=size)
        except BaseException as error:
            failure.append(error)

    with Database(app_url, min_size=2, max_size=2) as db:
        thread = threading.Thread(target=ingest, args=(db,))
        thread.start()
        while len(committed) < 3 and thread.is_alive():
            time.sleep(0.005)
        # Into the fourth batch's SQL: past its validation, into its COPY or its upsert.
        batch_time = (committed[2] - committed[0]) / 2
        time.sleep(0.6 * batch_time)
        private_server.restart()
        thread.join()

        # The batch in flight failed, clearly.
        assert len(failure) == 1, "the restart did not interrupt the ingest"
        [error] = failure
        assert isinstance(error, DatabaseUnavailable), repr(error)
        assert "lost the connection" in str(error) and "[issues." in str(error)
        in_flight = str(error).rsplit("[", 1)[-1].split(" ")[0]

        # Every committed batch is intact; the one in flight left nothing behind.
        stored = stored_issues(admin_url)
        assert len(stored) % size == 0 and len(stored) >= 3 * size
        assert stored == expected_issues(len(stored))

        # The same Database serves the next checkout: no rebuild, no retry by the caller.
        started = time.perf_counter()
        with db.session() as s:
            assert s.issues.count() == len(stored)
        first_checkout = time.perf_counter() - started

        # The crawler resumes where the database says it stopped.
        with db.session() as s:
            s.issues.upsert_many(issues(s, len(stored)), batch_size=size)
        with db.session() as s:
            assert s.issues.count() == total

    assert stored_issues(admin_url) == expected_issues(total)  # each issue upserted once
    report_figure("restart mid-ingest: issues streamed", total)
    report_figure("restart mid-ingest: rows committed before the restart", len(stored))
    report_figure("restart mid-ingest: half-written batches", len(stored) % size)
    report_figure("restart mid-ingest: errors raised (DatabaseUnavailable)", len(failure))
    report_figure("restart mid-ingest: statement in flight", in_flight)
    report_figure("restart mid-ingest: first checkout after it (s)", f"{first_checkout:.2f}")


def test_connections_killed_under_a_pool_fail_one_session_and_the_next_checkout_works(
    ims_app_url: str, ims_admin_url: str, report_figure: ReportFigure
) -> None:
    with Database(ims_app_url, min_size=2, max_size=2) as db:
        with db.session() as a, db.session() as b:  # both connections exist and are idle after
            assert a.users.find() == b.users.find() == []
        with psycopg.connect(ims_admin_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert killed == (2,)
        with (
            pytest.raises(DatabaseUnavailable, match=r"lost the connection.*users\.find"),
            db.session() as s,
        ):
            s.users.find()
        failed_after_loss = 1
        for _ in range(3):  # the other, equally dead connection is never handed out
            with db.session() as s:
                assert s.users.find() == []
    report_figure(
        "killed connections: sessions failed before the pool recovered", failed_after_loss
    )


def test_a_block_that_swallows_a_lost_connection_does_not_look_committed(
    ims_app_url: str, ims_admin_url: str
) -> None:
    with Database(ims_app_url, min_size=1, max_size=1) as db:
        with pytest.raises(DatabaseUnavailable, match="not committed"), db.session() as s:
            s.users.create(NewUser(username="lost", email="lost@example.com"))
            with psycopg.connect(ims_admin_url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            with contextlib.suppress(DatabaseUnavailable):  # a careless caller
                s.users.find()
        with db.session() as s:
            assert s.users.get_by_username("lost") is None


# --- 4. concurrent re-crawls -------------------------------------------------------------------


SHAPES = ("one batch", "a commit per call", "a commit per batch from the generator", "many batches")


def _crawl(s: Session, items: list[NewIssue], shape: str) -> None:
    """One crawl of ``items`` in one of the documented transaction shapes."""
    if shape == "one batch":
        s.issues.upsert_many(items, batch_size=len(items))
    elif shape == "a commit per call":
        for start in range(0, len(items), 100):
            s.issues.upsert_many(items[start : start + 100], batch_size=100)
            s.commit()
    elif shape == "a commit per batch from the generator":

        def committing() -> Iterator[NewIssue]:
            for index, item in enumerate(items):
                if index and index % 100 == 0:
                    s.commit()
                yield item

        s.issues.upsert_many(committing(), batch_size=100)
    else:  # the README's way to stream a crawl in one transaction
        s.issues.upsert_many(iter(items), batch_size=100)


@pytest.mark.slow
def test_concurrent_crawlers_of_every_shape_and_parallel_ingests_never_deadlock(
    ims_app_url: str, ims_admin_url: str, report_figure: ReportFigure
) -> None:
    """4 crawlers re-crawl overlapping sets in shuffled orders for 12 rounds, each round in
    one of the four transaction shapes (all four run at once), while two
    ``Database.upsert_issues(connections=2)`` ingest overlapping sets too. The server's own
    deadlock counter must not move, no ``TransactionConflict`` may reach a caller, and every
    ``crawl_count`` equals the upserts that were made of its issue."""
    crawlers, rounds, per_crawler, stride = 4, 12, 300, 100
    ingests, per_ingest = 2, 400
    sets = [range(k * stride, k * stride + per_crawler) for k in range(crawlers)]
    ingest_sets = [range(50 + j * 150, 50 + j * 150 + per_ingest) for j in range(ingests)]
    upserts: Counter[str] = Counter()
    conflicts: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(crawlers + ingests)
    deadlocks_before = server_deadlocks(ims_admin_url)

    def items_of(numbers: list[int], title: str) -> list[NewIssue]:
        return [NewIssue(issue_id=f"RC-{n:05d}", title=title, product="OpenFrame") for n in numbers]

    def crawler(k: int) -> None:
        rng = random.Random(k)
        try:
            start.wait(timeout=30)
            for round_ in range(rounds):
                numbers = list(sets[k])
                rng.shuffle(numbers)
                items = items_of(numbers, f"crawler {k} round {round_}")
                shape = SHAPES[(round_ + k) % len(SHAPES)]
                try:
                    with crawl_db.session() as s:
                        _crawl(s, items, shape)
                except TransactionConflict:
                    with lock:
                        conflicts[shape] += 1
                    continue
                with lock:
                    upserts.update(item.issue_id for item in items)
        except BaseException as error:  # pragma: no cover - reported below
            unexpected.append(error)

    def ingest(j: int) -> None:
        rng = random.Random(100 + j)
        try:
            start.wait(timeout=30)
            for round_ in range(rounds // 2):
                numbers = list(ingest_sets[j])
                rng.shuffle(numbers)
                items = items_of(numbers, f"ingest {j} round {round_}")
                try:
                    ingest_db.upsert_issues(items, connections=2, batch_size=100)
                except TransactionConflict:
                    with lock:
                        conflicts["upsert_issues"] += 1
                    continue
                with lock:
                    upserts.update(item.issue_id for item in items)
        except BaseException as error:  # pragma: no cover - reported below
            unexpected.append(error)

    with (
        Database(ims_app_url, min_size=crawlers, max_size=crawlers) as crawl_db,
        Database(ims_app_url, min_size=2 * ingests, max_size=2 * ingests) as ingest_db,
    ):
        threads = [threading.Thread(target=crawler, args=(k,)) for k in range(crawlers)]
        threads += [threading.Thread(target=ingest, args=(j,)) for j in range(ingests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    deadlocks = server_deadlocks(ims_admin_url) - deadlocks_before

    assert unexpected == []
    with psycopg.connect(ims_admin_url) as conn:
        rows = conn.execute("SELECT issue_id, crawl_count FROM ims.issues_with_crawls").fetchall()
    counts: dict[str, int] = dict(rows)
    duplicates = len(rows) - len(counts)
    wrong_counts = sum(counts.get(issue_id, 0) != n for issue_id, n in upserts.items())
    report_figure(
        "concurrent writers: upserts (4 crawlers x 12 rounds, 2 ingests)", upserts.total()
    )
    report_figure("concurrent writers: deadlocks the server detected", deadlocks)
    report_figure("concurrent writers: TransactionConflict reaching callers", conflicts.total())
    report_figure("concurrent writers: duplicate issues", duplicates)
    report_figure("concurrent writers: issues whose crawl_count != upserts", wrong_counts)
    assert deadlocks == 0
    assert conflicts == Counter()
    assert duplicates == 0
    assert set(counts) == set(upserts) and len(counts) == (crawlers - 1) * stride + per_crawler
    assert wrong_counts == 0
    assert max(upserts.values()) >= 3 * rounds  # some issues are in three crawlers' sets


def test_crossing_multi_batch_transactions_serialize_instead_of_deadlocking(
    ims_app_url: str, ims_admin_url: str, report_figure: ReportFigure
) -> None:
    """Two transactions that stream X then Y and Y then X, one batch each (the shape that
    deadlocked before the lock order): the second waits for the first at its first batch,
    holding nothing, and both commit; the server detects no deadlock."""
    deadlocks_before = server_deadlocks(ims_admin_url)
    first_batch_written = threading.Event()
    outcomes: dict[str, str] = {}

    def crawl(name: str, first: str, second: str, wait: bool) -> None:
        def items() -> Iterator[NewIssue]:
            yield NewIssue(issue_id=first, title=name, product="OpenFrame")
            if not wait:
                first_batch_written.set()  # batch 1 is written (and locked) by now
                time.sleep(0.3)  # the other transaction is waiting meanwhile
            yield NewIssue(issue_id=second, title=name, product="OpenFrame")

        if wait:
            assert first_batch_written.wait(timeout=30)
        try:
            with db.session() as s:
                s.issues.upsert_many(items(), batch_size=1)
        except TransactionConflict:  # pragma: no cover - the failure this test rules out
            outcomes[name] = "conflict"
            return
        outcomes[name] = "committed"

    with Database(ims_app_url, min_size=2, max_size=2) as db:
        threads = [
            threading.Thread(target=crawl, args=("a", "X", "Y", False)),
            threading.Thread(target=crawl, args=("b", "Y", "X", True)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    deadlocks = server_deadlocks(ims_admin_url) - deadlocks_before
    assert outcomes == {"a": "committed", "b": "committed"}
    with psycopg.connect(ims_admin_url) as conn:
        rows = conn.execute(
            "SELECT issue_id, crawl_count, title FROM ims.issues_with_crawls ORDER BY issue_id"
        ).fetchall()
    assert rows == [("X", 2, "b"), ("Y", 2, "b")]  # b ran after a, whole
    assert deadlocks == 0
    report_figure("crossing multi-batch transactions: deadlocks the server detected", deadlocks)


def test_a_second_write_that_meets_a_busy_bucket_retries_logged_instead_of_waiting(
    ims_app_url: str, report_figure: ReportFigure
) -> None:
    """A transaction that holds issue locks from an earlier write never waits for another
    bucket (that wait could close a cycle): its savepoint is undone and the write tried
    again after a logged, jittered backoff, until the bucket is free (here: the holder
    commits when the first retry is logged)."""
    retries: list[str] = []

    class ReleaseOnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            retries.append(record.getMessage())
            if len(retries) == 1:
                holder.commit()

    logger = logging.getLogger("ims_repo.issues")
    handler = ReleaseOnRetry(logging.WARNING)
    logger.addHandler(handler)
    try:
        with Database(ims_app_url, min_size=2, max_size=2) as db, db.session() as holder:
            holder.issues.lock_for_write(issue_ids=["BUSY-1"])  # held until the commit
            with db.session() as s:
                s.issues.upsert(NewIssue(issue_id="FREE-1", title="t", product="p"))
                s.issues.upsert_many([NewIssue(issue_id="BUSY-1", title="t", product="p")])
                assert s.issues.get_by_issue_id("BUSY-1") is not None
    finally:
        logger.removeHandler(handler)
    assert len(retries) == 1 and "bucket" in retries[0] and "retrying" in retries[0]
    report_figure("second write meeting a busy bucket: retries logged", len(retries))


def test_the_lock_semantics_the_order_relies_on(ims_app_url: str) -> None:
    """Checked on the server: a savepoint rolled back releases the advisory locks taken in
    it (a retried write leaves no lock behind); the transaction-local mode goes with it;
    Python's ``lock_bucket`` (used to route ``upsert_issues``) agrees with the server's."""
    from ims_repo.core.staging import lock_bucket

    with psycopg.connect(ims_app_url) as a, psycopg.connect(ims_app_url, autocommit=True) as b:
        bucket = "SELECT ('x' || right(md5(%s), 4))::bit(16)::integer %% 512"
        for issue_id in ("RC-00001", "SAMPLE-001", "한글-7", ""):
            row = b.execute(bucket, (issue_id,)).fetchone()
            assert row is not None and row[0] == lock_bucket(issue_id)
        a.execute("SAVEPOINT s")
        a.execute("SELECT pg_advisory_xact_lock(1768780544, 7)")
        a.execute("SELECT set_config('ims_repo.issue_lock', 'shared', TRUE)")
        held = b.execute("SELECT pg_try_advisory_lock(1768780544, 7)").fetchone()
        assert held == (False,)
        a.execute("ROLLBACK TO SAVEPOINT s")
        mode = a.execute("SELECT current_setting('ims_repo.issue_lock', TRUE)").fetchone()
        assert mode is not None and mode[0] in ("", None)
        free = b.execute("SELECT pg_try_advisory_lock(1768780544, 7)").fetchone()
        assert free == (True,)
        b.execute("SELECT pg_advisory_unlock(1768780544, 7)")
        a.rollback()


# --- 5. timeouts and exhaustion ------------------------------------------------------------


def test_a_database_statement_timeout_raises_clearly_and_the_connection_stays_usable(
    ims_app_url: str, report_figure: ReportFigure
) -> None:
    with Database(ims_app_url, min_size=1, max_size=1, statement_timeout=0.2) as db:
        with db.session() as s:
            assert s.execute("SHOW statement_timeout") == [{"statement_timeout": "200ms"}]
            started = time.perf_counter()
            with pytest.raises(StatementTimeout, match="statement timeout"):
                s.execute("SELECT pg_sleep(5)")
            waited = time.perf_counter() - started
            s.rollback()  # as after any failed statement
            assert s.execute("SELECT 1 AS one") == [{"one": 1}]
        with pytest.raises(StatementTimeout) as caught, db.session() as s:
            s.execute("SELECT pg_sleep(5)")
        assert caught.value.__cause__ is not None  # chained to psycopg's QueryCanceled
        with db.session() as s:  # the only connection of the pool, again
            assert s.users.find() == []
    assert 0.2 <= waited < 2
    report_figure("statement_timeout=0.2 s (database): raised after (s)", f"{waited:.2f}")


def test_a_session_statement_timeout_is_transaction_local_and_never_reaches_the_next_checkout(
    ims_app_url: str, report_figure: ReportFigure
) -> None:
    with Database(ims_app_url, min_size=1, max_size=1) as db:
        with db.session() as s:
            [default] = s.execute("SHOW statement_timeout")
        with db.session(user_id=None, statement_timeout=0.15) as s:
            assert s.execute("SHOW statement_timeout") == [{"statement_timeout": "150ms"}]
            s.commit()  # holds for the rest of the block, like the context
            assert s.execute("SHOW statement_timeout") == [{"statement_timeout": "150ms"}]
            started = time.perf_counter()
            with pytest.raises(StatementTimeout, match="statement timeout"):
                s.execute("SELECT pg_sleep(5)")
            waited = time.perf_counter() - started
            s.rollback()
            assert s.execute("SELECT 2 AS two") == [{"two": 2}]
        with db.session() as s:  # same connection, no trace of the session's timeout
            assert s.execute("SHOW statement_timeout") == [default]
            assert s.execute("SELECT 3 AS three FROM pg_sleep(0.3)") == [{"three": 3}]
    with Database(ims_app_url, min_size=1, max_size=1, statement_timeout=0.1) as db:
        with db.session(statement_timeout=2) as s:  # a session may allow more, or less
            assert s.execute("SELECT 4 AS four FROM pg_sleep(0.3)") == [{"four": 4}]
        with db.session() as s:
            assert s.execute("SHOW statement_timeout") == [{"statement_timeout": "100ms"}]
    assert 0.15 <= waited < 2
    report_figure("statement_timeout=0.15 s (session): raised after (s)", f"{waited:.2f}")


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5s", True])
def test_a_timeout_must_be_a_positive_number_of_seconds(
    ims_db: Database, ims_app_url: str, bad: Any
) -> None:
    with pytest.raises(InvalidInput, match="statement_timeout"):
        Database(ims_app_url, statement_timeout=bad)
    with (
        pytest.raises(InvalidInput, match="statement_timeout"),
        ims_db.session(statement_timeout=bad),
    ):
        pass


def test_an_exhausted_pool_raises_after_a_bounded_wait_instead_of_hanging(
    ims_app_url: str, report_figure: ReportFigure
) -> None:
    with Database(ims_app_url, min_size=1, max_size=2, timeout=0.5) as db:
        with db.session() as first, db.session() as second:
            assert first.users.find() == second.users.find() == []
            started = time.perf_counter()
            with pytest.raises(PoolExhausted) as caught, db.session():
                pass
            waited = time.perf_counter() - started
        message = str(caught.value)
        assert "0.5 s" in message and "all 2 connections are in use" in message
        assert isinstance(caught.value, DatabaseUnavailable)
        with db.session() as s:  # free again
            assert s.users.find() == []
    assert 0.5 <= waited < 1.5
    report_figure("exhausted pool (timeout=0.5 s): PoolExhausted after (s)", f"{waited:.2f}")


def test_prepare_threshold_none_never_prepares_on_the_server(ims_app_url: str) -> None:
    """What a transaction-pooling pgbouncer older than 1.21 needs (docs/SECURITY.md)."""
    prepared = {}
    for threshold in (None, 5):
        with Database(ims_app_url, min_size=1, max_size=1, prepare_threshold=threshold) as db:
            for _ in range(8):
                with db.session() as s:
                    s.users.find()
            with db.session() as s:  # the same, only connection
                [row] = s.execute("SELECT count(*) AS n FROM pg_prepared_statements")
                prepared[threshold] = row["n"]
    assert prepared[None] == 0
    assert prepared[5] >= 1  # users.find (and BEGIN, the context) after five runs
