"""``s.audit``: the audit trail, read-only (``queries/audit.sql``)."""

from __future__ import annotations

from typing import Any

from ims_repo.core.errors import InvalidInput
from ims_repo.core.filters import Column, FilterSet
from ims_repo.core.records import AuditLog
from ims_repo.core.statements.audit import (
    FIND,
)
from ims_repo.db._async.repositories.base import AsyncRepository

FILTERS = FilterSet(
    columns={"table_name": Column(str), "record_id": Column(str)},
    key="audit_id",
)
"""What ``find`` narrows by: the changed table and the changed row's key."""


class AsyncAuditRepository(AsyncRepository):
    """The audit trail written by the triggers on users, issues and crawl_sessions.

    Read-only: the runtime role can neither write, change nor delete audit rows. It
    sees the rows of changes its own user made (an admin: every row with an actor;
    rows written without context are read by the owner only).
    """

    async def find(
        self,
        *,
        table_name: str | None = None,
        record_id: str | int | None = None,
        limit: int = 100,
    ) -> list[AuditLog]:
        """The newest visible audit rows, newest first, optionally only those of
        ``table_name`` (e.g. ``"issues"``) and/or of one row's key ``record_id``: who
        inserted or changed that row, when, and what changed (``AuditLog``)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive int, not {limit!r}")
        filters: dict[str, Any] = {}
        if table_name is not None:
            filters["table_name"] = table_name
        if record_id is not None:
            if isinstance(record_id, int) and not isinstance(record_id, bool):
                record_id = str(record_id)  # keys are stored as text
            filters["record_id"] = record_id
        bound = FIND.bind({"limit": limit}, filters=FILTERS.where(filters))
        return await self._session.fetch_all(bound, AuditLog)
