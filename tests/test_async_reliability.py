"""Reliability of the async API under load and cancellation (issue 12), with figures.

- No RLS context leak over 10,000 pooled checkouts from 200 concurrent tasks on a pool of
  3, with commits, rollbacks, exceptions, failed statements, context switches, raw SQL
  that sets a session-level context and connections that die under the session.
- 1,000 cancellations at chosen points inside ``async with db.session()`` (a task
  cancelled, or an ``asyncio.timeout()`` expiring): before a statement, in the middle of
  one, in the middle of a COPY, during a commit, anywhere in a busy block. The
  cancellation always reaches the caller, the next checkout sees no context and only its
  own rows, the work of a block cancelled before its commit is gone, and afterwards the
  pool still hands out all its connections at once while the server shows none of the
  test's connections stuck in a statement or a transaction.

The points are reached deterministically: the block marks where it is (an event set
just before the awaited call, or the statement count of the session), and the canceller
acts only then, so every run exercises every point, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ims_repo import (
    AsyncDatabase,
    AsyncSession,
    DatabaseUnavailable,
    InvalidInput,
    NewIssue,
    NewUser,
    QueryFile,
)
from tests.conftest import ReportFigure
from tests.seed import People
from tests.test_reliability import SEEN, CallerBug

# --- one look at every user-owned row ---------------------------------------------------


@dataclass
class Owned:
    """The user-owned rows each user has, to score what a checkout sees."""

    rows: dict[int, int]
    admin: int

    def score(self, row: dict[str, Any], user: int | None, tally: Counter[str]) -> None:
        """Score one ``SEEN`` row read in a checkout whose context is ``user``."""
        seen = {int(owner): n for owner, n in row["seen"].items()}
        tally["looks"] += 1
        tally["wrong context"] += row["ctx"] != user
        if user is None:
            tally["rows seen without context"] += sum(seen.values())
        elif user == self.admin:
            tally["admin saw a different set"] += seen != self.rows
        else:
            tally["rows of another user seen"] += sum(n for o, n in seen.items() if o != user)
            tally["own rows missing"] += seen.get(user, 0) != self.rows[user]


async def own_rows(db: AsyncDatabase, user_id: int, sessions: int, issue_pk: int) -> int:
    """``sessions`` crawl sessions of the user, each with a link, a search and an error;
    how many user-owned rows that makes."""
    async with db.session(user_id=user_id) as s:
        for crawl_id in await acrawl_in(s, user_id, sessions):
            await s.session_issues.link(crawl_id, issue_pk)
            await s.search_queries.log(
                {"user_id": user_id, "session_id": crawl_id, "query_text": "q"}
            )
            await s.session_errors.create(
                {
                    "session_id": crawl_id,
                    "user_id": user_id,
                    "error_type": "E",
                    "error_message": "m",
                }
            )
    return 4 * sessions


async def acrawl_in(s: AsyncSession, user_id: int, count: int) -> list[int]:
    return [
        (
            await s.crawl_sessions.create(
                {"user_id": user_id, "product": "OpenFrame", "original_query": f"q{n}"}
            )
        ).session_id
        for n in range(count)
    ]


async def seed(db: AsyncDatabase, people: People) -> tuple[Owned, list[int | None]]:
    """alice, bob and carol with crawl data; the contexts a checkout may take."""
    async with db.session() as s:
        carol = (await s.users.create(NewUser(username="carol", email="carol@example.com"))).user_id
        issue_pk = (
            await s.issues.create(NewIssue(issue_id="LEAK-1", title="t", product="OpenFrame"))
        ).issue_pk
    owned = Owned(
        {
            people.alice: await own_rows(db, people.alice, 2, issue_pk),
            people.bob: await own_rows(db, people.bob, 3, issue_pk),
            carol: await own_rows(db, carol, 1, issue_pk),
        },
        admin=people.admin,
    )
    return owned, [None, people.alice, people.bob, carol, people.admin]


async def look(s: AsyncSession, owned: Owned, user: int | None, tally: Counter[str]) -> None:
    [row] = await s.execute(SEEN)
    owned.score(row, user, tally)


async def busy_connections(admin_url: str) -> list[tuple[Any, ...]]:
    """The test database's connections the server shows in a statement or a transaction
    (other than the one asking)."""

    def query() -> list[tuple[Any, ...]]:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            return admin.execute(
                "SELECT pid, state, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state IN ('active', 'idle in transaction', "
                "'idle in transaction (aborted)')"
            ).fetchall()

    return await asyncio.to_thread(query)


async def all_connections_at_once(db: AsyncDatabase, size: int, owned: Owned) -> int:
    """Check out ``size`` sessions at the same time (``PoolExhausted`` if the pool lost
    one); each sees no context. How many it held."""
    tally: Counter[str] = Counter()
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(db.session()) for _ in range(size)]
        for s in sessions:
            await look(s, owned, None, tally)
    assert tally["wrong context"] == tally["rows seen without context"] == 0
    return len(sessions)


# --- 1. no context leak from 200 concurrent tasks ----------------------------------------

TASKS = 200
CHECKOUTS_PER_TASK = 50
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


@pytest.mark.slow
async def test_no_context_leaks_over_ten_thousand_checkouts_from_two_hundred_tasks(
    ims_adb: AsyncDatabase,
    apeople: People,
    ims_app_url: str,
    ims_admin_url: str,
    report_figure: ReportFigure,
) -> None:
    owned, users = await seed(ims_adb, apeople)
    names, weights = list(ACTIONS), list(ACTIONS.values())
    totals: Counter[str] = Counter()

    async def read(s: AsyncSession, user: int | None, tally: Counter[str]) -> None:
        """A repository read, scored like a look (``find`` adds no user filter: RLS does)."""
        found = await s.crawl_sessions.find()
        if user is None:
            tally["rows seen without context"] += len(found)
        elif user != owned.admin:
            tally["rows of another user seen"] += sum(c.user_id != user for c in found)

    async def checkout(s: AsyncSession, user: int | None, action: str, rng: random.Random) -> None:
        tally = totals
        if action == "repository read first":
            # A lone read-only named statement opens the checkout: it runs without BEGIN,
            # in one implicit transaction with the context (core/transaction.py).
            await read(s, user, tally)
        await look(s, owned, user, tally)
        if action == "look again":
            await look(s, owned, user, tally)
        elif action == "commit":
            await s.commit()
            await look(s, owned, user, tally)
        elif action == "rollback":
            await s.rollback()
            await look(s, owned, user, tally)
        elif action == "switch user":
            user = rng.choice(users)
            await s.set_user(user)
            await look(s, owned, user, tally)
        elif action == "failed statement in a savepoint":
            with pytest.raises(InvalidInput):
                async with s.savepoint():
                    await s.execute("SELECT 1 / 0")
            await look(s, owned, user, tally)
        elif action == "failed statement":
            await s.execute("SELECT 1 / 0")
        elif action == "exception":
            raise CallerBug
        elif action == "session-level context":
            # Raw SQL may set the context for the whole connection: the caller is
            # trusted, but the next checkout must not inherit it.
            await s.execute(
                "SELECT set_config('ims.current_user_id', %(u)s, false)",
                {"u": str(rng.choice([u for u in users if u is not None]))},
            )
        elif action == "repository read":
            await read(s, user, tally)
        elif action == "connection dies":
            await s.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    async def worker(number: int) -> None:
        rng = random.Random(number)
        for _ in range(CHECKOUTS_PER_TASK):
            user = rng.choice(users)
            action = rng.choices(names, weights)[0]
            totals["checkouts"] += 1
            try:
                async with db.session(user_id=user) as s:
                    await checkout(s, user, action, rng)
            except (CallerBug, InvalidInput) as error:
                totals[type(error).__name__] += 1
            except DatabaseUnavailable:
                totals["connections lost"] += 1

    async with AsyncDatabase(ims_app_url, min_size=3, max_size=3) as db:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:  # any unexpected error fails the test
            for n in range(TASKS):
                group.create_task(worker(n))
        elapsed = time.perf_counter() - started
        held = await all_connections_at_once(db, 3, owned)

    report_figure(
        "async context leak: pooled checkouts (200 tasks, pool of 3)", totals["checkouts"]
    )
    report_figure("async context leak: looks at every user-owned row", totals["looks"])
    report_figure(
        "async context leak: rows of another user seen", totals["rows of another user seen"]
    )
    report_figure(
        "async context leak: rows seen without context", totals["rows seen without context"]
    )
    report_figure("async context leak: checkouts with a wrong context", totals["wrong context"])
    report_figure(
        "async context leak: connections killed under a session", totals["connections lost"]
    )
    report_figure("async context leak: checkouts per second", round(totals["checkouts"] / elapsed))
    assert totals["checkouts"] == TASKS * CHECKOUTS_PER_TASK >= 10_000
    assert totals["looks"] > totals["checkouts"]
    assert totals["rows of another user seen"] == 0
    assert totals["rows seen without context"] == 0
    assert totals["wrong context"] == 0
    assert totals["own rows missing"] == 0
    assert totals["admin saw a different set"] == 0
    # every kind of ending happened, many times
    assert totals["CallerBug"] > 500 and totals["InvalidInput"] > 500
    assert totals["connections lost"] > 30
    assert held == 3
    assert await busy_connections(ims_admin_url) == []


# --- 2. cancellation at chosen points -----------------------------------------------------

CANCELLATIONS = 1000
LANES = 5  # attempts running at once, on a pool of 3: some also wait for a connection
POOL = 3
PROBE = """
-- name: nap :scalar
-- A read-only statement that takes long.
SELECT pg_sleep(:seconds);

-- name: pid :scalar
-- The server process of this connection.
SELECT pg_backend_pid();
"""
POINTS = (
    "before a statement, idle",
    "before a statement, in a transaction",
    "mid-statement, in a transaction",
    "mid-statement, read-only outside a transaction",
    "mid-COPY of upsert_many",
    "during an explicit commit",
    "during the block's commit",
    "anywhere in a busy block",
    "entering the block, after a lost connection",
)
# A block cancelled at these points never reaches a commit: its writes must be gone.
UNCOMMITTED = frozenset(POINTS[1:5])
# The statements upsert_many sends for a batch of new issues, in order (see
# IssueRepository.upsert_batch): 1 take the issue locks, 2 create the digest stage, 3 COPY
# the digests, 4-6 settle unchanged items, 7 create the issue stage, 8 COPY the issues,
# 9 the upsert, 10 clear the stage. The test checks the count before relying on it.
BATCH_STATEMENTS = 10
COPY_STATEMENTS = (3, 8)


@dataclass
class Attempt:
    """One block to cancel: where, how, and what it reported while it ran."""

    number: int
    point: str
    how: str  # "cancel" (task.cancel()) or "timeout" (asyncio.timeout() expiring)
    user: int | None
    task: asyncio.Task[None] | None = None
    timeout: asyncio.Timeout | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    session: AsyncSession | None = None
    pid: int | None = None  # the server process, for the mid-statement points

    @property
    def tag(self) -> str:
        return f"CANCEL-{self.number:05d}"

    def items(self, count: int) -> list[NewIssue]:
        return [
            NewIssue(issue_id=f"{self.tag}-{n}", title="x" * 200, product="P", raw_data={"n": n})
            for n in range(count)
        ]

    def cancel(self) -> None:
        """Cancel the block now: it gets the error at its next suspension (a timeout
        expiring now fires on the loop's next iteration, at the same suspension)."""
        if self.how == "cancel":
            assert self.task is not None
            self.task.cancel()
        else:
            assert self.timeout is not None
            self.timeout.reschedule(asyncio.get_running_loop().time())


async def block(s: AsyncSession, attempt: Attempt, probe: QueryFile, rng: random.Random) -> None:
    """The body of the cancelled session: it never ends by itself, except the one that
    is cancelled by its own commit. ``attempt.cancel()`` right before an awaited call
    cancels in that call (nothing else is awaited in between)."""
    attempt.session = s
    point = attempt.point
    forever = asyncio.Event()  # never set: something else the caller awaits (a page, a queue)
    if point == "before a statement, idle":
        if rng.random() < 0.5:
            await s.users.find(limit=1)  # a read: its transaction is over already
        attempt.cancel()
        await forever.wait()
    elif point == "before a statement, in a transaction":
        await s.issues.create(attempt.items(1)[0])
        attempt.cancel()
        await forever.wait()
    elif point == "mid-statement, in a transaction":
        await s.issues.create(attempt.items(1)[0])
        [row] = await s.execute("SELECT pg_backend_pid() AS pid")
        attempt.pid = row["pid"]
        attempt.reached.set()  # the canceller waits until the server runs the statement
        await s.execute("SELECT pg_sleep(30)")
    elif point == "mid-statement, read-only outside a transaction":
        attempt.pid = await s.fetch_value(probe.statement("pid").bind({}))
        attempt.reached.set()
        await s.fetch_value(probe.statement("nap", "seconds").bind({"seconds": 30}))
    elif point == "mid-COPY of upsert_many":
        attempt.reached.set()  # the canceller watches statements_sent for the COPY
        await s.issues.upsert_many(attempt.items(400), batch_size=400)
        await forever.wait()
    elif point == "during an explicit commit":
        await s.issues.create(attempt.items(1)[0])
        attempt.cancel()
        await s.commit()
        await forever.wait()
    elif point == "during the block's commit":
        await s.issues.create(attempt.items(1)[0])
        attempt.cancel()  # the next await is the block's end: its COMMIT
    elif point == "entering the block, after a lost connection":
        await s.users.find(limit=1)  # cancelled before the block began: never done
        raise AssertionError("the block went on after its cancellation")
    elif point == "anywhere in a busy block":
        attempt.reached.set()  # the canceller waits 0-20 ms: wherever the block is then
        for step in itertools.count():
            choice = rng.randrange(6)
            if choice == 0:
                await s.users.find(limit=5)
            elif choice == 1:
                await s.issues.upsert_many(
                    [NewIssue(issue_id=f"{attempt.tag}-{step}", title="t", product="P")]
                )
            elif choice == 2:
                await s.commit()
            elif choice == 3:
                await s.execute("SELECT pg_sleep(0.001)")
            elif choice == 4:
                await s.set_user(attempt.user)
            else:
                await asyncio.sleep(0)


async def server_runs(admin: psycopg.AsyncConnection[Any], pid: int) -> None:
    """Wait until the server process ``pid`` is running its pg_sleep: a cancel request
    sent earlier could reach it before the statement and be ignored."""
    while True:
        cursor = await admin.execute(
            "SELECT 1 FROM pg_stat_activity "
            "WHERE pid = %s AND state = 'active' AND query LIKE '%%pg_sleep%%'",
            [pid],
        )
        if await cursor.fetchone():
            return
        await asyncio.sleep(0.001)


async def cancel_at_its_point(
    attempt: Attempt, admin: psycopg.AsyncConnection[Any], rng: random.Random
) -> str:
    """Cancel the block at its point, for the points the block does not cancel itself
    at; where it was."""
    assert attempt.task is not None
    task = attempt.task
    reached = asyncio.ensure_future(attempt.reached.wait())
    await asyncio.wait([reached, task], return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    if not attempt.reached.is_set():
        return attempt.point  # cancelled by itself (or it failed: the caller reports it)
    where = attempt.point
    if attempt.point.startswith("mid-statement"):
        assert attempt.pid is not None
        await server_runs(admin, attempt.pid)
    elif attempt.point == "mid-COPY of upsert_many":
        target = rng.choice(COPY_STATEMENTS)
        while not task.done() and (s := attempt.session) and s.statements_sent < target:
            await asyncio.sleep(0)
        sent = attempt.session.statements_sent if attempt.session else 0
        where = "mid-COPY" if sent in COPY_STATEMENTS else "just after a COPY"
    elif attempt.point == "anywhere in a busy block":
        await asyncio.sleep(rng.uniform(0, 0.02))
    attempt.cancel()
    return where


@pytest.mark.slow
async def test_a_thousand_cancellations_leak_nothing_and_lose_no_connection(
    ims_adb: AsyncDatabase,
    apeople: People,
    ims_app_url: str,
    ims_admin_url: str,
    tmp_path: Path,
    report_figure: ReportFigure,
) -> None:
    owned, users = await seed(ims_adb, apeople)
    async with ims_adb.session() as s:  # the statement numbers COPY_STATEMENTS relies on
        await s.issues.upsert_many(Attempt(-1, "", "", None).items(400), batch_size=400)
        assert s.statements_sent == BATCH_STATEMENTS
        await s.rollback()
    (tmp_path / "probe.sql").write_text(PROBE)
    probe = QueryFile(tmp_path / "probe.sql")
    outcomes: Counter[str] = Counter()
    places: Counter[str] = Counter()
    leaks: Counter[str] = Counter()
    numbers = iter(range(CANCELLATIONS))

    async def run(db: AsyncDatabase, attempt: Attempt, rng: random.Random) -> None:
        """The caller: a block in ``db.session()``, under a timeout for "timeout"."""
        if attempt.how == "timeout":
            try:
                async with asyncio.timeout(None) as timeout:
                    attempt.timeout = timeout
                    await enter(db, attempt, rng)
            except TimeoutError:
                outcomes["TimeoutError reached the caller"] += 1
                return
        else:
            await enter(db, attempt, rng)
        outcomes["block ended without its cancellation"] += 1

    async def enter(db: AsyncDatabase, attempt: Attempt, rng: random.Random) -> None:
        if attempt.point == POINTS[-1]:
            # A connection dies first, so the pool's others are tested (an empty query)
            # at their next checkout; cancelled now, the block gets the error at its
            # first suspension: in that test, waiting for a connection, or in its read.
            with contextlib.suppress(DatabaseUnavailable):
                async with db.session() as s:
                    await s.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            attempt.cancel()
        async with db.session(user_id=attempt.user) as s:
            await block(s, attempt, probe, rng)

    async def lane(db: AsyncDatabase, admin: psycopg.AsyncConnection[Any], seed_: int) -> None:
        rng = random.Random(seed_)
        for number in numbers:
            point = POINTS[number % len(POINTS)]
            how, user = rng.choice(["cancel", "timeout"]), rng.choice(users)
            attempt = Attempt(number, point, how, user)
            attempt.task = asyncio.create_task(run(db, attempt, rng))
            places[await cancel_at_its_point(attempt, admin, rng)] += 1
            await asyncio.wait([attempt.task])
            if how == "cancel":
                if attempt.task.cancelled():
                    outcomes["CancelledError reached the caller"] += 1
            elif (error := attempt.task.exception()) is not None:
                outcomes[f"unexpected {type(error).__name__}: {error}"] += 1
            # The next checkout: no context, or only its own rows; none of the block's work
            # unless it was cancelled at (or after) a commit.
            user = rng.choice(users)
            async with db.session(user_id=user) as s:
                await look(s, owned, user, leaks)
                kept = await s.issues.count(issue_id_like=f"{attempt.tag}%")
            if point in UNCOMMITTED:
                leaks["writes of a block cancelled before its commit kept"] += kept

    admins = [
        await psycopg.AsyncConnection.connect(ims_admin_url, autocommit=True) for _ in range(LANES)
    ]
    try:
        async with AsyncDatabase(ims_app_url, min_size=POOL, max_size=POOL, timeout=10) as db:
            started = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for n, admin in enumerate(admins):
                    group.create_task(lane(db, admin, n))
            elapsed = time.perf_counter() - started
            stats = db._pool.get_stats()
            held = await all_connections_at_once(db, POOL, owned)
    finally:
        for admin in admins:
            await admin.close()
    busy = await busy_connections(ims_admin_url)

    cancelled = (
        outcomes["CancelledError reached the caller"] + outcomes["TimeoutError reached the caller"]
    )
    replaced = stats.get("returns_bad", 0) + stats.get("connections_lost", 0)
    report_figure(
        "async cancellation: blocks cancelled (task.cancel or asyncio.timeout)", cancelled
    )
    for place, count in sorted(places.items()):
        report_figure(f"async cancellation: cancelled {place}", count)
    report_figure(
        "async cancellation: contexts leaked to the next checkout",
        leaks["wrong context"]
        + leaks["rows seen without context"]
        + leaks["rows of another user seen"],
    )
    report_figure(
        "async cancellation: writes kept from blocks cancelled before commit",
        leaks["writes of a block cancelled before its commit kept"],
    )
    report_figure("async cancellation: connections closed and replaced by the pool", replaced)
    report_figure("async cancellation: connections held at once after the run (pool of 3)", held)
    report_figure("async cancellation: connections stuck on the server after the run", len(busy))
    report_figure("async cancellation: cancellations per second", round(CANCELLATIONS / elapsed))
    assert outcomes == {
        "CancelledError reached the caller": outcomes["CancelledError reached the caller"],
        "TimeoutError reached the caller": outcomes["TimeoutError reached the caller"],
    }, outcomes
    assert cancelled == CANCELLATIONS
    assert min(outcomes.values()) > 300  # both ways, many times
    planned = Counter(POINTS[n % len(POINTS)] for n in range(CANCELLATIONS))
    assert all(places[point] == planned[point] for point in POINTS if point != POINTS[4])
    assert places["mid-COPY"] > 0.8 * planned[POINTS[4]], places
    assert leaks["wrong context"] == 0
    assert leaks["rows seen without context"] == 0
    assert leaks["rows of another user seen"] == 0
    assert leaks["own rows missing"] == 0
    assert leaks["admin saw a different set"] == 0
    assert leaks["writes of a block cancelled before its commit kept"] == 0
    assert held == POOL
    assert busy == []
