"""``s.search``: ranked issue search (``queries/search.sql``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from ims_repo.core.records import SearchHit
from ims_repo.core.records.types import Text, validate_value
from ims_repo.core.statements.search import (
    ISSUES,
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
