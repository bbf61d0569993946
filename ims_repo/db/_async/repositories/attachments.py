"""``s.attachments``: attachments of issues (``queries/attachments.sql``), shared.

``session_id`` records which crawl session downloaded a file. It is a plain reference
without a foreign key on purpose (SPEC §2/§3): a shared row must neither depend on
another user's session nor reveal, through a different error, whether one exists. So
any ``session_id`` is stored as given, and nothing here checks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ims_repo.core.errors import InvalidInput
from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.records import Attachment, NewAttachment
from ims_repo.core.records.types import validate_changes, validate_input
from ims_repo.core.statements.attachments import (
    CREATE,
    DELETE,
    FIND,
    FOR_ISSUE,
    GET,
    UPDATE,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

FILTERS = FilterSet(
    columns={
        "attachment_id": Column(int),
        "issue_pk": Column(int),
        "session_id": Column(int, nullable=True),
        "filename": Column(str),
        "file_type": Column(str, nullable=True),
        "file_size": Column(int, nullable=True),
        "storage_path": Column(str, nullable=True),
        "checksum_sha256": Column(str, nullable=True),
        "downloaded_at": Column(datetime),
    },
    key="attachment_id",
)
"""``find`` filters, in the forms of ``ims_repo.core.filters``: ``attachment_id``,
``issue_pk``, ``session_id`` (``has_session_id=``), ``filename`` (``filename_like=``),
``file_type`` (``file_type_in=[…]``), ``file_size``, ``storage_path``,
``checksum_sha256`` (``has_checksum_sha256=``) and ``downloaded_at``
(``downloaded_at_from=``/``_to=``)."""

UPDATABLE = tuple(name for name in NewAttachment.model_fields if name != "issue_pk")
"""Fields ``update`` may change: all but the issue the attachment belongs to."""


class AsyncAttachmentRepository(AsyncRepository):
    """Attachments of issues: shared, and deleted with their issue."""

    async def get(self, attachment_id: int) -> Attachment | None:
        """The attachment with this id, or None."""
        return await self._session.fetch_one(GET.bind({"attachment_id": attachment_id}), Attachment)

    async def for_issue(self, issue_pk: int) -> list[Attachment]:
        """The issue's attachments in the order they were stored."""
        return await self._session.fetch_all(FOR_ISSUE.bind({"issue_pk": issue_pk}), Attachment)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[Attachment]:
        """Attachments matching ``filters`` (see ``FILTERS``), ordered by ``order_by``
        keys (``-key`` descending; default ``attachment_id``).

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``attachment_id``: int
        - ``issue_pk``: int
        - ``session_id``: int, nullable; also ``has_session_id``
        - ``filename``: text; also ``filename_like``
        - ``file_type``: text, nullable; also ``file_type_like``, ``has_file_type``
        - ``file_size``: int, nullable; also ``has_file_size``
        - ``storage_path``: text, nullable; also ``storage_path_like``, ``has_storage_path``
        - ``checksum_sha256``: text, nullable; also ``checksum_sha256_like``,
          ``has_checksum_sha256``
        - ``downloaded_at``: timestamp; also ``downloaded_at_from``, ``downloaded_at_to``

        Order keys (``-key`` for descending; ``attachment_id``, the default, is added last when left
        out): ``attachment_id``, ``checksum_sha256``, ``downloaded_at``, ``file_size``,
        ``file_type``, ``filename``, ``issue_pk``, ``session_id``, ``storage_path``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, Attachment)

    async def create(self, new: NewAttachment | Mapping[str, Any]) -> Attachment:
        """Record an attachment (``downloaded_at`` defaults to now);
        ``ForeignKeyViolation`` if there is no such issue. ``session_id`` is stored
        as given, whoever's session it names, if any."""
        attachment = validate_input(NewAttachment, new)
        created = await self._session.fetch_one(CREATE.bind(attachment.model_dump()), Attachment)
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    async def update(self, attachment_id: int, /, **fields: Any) -> Attachment:
        """Change the given fields (not ``issue_pk``); ``NotFound`` if there is no such
        attachment. ``downloaded_at`` can be moved but not cleared."""
        changes = validate_changes(NewAttachment, fields, allowed=UPDATABLE)
        if "downloaded_at" in changes and changes["downloaded_at"] is None:
            raise InvalidInput("NewAttachment: downloaded_at: cannot be cleared (NOT NULL)")
        return await self._update(
            UPDATE, Attachment, "attachments", ("attachment_id", attachment_id), changes
        )

    async def delete(self, attachment_id: int) -> bool:
        """Remove an attachment record (not the stored file); False if there was none."""
        return await self._session.run(DELETE.bind({"attachment_id": attachment_id})) > 0
