"""The async floor: ``bench.raw``'s reads written by hand on async psycopg 3.

The same statements, the same records, the same one round trip per read: a checkout from
a ``psycopg_pool.AsyncConnectionPool`` of autocommit connections, then
``set_config('ims.current_user_id', …, true)`` and the query in one pipeline (the
statements before the pipeline's Sync form one implicit transaction, which ends the
context with the result), tuples zipped with the column names and validated by pydantic.
Only the I/O is awaited; everything else is ``bench.raw``'s own code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bench.raw import (
    _DETAILS,
    _SET_CONTEXT,
    COUNT_BY_PRODUCT,
    DURATION_STATS,
    FIND_DETAILED_JSON,
    FIND_ISSUES,
    FIND_ISSUES_AFTER,
    FIND_SESSIONS,
    GET_ISSUE,
    GET_SESSION,
    ISSUE_COLUMNS,
    LIST_FOR_USER,
    METADATA_CONTAINS,
    METADATA_KEY,
    SEARCH,
    SEARCH_COLUMNS,
    SESSION_COLUMNS,
    _record,
    _records,
)
from ims_repo import CrawlSession, DurationStats, Issue, IssueDetail, SearchHit


class AsyncRaw:
    """The async floor's "database module": an async pool and one coroutine per read."""

    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            name="bench_aio_raw",
            open=False,
        )

    async def open(self) -> None:
        await self.pool.open(wait=True)

    async def close(self) -> None:
        await self.pool.close()

    async def read(
        self, user_id: int | None, query: str, params: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """``query``'s rows, in one checkout and one round trip (context + query pipelined)."""
        async with self.pool.connection() as conn:
            cursor = conn.cursor()
            async with conn.pipeline():
                await conn.execute(_SET_CONTEXT, ("" if user_id is None else str(user_id),))
                await cursor.execute(query, params)
            return await cursor.fetchall()

    # --- reads (bench.raw.Raw's, awaited) --------------------------------------------------

    async def get_issue(self, user_id: int, issue_pk: int) -> Issue | None:
        rows = await self.read(user_id, GET_ISSUE, (issue_pk,))
        return _record(Issue, ISSUE_COLUMNS, rows[0] if rows else None)

    async def get_session(self, user_id: int, session_id: int) -> CrawlSession | None:
        rows = await self.read(user_id, GET_SESSION, (session_id,))
        return _record(CrawlSession, SESSION_COLUMNS, rows[0] if rows else None)

    async def find_issues(
        self,
        user_id: int,
        product: str,
        statuses: list[str],
        limit: int,
        offset: int,
        after: tuple[Any, int] | None = None,
    ) -> list[Issue]:
        if after is None:
            rows = await self.read(user_id, FIND_ISSUES, (product, statuses, limit, offset))
        else:
            updated, pk = after
            params = (product, statuses, updated, updated, pk, limit)
            rows = await self.read(user_id, FIND_ISSUES_AFTER, params)
        return _records(Issue, ISSUE_COLUMNS, rows)

    async def find_detailed_json(self, user_id: int, product: str, limit: int) -> list[IssueDetail]:
        rows = await self.read(user_id, FIND_DETAILED_JSON, (product, limit))
        return _DETAILS.validate_json(rows[0][0])

    async def search(self, user_id: int, query: str, limit: int) -> list[SearchHit]:
        rows = await self.read(user_id, SEARCH, (query, None, limit))
        return _records(SearchHit, SEARCH_COLUMNS, rows)

    async def metadata_contains(
        self, user_id: int, document: Mapping[str, Any]
    ) -> list[CrawlSession]:
        rows = await self.read(user_id, METADATA_CONTAINS, (Jsonb(document),))
        return _records(CrawlSession, SESSION_COLUMNS, rows)

    async def find_by_metadata(
        self, user_id: int, path: Sequence[str], equals: Any
    ) -> list[CrawlSession]:
        document: Any = equals
        for key in reversed(path):
            document = {key: document}
        return await self.metadata_contains(user_id, document)

    async def with_metadata_key(self, user_id: int, key: str) -> list[CrawlSession]:
        rows = await self.read(user_id, METADATA_KEY, (key,))
        return _records(CrawlSession, SESSION_COLUMNS, rows)

    async def count_by_product(self, user_id: int) -> dict[str, int]:
        rows = await self.read(user_id, COUNT_BY_PRODUCT, ())
        return {product: count for product, count in rows}

    async def duration_stats(self, user_id: int) -> DurationStats:
        avg, low, high = (await self.read(user_id, DURATION_STATS, ()))[0]
        return DurationStats(avg=avg, min=low, max=high)

    async def list_for_user(self, user_id: int, owner: int) -> list[CrawlSession]:
        rows = await self.read(user_id, LIST_FOR_USER, (owner,))
        return _records(CrawlSession, SESSION_COLUMNS, rows)

    async def find_sessions(self, user_id: int, status: str, limit: int) -> list[CrawlSession]:
        rows = await self.read(user_id, FIND_SESSIONS, (status, limit))
        return _records(CrawlSession, SESSION_COLUMNS, rows)
