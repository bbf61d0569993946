"""``s.search_queries``: the search log: each user's searches (``queries/search_queries.sql``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.records import NewSearchQuery, SearchQuery
from ims_repo.core.records.types import validate_input
from ims_repo.core.statements.search_queries import (
    DELETE,
    FIND,
    GET,
    LOG,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

FILTERS = FilterSet(
    columns={
        "query_id": Column(int),
        "user_id": Column(int),
        "session_id": Column(int, nullable=True),
        "query_text": Column(str),
        "parsed_query": Column(str, nullable=True),
        "query_language": Column(str, nullable=True),
        "result_count": Column(int, nullable=True),
        "execution_time_ms": Column(int, nullable=True),
        "executed_at": Column(datetime),
    },
    key="query_id",
)
"""``find`` filters, in the forms of ``ims_repo.core.filters``: ``user_id=``, ``session_id=``
(``has_session_id=False`` for searches outside a session), ``query_text=`` /
``query_text_like=``, ``query_language=``, ``result_count=`` (``has_result_count=``),
``execution_time_ms=``, ``executed_at_from=``/``executed_at_to=``; each also as
``_not``/``_in``."""


class AsyncSearchQueryRepository(AsyncRepository):
    """The search log: each context sees and writes only its own searches (an admin,
    all)."""

    async def get(self, query_id: int) -> SearchQuery | None:
        """The logged search with this id, or None (also when RLS hides it)."""
        return await self._session.fetch_one(GET.bind({"query_id": query_id}), SearchQuery)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[SearchQuery]:
        """Visible searches matching ``filters`` (see ``FILTERS``), ordered by
        ``order_by`` keys (``-key`` descending; default ``query_id``).

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``query_id``: int
        - ``user_id``: int
        - ``session_id``: int, nullable; also ``has_session_id``
        - ``query_text``: text; also ``query_text_like``
        - ``parsed_query``: text, nullable; also ``parsed_query_like``, ``has_parsed_query``
        - ``query_language``: text, nullable; also ``query_language_like``, ``has_query_language``
        - ``result_count``: int, nullable; also ``has_result_count``
        - ``execution_time_ms``: int, nullable; also ``has_execution_time_ms``
        - ``executed_at``: timestamp; also ``executed_at_from``, ``executed_at_to``

        Order keys (``-key`` for descending; ``query_id``, the default, is added last when left
        out): ``executed_at``, ``execution_time_ms``, ``parsed_query``, ``query_id``,
        ``query_language``, ``query_text``, ``result_count``, ``session_id``, ``user_id``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, SearchQuery)

    async def log(self, new: NewSearchQuery | Mapping[str, Any]) -> SearchQuery:
        """Record a search a crawler ran. ``PermissionDenied`` when ``user_id`` is not
        the context's; ``ForeignKeyViolation`` when ``session_id`` is not that user's."""
        search = validate_input(NewSearchQuery, new)
        logged = await self._session.fetch_one(LOG.bind(search.model_dump()), SearchQuery)
        assert logged is not None  # INSERT … RETURNING gives the row
        return logged

    async def delete(self, query_id: int) -> bool:
        """Remove one logged search; False if absent or hidden."""
        return await self._session.run(DELETE.bind({"query_id": query_id})) > 0
