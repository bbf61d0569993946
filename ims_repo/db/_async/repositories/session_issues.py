"""``s.session_issues``: links between a crawl session and the issues it crawled
(``queries/session_issues.sql``).

User-owned through ``user_id``, which is never taken from the caller: the statements copy
it from the session, and the composite foreign key (``session_id``, ``user_id``) makes
any other value impossible. A session the context cannot see (another user's, or none)
links nothing and raises ``NotFound``, the same for both, so nothing is revealed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from ims_repo.core.errors import InvalidInput, NotFound
from ims_repo.core.filters import Column, FilterSet
from ims_repo.core.records import NewSessionIssue, SessionIssue
from ims_repo.core.records.types import validate_all, validate_input
from ims_repo.core.statements.session_issues import (
    FIND,
    FOR_SESSION,
    GET,
    LINK,
    LINK_MANY,
    UNLINK,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

FILTERS = FilterSet(
    columns={
        "session_id": Column(int),
        "issue_pk": Column(int),
        "user_id": Column(int),
        "crawl_order": Column(int, nullable=True),
        "crawl_duration_ms": Column(int, nullable=True),
        "crawled_at": Column(datetime),
    },
    key="session_id",
)
"""``find`` filters, in the forms of ``ims_repo.core.filters``: ``session_id``
(``session_id_in=[…]``), ``issue_pk``, ``user_id``, ``crawl_order`` and
``crawl_duration_ms`` (``has_*=``), ``crawled_at`` (``crawled_at_from=``/``_to=``). The
default order is ``session_id`` then ``issue_pk``; ``issue_pk`` ends every order."""

_LINK_FIELDS = tuple(NewSessionIssue.model_fields)

SessionIssueInput = NewSessionIssue | Mapping[str, Any] | tuple[int | None, ...]
"""One link for ``link_many``: a record, a mapping of its fields, or a tuple
``(session_id, issue_pk[, crawl_order[, crawl_duration_ms]])``."""


class AsyncSessionIssueRepository(AsyncRepository):
    """Links between a crawl session and the issues it crawled: each context sees and
    writes only the links of its own sessions (an admin, all)."""

    async def get(self, session_id: int, issue_pk: int) -> SessionIssue | None:
        """The link of this session and issue, or None (also when RLS hides it)."""
        bound = GET.bind({"session_id": session_id, "issue_pk": issue_pk})
        return await self._session.fetch_one(bound, SessionIssue)

    async def for_session(self, session_id: int) -> list[SessionIssue]:
        """The session's links in crawl order (unordered ones last, then by issue);
        empty for a session RLS hides."""
        bound = FOR_SESSION.bind({"session_id": session_id})
        return await self._session.fetch_all(bound, SessionIssue)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        **filters: Any,
    ) -> list[SessionIssue]:
        """Visible links matching ``filters`` (see ``FILTERS``), ordered by ``order_by``
        keys (``-key`` descending; default ``session_id``, then ``issue_pk``).

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``session_id``: int
        - ``issue_pk``: int
        - ``user_id``: int
        - ``crawl_order``: int, nullable; also ``has_crawl_order``
        - ``crawl_duration_ms``: int, nullable; also ``has_crawl_duration_ms``
        - ``crawled_at``: timestamp; also ``crawled_at_from``, ``crawled_at_to``

        Order keys (``-key`` for descending; ``session_id``, the default, is added last when left
        out): ``crawl_duration_ms``, ``crawl_order``, ``crawled_at``, ``issue_pk``, ``session_id``,
        ``user_id``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset)
        return await self._session.fetch_all(bound, SessionIssue)

    async def link(
        self,
        session_id: int,
        issue_pk: int,
        crawl_order: int | None = None,
        crawl_duration_ms: int | None = None,
    ) -> SessionIssue:
        """Record that the session crawled the issue, with the session's ``user_id``.

        ``NotFound`` when the context cannot see the session (another user's or a
        missing one alike), ``Duplicate`` when the pair is already linked,
        ``ForeignKeyViolation`` when there is no such issue.
        """
        new = validate_input(
            NewSessionIssue,
            {
                "session_id": session_id,
                "issue_pk": issue_pk,
                "crawl_order": crawl_order,
                "crawl_duration_ms": crawl_duration_ms,
            },
        )
        linked = await self._session.fetch_one(LINK.bind(new.model_dump()), SessionIssue)
        if linked is None:
            raise _no_session(str(new.session_id))
        return linked

    async def link_many(self, links: Iterable[SessionIssueInput]) -> int:
        """Record many links in one statement, each with its session's ``user_id``; how
        many were written.

        All or nothing: every item is validated first (``InvalidInput`` naming its
        position, nothing sent); if any session is one the context cannot see,
        ``NotFound`` names those sessions and nothing is written; a pair already linked
        (or given twice) raises ``Duplicate``. An empty list sends nothing and returns 0.
        """
        items = validate_all(NewSessionIssue, _mappings(links), "links")
        if not items:
            return 0
        document = Jsonb([item.model_dump() for item in items])
        [row] = await self._session.fetch_rows(LINK_MANY.bind({"links": document}))
        missing: list[int] | None = row["missing_sessions"]
        if missing:
            raise _no_session(", ".join(str(session_id) for session_id in missing))
        return int(row["linked"])

    async def unlink(self, session_id: int, issue_pk: int) -> bool:
        """Remove the link of this session and issue; False if absent or hidden."""
        bound = UNLINK.bind({"session_id": session_id, "issue_pk": issue_pk})
        return await self._session.run(bound) > 0


def _mappings(links: Iterable[SessionIssueInput]) -> Iterable[Any]:
    """The links with tuples turned into mappings; other items pass unchanged (they are
    validated afterwards, with their position)."""
    if isinstance(links, str | bytes | Mapping) or not isinstance(links, Iterable):
        raise InvalidInput(f"links must be an iterable of links, not {type(links).__name__}")
    for index, link in enumerate(links):
        if isinstance(link, tuple):
            if not 2 <= len(link) <= len(_LINK_FIELDS):
                raise InvalidInput(
                    f"links[{index}]: a tuple is (session_id, issue_pk[, crawl_order"
                    f"[, crawl_duration_ms]]), not {len(link)} items"
                )
            yield dict(zip(_LINK_FIELDS, link, strict=False))
        else:
            yield link


def _no_session(session_ids: str) -> NotFound:
    return NotFound(
        f"ims.crawl_sessions has no visible session_id={session_ids}; nothing was linked",
        table="crawl_sessions",
        key=session_ids,
    )
