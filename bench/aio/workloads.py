"""The async workloads: every read workload of ``bench.workloads`` through
``AsyncDatabase`` against the async floor (``bench.aio.raw``), a concurrency workload,
and the fresh ingest through ``await db.upsert_issues``.

The operations, the conversion to comparable records and the untimed write helpers are
the sync bench's own (``bench.workloads.Bench``): the async rows measure the same work on
the same data. Each read workload also runs the sync ``Database`` on the same operations
(column ``sync``), so the table shows what asyncio itself costs; ``ref:sync_floor`` is
the sync floor (``bench.raw``), run once.

Implementations are plain callables of one operation returning a result or an awaitable
(``bench.aio.run`` awaits what needs awaiting): ``floor`` (async psycopg by hand),
``ims_repo`` (``AsyncDatabase``), ``sync`` (``Database``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench import data
from bench.aio.raw import AsyncRaw
from bench.raw import Raw
from bench.workloads import OPEN_STATUSES, PAGE, Bench, Workload, issue_record
from ims_repo import (
    AsyncDatabase,
    CrawlSession,
    Database,
    DurationStats,
    Issue,
    IssueDetail,
    SearchHit,
)

IMPLEMENTATIONS = ("floor", "ims_repo", "sync")
NESTED_LIMIT = 1000
"""``bench.workloads``' nested load reads 1,000 issues a page (checked: the sync result
must equal the async one)."""
CONCURRENT_READS = 200
"""Point reads in flight at once in the concurrency workload."""
CONCURRENT_POOL = 10
"""Connections of every pool of the concurrency workload (async and sync alike)."""
CONCURRENT_BATCHES = 10
"""Batches of ``CONCURRENT_READS`` reads per run."""


@dataclass(frozen=True)
class Target:
    """What issue 12 asks of this workload: ``top / bottom`` (ratio of median times) at
    most ``most``; ``None``: reported, no target."""

    top: str = "ims_repo"
    bottom: str = "floor"
    most: float | None = 1.15


@dataclass
class AsyncWorkload:
    name: str
    title: str
    ops: list[Any]
    impls: dict[str, Callable[[Any], Any]]
    canon: Callable[[str, list[Any]], Any]
    target: Target = field(default_factory=Target)
    write: bool = False
    prepare: Callable[[], Any] | None = None
    verify: Callable[[Any], Any] | None = None
    per_item: int = 0
    """Items one operation handles (for a rate: reads or issues per second)."""
    warm_up: int = 20
    """Operations each implementation runs untimed first (reads only)."""


class AsyncBench:
    """The async implementations, next to the sync bench on the same database.

    Build it inside the event loop that runs the workloads (``await AsyncBench.start``):
    async pools belong to the loop they were opened in."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.plan = bench.plan
        url = bench.db.app_url
        self.ims = AsyncDatabase(url, min_size=1, max_size=4, name="bench_aio_ims")
        self.raw = AsyncRaw(url)
        # The concurrency workload's pools, opened by its first run (40 connections).
        self.ims_10 = AsyncDatabase(
            url, min_size=CONCURRENT_POOL, max_size=CONCURRENT_POOL, name="bench_aio_ims_10"
        )
        self.raw_10 = AsyncRaw(url, min_size=CONCURRENT_POOL, max_size=CONCURRENT_POOL)
        self._sync_10: tuple[Database, Raw, ThreadPoolExecutor] | None = None
        self._opened_10 = False

    @classmethod
    async def start(cls, bench: Bench) -> AsyncBench:
        self = cls(bench)
        await self.ims.open()
        await self.raw.open()
        return self

    async def close(self) -> None:
        await self.ims.close()
        await self.raw.close()
        if self._opened_10:
            await self.ims_10.close()
            await self.raw_10.close()
        if self._sync_10 is not None:
            database, raw, threads = self._sync_10
            threads.shutdown()
            database.close()
            raw.close()

    def workloads(self) -> list[AsyncWorkload]:
        bench = self.bench
        return [
            self.point_issue(bench.point_issue()),
            self.point_session(bench.point_session()),
            self.page(bench.page("page_shallow", deep=False)),
            self.page(bench.page("page_deep", deep=True)),
            self.nested(bench.nested()),
            self.search(bench.search("search_en", data.SEARCH_EN)),
            self.search(bench.search("search_ko", data.SEARCH_KO)),
            self.jsonb(bench.jsonb()),
            self.aggregate(bench.aggregate()),
            self.rls_list(bench.rls_list()),
            self.concurrency(bench.point_issue()),
            self.ingest(),
        ]

    def _twin(
        self,
        sync: Workload,
        floor: Callable[[Any], Awaitable[Any]],
        ims: Callable[[Any], Awaitable[Any]],
    ) -> AsyncWorkload:
        """A read workload of the sync bench, run by the async floor, ``AsyncDatabase``
        and (for comparison) the sync ``Database`` and the sync floor."""
        return AsyncWorkload(
            name=sync.name,
            title=sync.title,
            ops=sync.ops,
            impls={
                "floor": floor,
                "ims_repo": ims,
                "sync": sync.impls["ims_repo"],
                "ref:sync_floor": sync.impls["floor"],
            },
            canon=sync.canon,
        )

    # --- point reads -------------------------------------------------------------------

    def point_issue(self, sync: Workload) -> AsyncWorkload:
        async def ims(op: tuple[int, int]) -> Issue | None:
            user, pk = op
            async with self.ims.session(user_id=user) as s:
                return await s.issues.get(pk)

        return self._twin(sync, lambda op: self.raw.get_issue(*op), ims)

    def point_session(self, sync: Workload) -> AsyncWorkload:
        async def ims(op: tuple[int, int]) -> CrawlSession | None:
            user, session_id = op
            async with self.ims.session(user_id=user) as s:
                return await s.crawl_sessions.get(session_id)

        return self._twin(sync, lambda op: self.raw.get_session(*op), ims)

    # --- filtered, ordered pages -------------------------------------------------------

    def page(self, sync: Workload) -> AsyncWorkload:
        async def floor(op: tuple[int, str, int, tuple[datetime, int] | None]) -> list[Issue]:
            user, product, offset, after = op
            if after is not None:
                return await self.raw.find_issues(user, product, OPEN_STATUSES, PAGE, 0, after)
            return await self.raw.find_issues(user, product, OPEN_STATUSES, PAGE, offset)

        async def ims(op: tuple[int, str, int, tuple[datetime, int] | None]) -> list[Issue]:
            user, product, offset, after = op
            async with self.ims.session(user_id=user) as s:
                if after is not None:
                    return await s.issues.find(
                        product=product,
                        status_in=OPEN_STATUSES,
                        order_by=["-issue_updated_at", "issue_pk"],
                        limit=PAGE,
                        after={"issue_updated_at": after[0], "issue_pk": after[1]},
                    )
                return await s.issues.find(
                    product=product,
                    status_in=OPEN_STATUSES,
                    order_by=["-issue_updated_at", "issue_pk"],
                    limit=PAGE,
                    offset=offset,
                )

        return self._twin(sync, floor, ims)

    # --- nested eager load -------------------------------------------------------------

    def nested(self, sync: Workload) -> AsyncWorkload:
        async def ims(op: tuple[int, str]) -> list[IssueDetail]:
            user, product = op
            async with self.ims.session(user_id=user) as s:
                return await s.issues.find_detailed(
                    product=product, order_by=["issue_pk"], limit=NESTED_LIMIT
                )

        return self._twin(
            sync, lambda op: self.raw.find_detailed_json(op[0], op[1], NESTED_LIMIT), ims
        )

    # --- search ------------------------------------------------------------------------

    def search(self, sync: Workload) -> AsyncWorkload:
        async def ims(op: tuple[int, str]) -> list[SearchHit]:
            user, query = op
            async with self.ims.session(user_id=user) as s:
                return await s.search.issues(query, limit=50)

        return self._twin(sync, lambda op: self.raw.search(op[0], op[1], 50), ims)

    # --- JSONB filters -----------------------------------------------------------------

    def jsonb(self, sync: Workload) -> AsyncWorkload:
        async def floor(op: tuple[int, str, Any]) -> list[CrawlSession]:
            user, kind, arg = op
            if kind == "path":
                return await self.raw.find_by_metadata(user, arg[0], arg[1])
            if kind == "key":
                return await self.raw.with_metadata_key(user, arg)
            return await self.raw.metadata_contains(user, arg)

        async def ims(op: tuple[int, str, Any]) -> list[CrawlSession]:
            user, kind, arg = op
            async with self.ims.session(user_id=user) as s:
                if kind == "path":
                    return await s.crawl_sessions.find_by_metadata(path=arg[0], equals=arg[1])
                if kind == "key":
                    return await s.crawl_sessions.with_metadata_key(arg)
                return await s.crawl_sessions.metadata_contains(arg)

        return self._twin(sync, floor, ims)

    # --- aggregation -------------------------------------------------------------------

    def aggregate(self, sync: Workload) -> AsyncWorkload:
        admin = self.plan.admin

        async def floor(op: str) -> dict[str, int] | DurationStats:
            if op == "count_by_product":
                return await self.raw.count_by_product(admin)
            return await self.raw.duration_stats(admin)

        async def ims(op: str) -> dict[str, int] | DurationStats:
            async with self.ims.session(user_id=admin) as s:
                if op == "count_by_product":
                    return await s.issues.count_by_product()
                return await s.crawl_sessions.duration_stats()

        return self._twin(sync, floor, ims)

    # --- RLS-filtered lists ------------------------------------------------------------

    def rls_list(self, sync: Workload) -> AsyncWorkload:
        async def floor(op: tuple[int, str]) -> list[CrawlSession]:
            user, kind = op
            if kind == "list":
                return await self.raw.list_for_user(user, user)
            return await self.raw.find_sessions(user, "completed", PAGE)

        async def ims(op: tuple[int, str]) -> list[CrawlSession]:
            user, kind = op
            async with self.ims.session(user_id=user) as s:
                if kind == "list":
                    return await s.crawl_sessions.list_for_user(user)
                return await s.crawl_sessions.find(
                    status="completed", order_by=["-started_at"], limit=PAGE
                )

        return self._twin(sync, floor, ims)

    # --- concurrency -------------------------------------------------------------------

    def concurrency(self, points: Workload) -> AsyncWorkload:
        """Batches of 200 point reads in flight at once on pools of 10 connections: 200
        tasks on ``AsyncDatabase`` (and on the async floor) against 200 threads on
        ``Database`` (and on the sync floor), each read one checkout."""
        reads = points.ops
        ops = [
            [reads[(b * CONCURRENT_READS + i) % len(reads)] for i in range(CONCURRENT_READS)]
            for b in range(CONCURRENT_BATCHES)
        ]

        async def open_pools() -> None:
            if not self._opened_10:
                self._opened_10 = True
                await self.ims_10.open()
                await self.raw_10.open()

        def sync_pools() -> tuple[Database, Raw, ThreadPoolExecutor]:
            if self._sync_10 is None:
                url = self.bench.db.app_url
                self._sync_10 = (
                    Database(
                        url,
                        min_size=CONCURRENT_POOL,
                        max_size=CONCURRENT_POOL,
                        name="bench_sync_ims_10",
                    ),
                    Raw(url, max_size=CONCURRENT_POOL),
                    ThreadPoolExecutor(max_workers=CONCURRENT_READS),
                )
            return self._sync_10

        async def ims_read(op: tuple[int, int]) -> Issue | None:
            user, pk = op
            async with self.ims_10.session(user_id=user) as s:
                return await s.issues.get(pk)

        async def ims(batch: list[tuple[int, int]]) -> list[Issue | None]:
            await open_pools()
            return list(await asyncio.gather(*(ims_read(op) for op in batch)))

        async def floor(batch: list[tuple[int, int]]) -> list[Issue | None]:
            await open_pools()
            return list(await asyncio.gather(*(self.raw_10.get_issue(*op) for op in batch)))

        def sync_read(op: tuple[int, int]) -> Issue | None:
            user, pk = op
            with sync_pools()[0].session(user_id=user) as s:
                return s.issues.get(pk)

        def sync(batch: list[tuple[int, int]]) -> list[Issue | None]:
            return list(sync_pools()[2].map(sync_read, batch))

        def sync_floor(batch: list[tuple[int, int]]) -> list[Issue | None]:
            _, raw, threads = sync_pools()
            return list(threads.map(lambda op: raw.get_issue(*op), batch))

        def canon(impl: str, results: list[Any]) -> Any:
            return [[None if r is None else issue_record(r) for r in batch] for batch in results]

        return AsyncWorkload(
            name="concurrent_points",
            title=f"{CONCURRENT_READS} concurrent point reads on a pool of {CONCURRENT_POOL} "
            f"(async: {CONCURRENT_READS} tasks; sync: {CONCURRENT_READS} threads)",
            ops=ops,
            impls={"floor": floor, "ims_repo": ims, "sync": sync, "ref:sync_floor": sync_floor},
            canon=canon,
            target=Target(most=None),
            per_item=CONCURRENT_READS,
            warm_up=2,
        )

    # --- fresh ingest ------------------------------------------------------------------

    def ingest(self) -> AsyncWorkload:
        """The sync bench's fresh ingest: ``await db.upsert_issues(connections=2)`` against
        ``db.upsert_issues(connections=2)`` on the same items and the same table state."""
        bench = self.bench
        count = self.plan.issues
        user = bench.user(0)
        prefix = "NEW"

        def items() -> Iterator[dict[str, Any]]:
            return data.issue_items(count, prefix)

        async def ims(_: Any) -> int:
            result = await self.ims.upsert_issues(items(), user_id=user, connections=2)
            return result.inserted

        def sync(_: Any) -> int:
            return bench.ims.upsert_issues(items(), user_id=user, connections=2).inserted

        async def ims_one_connection(_: Any) -> int:
            async with self.ims.session(user_id=user) as s:
                return (await s.issues.upsert_many(items())).inserted

        return AsyncWorkload(
            name="ingest",
            title=f"fresh bulk ingest of {count} issues, upsert_issues(connections=2) "
            "(AsyncDatabase, awaited, against Database)",
            ops=[None],
            impls={
                "ims_repo": ims,
                "sync": sync,
                "ref:async_upsert_many": ims_one_connection,
            },
            canon=lambda impl, results: results,
            target=Target(top="ims_repo", bottom="sync", most=1.1),
            write=True,
            prepare=bench._reset_issues,
            verify=lambda _: bench._digest(f"{prefix}-%"),
            per_item=count,
        )
