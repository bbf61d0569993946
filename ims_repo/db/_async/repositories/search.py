"""``s.search``: ranked issue search (``queries/search.sql``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from ims_repo.core.records import SearchHit
from ims_repo.core.records.types import Text, validate_value
from ims_repo.core.statements.search import (
    ISSUES,
    REFRESH_BOUNDS,
)
from ims_repo.db._async.repositories.base import AsyncRepository

MAX_LIMIT = 1000
"""Most hits one search returns (``limit`` above it is refused)."""

MAX_QUERY_LENGTH = 10_000
"""Longest search text accepted: a search box gets words, and a megabyte of them would
exhaust the server's stack while parsing the query (then refused only after SQL)."""

_QUERY = TypeAdapter(Annotated[Text, Field(max_length=MAX_QUERY_LENGTH)])
_PRODUCT = TypeAdapter(Text | None)
_LIMIT = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_LIMIT)])
_BATCH = TypeAdapter(Annotated[int, Field(ge=1)])


class AsyncSearchRepository(AsyncRepository):
    """Issue search through ``ims.search_issues`` (shared issues: every context sees
    the same hits)."""

    async def issues(
        self, query: str, product: str | None = None, limit: int = 50
    ) -> list[SearchHit]:
        """Hits for ``query``, best first, at most ``limit`` (1 to 1000).

        ``query`` is read as web-search syntax (``"quoted phrase"``, ``or``, ``-word``),
        so any text is a valid query; an empty one finds nothing. Full-text hits come
        first (``rank`` > 0, english stemming and words as typed; a Korean word of two
        or more syllables is a word start, so ``시간`` finds ``시간이``): exactly the
        ``limit`` best by ``ts_rank`` of all matches, found without ranking them all
        when the database can prove it (migration 0009). When they are fewer than
        ``limit`` and the query has no web-search operator, issues whose title contains
        the query's words as text follow (``rank`` <= 0): a word inside a compound
        (``연결`` in ``데이터베이스연결``).
        """
        params = {
            "query": validate_value(_QUERY, query, "query"),
            "product": validate_value(_PRODUCT, product, "product"),
            "max_results": validate_value(_LIMIT, limit, "limit"),
        }
        bound = ISSUES.bind(params)
        return await self._session.fetch_all(bound, SearchHit)

    async def refresh_bounds(self, max_issues: int = 10_000) -> int:
        """Compute the rank bounds of up to ``max_issues`` issues written since their
        last refresh (oldest first) and return how many; 0 when none is left.

        Writing an issue does not compute its bounds (migration 0011: that was the
        largest part of an insert's cost); until a refresh, a broad query ranks every
        such issue that matches, so the hits are the same, only slower as the backlog
        grows. Call it after an ingest, or from a background job, committing after each
        call (the issues it took are locked for the stale-marking of other writers
        until then); it never waits for a lock, and skips issues another transaction
        is writing."""
        bound = REFRESH_BOUNDS.bind(
            {"max_issues": validate_value(_BATCH, max_issues, "max_issues")}
        )
        return int(await self._session.fetch_value(bound))
