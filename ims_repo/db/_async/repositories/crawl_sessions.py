"""``s.crawl_sessions``: crawl runs (``queries/crawl_sessions.sql``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from ims_repo.core.errors import InvalidInput
from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.records import CrawledIssue, CrawlSession, DurationStats, Issue, NewCrawlSession
from ims_repo.core.records.types import (
    JsonObject,
    SessionStatus,
    Text,
    validate_changes,
    validate_input,
    validate_value,
)
from ims_repo.core.statements.crawl_sessions import (
    CREATE,
    DELETE,
    DURATION_STATS,
    FIND,
    GET,
    GET_BY_UUID,
    ISSUES,
    LIST_FOR_USER,
    METADATA_CONTAINS,
    UPDATE,
    WITH_METADATA_KEY,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

FILTERS = FilterSet(
    columns={
        "session_id": Column(int),
        "session_uuid": Column(UUID),
        "user_id": Column(int),
        "product": Column(str),
        "original_query": Column(str),
        "query_language": Column(str, nullable=True),
        "status": Column(SessionStatus),
        "started_at": Column(datetime, nullable=True),
        "completed_at": Column(datetime, nullable=True),
        "duration_seconds": Column(int, nullable=True),
        "total_issues": Column(int),
        "data_path": Column(str, nullable=True),
        "created_at": Column(datetime),
    },
    key="session_id",
)
"""``find`` filters, in the forms of ``ims_repo.core.filters``: e.g. ``status="completed"``,
``status_not=``, ``status_in=[…]``, ``product_like="Open%"``, ``has_data_path=True``,
``started_at_from=``/``started_at_to=``."""

UPDATABLE = tuple(
    name for name in NewCrawlSession.model_fields if name not in ("user_id", "session_uuid")
)
"""Fields ``update`` may change: all but the owner and the UUID."""

_PATH = TypeAdapter(list[Text])
_JSON_OBJECT = TypeAdapter(JsonObject)
_KEY = TypeAdapter(Text)


class AsyncCrawlSessionRepository(AsyncRepository):
    """Crawl sessions: each context sees and writes only its own (an admin, all)."""

    async def get(self, session_id: int) -> CrawlSession | None:
        """The session with this id, or None (also when RLS hides it)."""
        return await self._session.fetch_one(GET.bind({"session_id": session_id}), CrawlSession)

    async def get_by_uuid(self, session_uuid: UUID | str) -> CrawlSession | None:
        """The session with this UUID, or None."""
        try:
            key = UUID(str(session_uuid))
        except ValueError:
            raise InvalidInput(f"not a UUID: {session_uuid!r}") from None
        return await self._session.fetch_one(GET_BY_UUID.bind({"session_uuid": key}), CrawlSession)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[CrawlSession]:
        """Visible sessions matching ``filters`` (see ``FILTERS``), ordered by
        ``order_by`` keys (``-key`` descending; default ``session_id``).

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``session_id``: int
        - ``session_uuid``: uuid
        - ``user_id``: int
        - ``product``: text; also ``product_like``
        - ``original_query``: text; also ``original_query_like``
        - ``query_language``: text, nullable; also ``query_language_like``, ``has_query_language``
        - ``status``: ``"pending"`` | ``"running"`` | ``"completed"`` | ``"failed"`` |
          ``"cancelled"``
        - ``started_at``: timestamp, nullable; also ``has_started_at``, ``started_at_from``,
          ``started_at_to``
        - ``completed_at``: timestamp, nullable; also ``has_completed_at``, ``completed_at_from``,
          ``completed_at_to``
        - ``duration_seconds``: int, nullable; also ``has_duration_seconds``
        - ``total_issues``: int
        - ``data_path``: text, nullable; also ``data_path_like``, ``has_data_path``
        - ``created_at``: timestamp; also ``created_at_from``, ``created_at_to``

        Order keys (``-key`` for descending; ``session_id``, the default, is added last when left
        out): ``completed_at``, ``created_at``, ``data_path``, ``duration_seconds``,
        ``original_query``, ``product``, ``query_language``, ``session_id``, ``session_uuid``,
        ``started_at``, ``status``, ``total_issues``, ``user_id``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, CrawlSession)

    async def list_for_user(self, user_id: int) -> list[CrawlSession]:
        """The user's sessions, oldest first (empty for a user RLS hides)."""
        return await self._session.fetch_all(LIST_FOR_USER.bind({"user_id": user_id}), CrawlSession)

    async def create(self, new: NewCrawlSession | Mapping[str, Any]) -> CrawlSession:
        """Record a session; ``PermissionDenied`` when ``user_id`` is not the context's."""
        crawl = validate_input(NewCrawlSession, new)
        params = crawl.model_dump()
        params["session_metadata"] = Jsonb(crawl.session_metadata)
        created = await self._session.fetch_one(CREATE.bind(params), CrawlSession)
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    async def update(self, session_id: int, /, **fields: Any) -> CrawlSession:
        """Change the given fields; ``NotFound`` if the session is absent or hidden."""
        changes = validate_changes(NewCrawlSession, fields, allowed=UPDATABLE)
        return await self._update(
            UPDATE, CrawlSession, "crawl_sessions", ("session_id", session_id), changes
        )

    async def delete(self, session_id: int) -> bool:
        """Remove a session with its links and errors; False if absent or hidden."""
        return await self._session.run(DELETE.bind({"session_id": session_id})) > 0

    async def duration_stats(self) -> DurationStats:
        """``avg``, ``min`` and ``max`` of ``duration_seconds`` over visible sessions."""
        stats = await self._session.fetch_one(DURATION_STATS.bind({}), DurationStats)
        assert stats is not None  # an aggregate always returns one row
        return stats

    async def find_by_metadata(self, *, path: Sequence[str], equals: Any) -> list[CrawlSession]:
        """Sessions whose metadata has ``equals`` at the key ``path``
        (``path=["nl_parsing", "method"], equals="rule_based"``).

        The JSON value must equal ``equals`` exactly, type included ("1" is not 1).
        """
        keys = validate_value(_PATH, list(path) if not isinstance(path, str) else path, "path")
        if not keys:
            raise InvalidInput("path needs at least one key")
        document: Any = equals
        for key in reversed(keys):
            document = {key: document}
        return await self.metadata_contains(document)

    async def with_metadata_key(self, key: str) -> list[CrawlSession]:
        """Sessions whose metadata has the top-level ``key``."""
        checked = validate_value(_KEY, key, "key")
        return await self._session.fetch_all(WITH_METADATA_KEY.bind({"key": checked}), CrawlSession)

    async def metadata_contains(self, document: Mapping[str, Any]) -> list[CrawlSession]:
        """Sessions whose metadata contains the JSON object ``document``."""
        checked = validate_value(_JSON_OBJECT, document, "document")
        bound = METADATA_CONTAINS.bind({"document": Jsonb(checked)})
        return await self._session.fetch_all(bound, CrawlSession)

    async def issues(self, session_id: int) -> list[CrawledIssue]:
        """The issues the session crawled, each with its crawl order, duration and time,
        in crawl order (unordered ones last, then by issue), in one statement; empty for
        a session the context cannot see."""
        rows = await self._session.fetch_rows(ISSUES.bind({"session_id": session_id}))
        return [
            CrawledIssue(
                issue=Issue.model_validate({name: row[name] for name in Issue.model_fields}),
                crawl_order=row["crawl_order"],
                crawl_duration_ms=row["crawl_duration_ms"],
                crawled_at=row["crawled_at"],
            )
            for row in rows
        ]
