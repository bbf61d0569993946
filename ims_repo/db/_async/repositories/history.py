"""``s.history``: field-change history of issues (``queries/history.sql``), shared."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, overload

from psycopg.types.json import Jsonb

from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.records import IssueHistory, NewIssueHistory
from ims_repo.core.records.types import issue_of, split_create, validate_all, validate_input
from ims_repo.core.statements.history import (
    ADD_MANY,
    CREATE,
    DELETE,
    FIND,
    FOR_ISSUE,
    GET,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

FILTERS = FilterSet(
    columns={
        "history_id": Column(int),
        "issue_pk": Column(int),
        "changed_at": Column(datetime),
        "changed_by": Column(str, nullable=True),
        "field_name": Column(str),
        "old_value": Column(str, nullable=True),
        "new_value": Column(str, nullable=True),
    },
    key="history_id",
)
"""``find`` filters, in the forms of ``ims_repo.core.filters``: ``history_id``, ``issue_pk``,
``changed_at`` (``changed_at_from=``/``_to=``), ``changed_by``, ``field_name``
(``field_name_in=[…]``), ``old_value`` and ``new_value`` (``*_like=``, ``has_*=``)."""


class AsyncHistoryRepository(AsyncRepository):
    """Field changes of issues as the IMS reports them: shared, deleted with their
    issue, and not updatable (they are facts from the IMS)."""

    async def get(self, history_id: int) -> IssueHistory | None:
        """The history entry with this id, or None."""
        return await self._session.fetch_one(GET.bind({"history_id": history_id}), IssueHistory)

    async def for_issue(self, issue_pk: int) -> list[IssueHistory]:
        """The issue's field changes by ``changed_at`` (ties in the order stored)."""
        return await self._session.fetch_all(FOR_ISSUE.bind({"issue_pk": issue_pk}), IssueHistory)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[IssueHistory]:
        """History entries matching ``filters`` (see ``FILTERS``), ordered by
        ``order_by`` keys (``-key`` descending; default ``history_id``).

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``history_id``: int
        - ``issue_pk``: int
        - ``changed_at``: timestamp; also ``changed_at_from``, ``changed_at_to``
        - ``changed_by``: text, nullable; also ``changed_by_like``, ``has_changed_by``
        - ``field_name``: text; also ``field_name_like``
        - ``old_value``: text, nullable; also ``old_value_like``, ``has_old_value``
        - ``new_value``: text, nullable; also ``new_value_like``, ``has_new_value``

        Order keys (``-key`` for descending; ``history_id``, the default, is added last when left
        out): ``changed_at``, ``changed_by``, ``field_name``, ``history_id``, ``issue_pk``,
        ``new_value``, ``old_value``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, IssueHistory)

    @overload
    async def create(self, new: NewIssueHistory | Mapping[str, Any], /) -> IssueHistory: ...

    @overload
    async def create(
        self, issue_pk: int, new: NewIssueHistory | Mapping[str, Any], /
    ) -> IssueHistory: ...

    async def create(
        self,
        issue_or_new: int | NewIssueHistory | Mapping[str, Any],
        new: NewIssueHistory | Mapping[str, Any] | None = None,
        /,
    ) -> IssueHistory:
        """Record a field change (``changed_at`` defaults to now);
        ``ForeignKeyViolation`` if there is no such issue.

        ``create(record)`` takes the issue from ``record.issue_pk``; ``create(issue_pk,
        new)`` names it, and ``new`` may then leave ``issue_pk`` out (naming another
        issue is ``InvalidInput``).
        """
        issue_pk, new = split_create("NewIssueHistory", issue_or_new, new)
        change = validate_input(NewIssueHistory, new)
        pk = issue_of(change, issue_pk, "NewIssueHistory")
        bound = CREATE.bind({**change.model_dump(), "issue_pk": pk})
        created = await self._session.fetch_one(bound, IssueHistory)
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    async def delete(self, history_id: int) -> bool:
        """Remove a history entry; False if there was none."""
        return await self._session.run(DELETE.bind({"history_id": history_id})) > 0

    async def add_many(
        self, issue_pk: int, changes: Iterable[NewIssueHistory | Mapping[str, Any]]
    ) -> int:
        """Record all ``changes`` for the issue in one statement; how many were added.

        Validated first (a bad item raises ``InvalidInput`` naming its position, and
        nothing is sent); all or nothing; ``changed_at`` defaults to now. An empty list
        sends nothing and returns 0.
        """
        items = validate_all(NewIssueHistory, changes, "changes")
        for index, item in enumerate(items):
            issue_of(item, issue_pk, f"changes[{index}]")
        if not items:
            return 0
        document = Jsonb([item.model_dump(mode="json", exclude={"issue_pk"}) for item in items])
        return await self._session.run(ADD_MANY.bind({"issue_pk": issue_pk, "changes": document}))
