"""No RLS context leak through a real pgbouncer in transaction pooling (issue 15, item 1).

8 threads (sync) or 8 tasks (async) share 8 client connections, which pgbouncer runs on
3 server connections: consecutive transactions of one client connection land on
different server connections, and one server connection serves every client in turn.
10,000 checkouts each, with the actions of the direct test (tests/test_reliability.py):
commits, rollbacks, exceptions, failed statements, context switches, raw SQL that sets a
session-level context on the server connection, server connections killed under a
session. Every look reads, in one statement, the context and who owns each visible
user-owned row, and the server process that answered: the counts are the server's.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter

import pytest

from ims_repo import AsyncDatabase, AsyncSession, Database, InvalidInput, NewIssue, NewUser, Session
from ims_repo.errors import DatabaseUnavailable
from tests.conftest import ReportFigure
from tests.fix_pgbouncer import POOL_SIZE, StartBouncer
from tests.seed import people
from tests.test_async_reliability import ACTIONS, Owned
from tests.test_reliability import SEEN, CallerBug, own_rows

WORKERS = 8
CHECKOUTS_PER_WORKER = 1250
SEEN_ON = f"SELECT pg_backend_pid() AS pid, looked.* FROM ({SEEN}) AS looked"
"""``SEEN`` and the server process that answered it."""


def seed(db: Database, admin_url: str) -> tuple[Owned, list[int | None]]:
    """alice, bob and carol with crawl data, root.admin; the contexts a checkout may take
    (stored directly, not through the pooler under test)."""
    p = people(db, admin_url)
    with db.session() as s:
        carol = s.users.create(NewUser(username="carol", email="carol@example.com")).user_id
        issue_pk = s.issues.create(
            NewIssue(issue_id="LEAK-1", title="t", product="OpenFrame")
        ).issue_pk
    owned = Owned(
        {
            p.alice: own_rows(db, p.alice, 2, issue_pk),
            p.bob: own_rows(db, p.bob, 3, issue_pk),
            carol: own_rows(db, carol, 1, issue_pk),
        },
        admin=p.admin,
    )
    return owned, [None, p.alice, p.bob, carol, p.admin]


def score_sessions(owned: Owned, owners: list[int], user: int | None, tally: Counter[str]) -> None:
    """Score the owners of the crawl sessions a checkout with context ``user`` read (each
    user's own rows are 4 per crawl session, ``seed``)."""
    if user is None:
        tally["rows seen without context"] += len(owners)
    elif user == owned.admin:
        tally["admin saw a different set"] += len(owners) != sum(owned.rows.values()) // 4
    else:
        tally["rows of another user seen"] += sum(owner != user for owner in owners)
        tally["own rows missing"] += owners.count(user) != owned.rows[user] // 4


def report(
    report_figure: ReportFigure, label: str, totals: Counter[str], servers: set[int], seconds: float
) -> None:
    report_figure(f"{label}: checkouts (8 clients, 3 server connections)", totals["checkouts"])
    report_figure(f"{label}: looks at every user-owned row", totals["looks"])
    report_figure(f"{label}: rows of another user seen", totals["rows of another user seen"])
    report_figure(f"{label}: rows seen without context", totals["rows seen without context"])
    report_figure(f"{label}: checkouts with a wrong context", totals["wrong context"])
    report_figure(f"{label}: unexpected errors", totals["unexpected errors"])
    report_figure(f"{label}: server connections killed", totals["connections lost"])
    report_figure(f"{label}: server processes that answered", len(servers))
    report_figure(f"{label}: checkouts per second", round(totals["checkouts"] / seconds))


def check(totals: Counter[str], servers: set[int], errors: list[str]) -> None:
    assert totals["unexpected errors"] == 0, errors[:5]
    assert totals["checkouts"] == WORKERS * CHECKOUTS_PER_WORKER >= 10_000
    assert totals["looks"] > totals["checkouts"]
    assert totals["rows of another user seen"] == 0
    assert totals["rows seen without context"] == 0
    assert totals["wrong context"] == 0
    assert totals["own rows missing"] == 0
    assert totals["admin saw a different set"] == 0
    # every kind of ending happened, many times
    assert totals["CallerBug"] > 500 and totals["InvalidInput"] > 500
    assert totals["connections lost"] > 30
    # 8 clients on the pool of 3 server connections (each killed one is replaced)
    assert len(servers) <= POOL_SIZE + totals["connections lost"]


@pytest.mark.slow
def test_no_context_leaks_through_pgbouncer_from_eight_threads(
    pgbouncer: StartBouncer,
    ims_db: Database,
    ims_app_url: str,
    ims_admin_url: str,
    report_figure: ReportFigure,
) -> None:
    owned, users = seed(ims_db, ims_admin_url)
    names, weights = list(ACTIONS), list(ACTIONS.values())
    totals: Counter[str] = Counter()
    servers: set[int] = set()
    errors: list[str] = []
    lock = threading.Lock()

    def look(s: Session, user: int | None, tally: Counter[str]) -> None:
        [row] = s.execute(SEEN_ON)
        owned.score(row, user, tally)
        servers.add(row["pid"])

    def checkout(
        s: Session, user: int | None, action: str, rng: random.Random, tally: Counter[str]
    ) -> None:
        if action == "repository read":  # first, so without BEGIN: an implicit transaction
            score_sessions(owned, [c.user_id for c in s.crawl_sessions.find()], user, tally)
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
            # Left on the server connection, which pgbouncer hands to another client next.
            s.execute(
                "SELECT set_config('ims.current_user_id', %(u)s, false)",
                {"u": str(rng.choice([u for u in users if u is not None]))},
            )
        elif action == "connection dies":
            s.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    def worker(db: Database, number: int) -> None:
        rng = random.Random(number)
        tally: Counter[str] = Counter()
        for _ in range(CHECKOUTS_PER_WORKER):
            user = rng.choice(users)
            action = rng.choices(names, weights)[0]
            tally["checkouts"] += 1
            try:
                with db.session(user_id=user) as s:
                    checkout(s, user, action, rng, tally)
            except (CallerBug, InvalidInput) as error:
                tally[type(error).__name__] += 1
            except DatabaseUnavailable:
                tally["connections lost"] += 1
            except Exception as error:  # counted, and the test fails on it
                tally["unexpected errors"] += 1
                errors.append(repr(error))
        with lock:
            totals.update(tally)

    url = pgbouncer("transaction").url(ims_app_url)
    with Database(url, min_size=WORKERS, max_size=WORKERS) as db:
        assert db.behind_pooler
        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(db, n)) for n in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started

    report(report_figure, "pgbouncer context leak", totals, servers, elapsed)
    check(totals, servers, errors)


@pytest.mark.slow
async def test_no_context_leaks_through_pgbouncer_from_eight_tasks(
    pgbouncer: StartBouncer,
    ims_db: Database,
    ims_app_url: str,
    ims_admin_url: str,
    report_figure: ReportFigure,
) -> None:
    owned, users = await asyncio.to_thread(seed, ims_db, ims_admin_url)
    names, weights = list(ACTIONS), list(ACTIONS.values())
    totals: Counter[str] = Counter()
    servers: set[int] = set()
    errors: list[str] = []

    async def look(s: AsyncSession, user: int | None) -> None:
        [row] = await s.execute(SEEN_ON)
        owned.score(row, user, totals)
        servers.add(row["pid"])

    async def checkout(s: AsyncSession, user: int | None, action: str, rng: random.Random) -> None:
        if action == "repository read":  # first, so without BEGIN: an implicit transaction
            found = await s.crawl_sessions.find()
            score_sessions(owned, [c.user_id for c in found], user, totals)
        await look(s, user)
        if action == "look again":
            await look(s, user)
        elif action == "commit":
            await s.commit()
            await look(s, user)
        elif action == "rollback":
            await s.rollback()
            await look(s, user)
        elif action == "switch user":
            user = rng.choice(users)
            await s.set_user(user)
            await look(s, user)
        elif action == "failed statement in a savepoint":
            with pytest.raises(InvalidInput):
                async with s.savepoint():
                    await s.execute("SELECT 1 / 0")
            await look(s, user)
        elif action == "failed statement":
            await s.execute("SELECT 1 / 0")
        elif action == "exception":
            raise CallerBug
        elif action == "session-level context":
            await s.execute(
                "SELECT set_config('ims.current_user_id', %(u)s, false)",
                {"u": str(rng.choice([u for u in users if u is not None]))},
            )
        elif action == "connection dies":
            await s.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    async def worker(db: AsyncDatabase, number: int) -> None:
        rng = random.Random(number)
        for _ in range(CHECKOUTS_PER_WORKER):
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
            except Exception as error:  # counted, and the test fails on it
                totals["unexpected errors"] += 1
                errors.append(repr(error))

    url = pgbouncer("transaction").url(ims_app_url)
    async with AsyncDatabase(url, min_size=WORKERS, max_size=WORKERS) as db:
        assert db.behind_pooler
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for n in range(WORKERS):
                group.create_task(worker(db, n))
        elapsed = time.perf_counter() - started

    report(report_figure, "pgbouncer async context leak", totals, servers, elapsed)
    check(totals, servers, errors)
