"""``s.comments``: comments of issues (``queries/comments.sql``), shared by every user."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, overload

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.records import IssueComment, NewIssueComment
from ims_repo.core.records.types import (
    issue_of,
    split_create,
    validate_all,
    validate_changes,
    validate_input,
)
from ims_repo.core.statements.comments import (
    ADD_MANY,
    CREATE,
    DELETE,
    FIND,
    FOR_ISSUE,
    GET,
    UPDATE,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

M = TypeVar("M", bound=BaseModel)


FILTERS = FilterSet(
    columns={
        "comment_id": Column(int),
        "issue_pk": Column(int),
        "author": Column(str, nullable=True),
        "content": Column(str, sortable=False),
        "commented_at": Column(datetime, nullable=True),
        "comment_order": Column(int, nullable=True),
    },
    key="comment_id",
)
"""``find`` filters, in the forms of ``ims_repo.core.filters``: ``comment_id``, ``issue_pk``,
``author`` (``author_like=``, ``has_author=``), ``content`` (``content_like=``; not a sort
key), ``commented_at`` (``commented_at_from=``/``_to=``, ``has_commented_at=``) and
``comment_order`` (``has_comment_order=``)."""

UPDATABLE = tuple(name for name in NewIssueComment.model_fields if name != "issue_pk")
"""Fields ``update`` may change: all but the issue the comment belongs to."""


class AsyncCommentRepository(AsyncRepository):
    """Comments of issues: shared, and deleted with their issue."""

    async def get(self, comment_id: int) -> IssueComment | None:
        """The comment with this id, or None."""
        return await self._session.fetch_one(GET.bind({"comment_id": comment_id}), IssueComment)

    async def for_issue(self, issue_pk: int) -> list[IssueComment]:
        """The issue's comments by ``comment_order`` (unordered ones last), then time."""
        return await self._session.fetch_all(FOR_ISSUE.bind({"issue_pk": issue_pk}), IssueComment)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[IssueComment]:
        """Comments matching ``filters`` (see ``FILTERS``), ordered by ``order_by`` keys
        (``-key`` descending; default ``comment_id``); no ``limit`` returns all.

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``comment_id``: int
        - ``issue_pk``: int
        - ``author``: text, nullable; also ``author_like``, ``has_author``
        - ``content``: text; also ``content_like``
        - ``commented_at``: timestamp, nullable; also ``has_commented_at``, ``commented_at_from``,
          ``commented_at_to``
        - ``comment_order``: int, nullable; also ``has_comment_order``

        Order keys (``-key`` for descending; ``comment_id``, the default, is added last when left
        out): ``author``, ``comment_id``, ``comment_order``, ``commented_at``, ``issue_pk``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, IssueComment)

    @overload
    async def create(self, new: NewIssueComment | Mapping[str, Any], /) -> IssueComment: ...

    @overload
    async def create(
        self, issue_pk: int, new: NewIssueComment | Mapping[str, Any], /
    ) -> IssueComment: ...

    async def create(
        self,
        issue_or_new: int | NewIssueComment | Mapping[str, Any],
        new: NewIssueComment | Mapping[str, Any] | None = None,
        /,
    ) -> IssueComment:
        """Add a comment to the issue; ``ForeignKeyViolation`` if there is no such issue.

        ``create(record)`` takes the issue from ``record.issue_pk``; ``create(issue_pk,
        new)`` names it, and ``new`` may then leave ``issue_pk`` out (naming another
        issue is ``InvalidInput``).
        """
        issue_pk, new = split_create("NewIssueComment", issue_or_new, new)
        comment = validate_input(NewIssueComment, new)
        pk = issue_of(comment, issue_pk, "NewIssueComment")
        bound = CREATE.bind({**comment.model_dump(), "issue_pk": pk})
        created = await self._session.fetch_one(bound, IssueComment)
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    async def update(self, comment_id: int, /, **fields: Any) -> IssueComment:
        """Change the given fields (not ``issue_pk``); ``NotFound`` if there is no such
        comment."""
        changes = validate_changes(NewIssueComment, fields, allowed=UPDATABLE)
        return await self._update(
            UPDATE, IssueComment, "issue_comments", ("comment_id", comment_id), changes
        )

    async def delete(self, comment_id: int) -> bool:
        """Remove a comment; False if there was none."""
        return await self._session.run(DELETE.bind({"comment_id": comment_id})) > 0

    async def add_many(
        self, issue_pk: int, comments: Iterable[NewIssueComment | Mapping[str, Any]]
    ) -> int:
        """Add all ``comments`` to the issue in one statement; how many were added.

        Every item is validated first: one bad item raises ``InvalidInput`` naming its
        position, and nothing is sent. The statement itself is all or nothing, and the
        comments get ids in the order given. An empty list sends nothing and returns 0.
        """
        items = validate_all(NewIssueComment, comments, "comments")
        for index, item in enumerate(items):
            issue_of(item, issue_pk, f"comments[{index}]")
        if not items:
            return 0
        document = Jsonb([item.model_dump(mode="json", exclude={"issue_pk"}) for item in items])
        return await self._session.run(ADD_MANY.bind({"issue_pk": issue_pk, "comments": document}))
