"""``s.session_errors``: errors met during crawl sessions (``queries/session_errors.sql``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.records import NewSessionError, SessionError
from ims_repo.core.records.types import ErrorSeverity, validate_input, validate_value
from ims_repo.core.statements.session_errors import (
    CREATE,
    DELETE,
    DELETE_BY_SEVERITY,
    FIND,
    FOR_SESSION,
    GET,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

FILTERS = FilterSet(
    columns={
        "error_id": Column(int),
        "session_id": Column(int),
        "user_id": Column(int),
        "severity": Column(ErrorSeverity),
        "error_type": Column(str),
        "error_message": Column(str, sortable=False),
        "stack_trace": Column(str, nullable=True, sortable=False),
        "issue_id": Column(str, nullable=True),
        "occurred_at": Column(datetime),
    },
    key="error_id",
)
"""``find`` filters, in the forms of ``ims_repo.core.filters``: ``session_id=``, ``user_id=``,
``severity=`` / ``severity_in=[…]`` (``info``, ``warning``, ``error``, ``critical``),
``error_type=`` / ``error_type_like=``, ``error_message_like=``, ``issue_id=``
(``has_issue_id=``), ``has_stack_trace=``, ``occurred_at_from=``/``occurred_at_to=``."""

_SEVERITY: TypeAdapter[ErrorSeverity] = TypeAdapter(ErrorSeverity)


class AsyncSessionErrorRepository(AsyncRepository):
    """Crawl errors: each context sees and writes only its own (an admin, all)."""

    async def get(self, error_id: int) -> SessionError | None:
        """The error with this id, or None (also when RLS hides it)."""
        return await self._session.fetch_one(GET.bind({"error_id": error_id}), SessionError)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[SessionError]:
        """Visible errors matching ``filters`` (see ``FILTERS``), ordered by ``order_by``
        keys (``-key`` descending; default ``error_id``).

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``error_id``: int
        - ``session_id``: int
        - ``user_id``: int
        - ``severity``: ``"info"`` | ``"warning"`` | ``"error"`` | ``"critical"``
        - ``error_type``: text; also ``error_type_like``
        - ``error_message``: text; also ``error_message_like``
        - ``stack_trace``: text, nullable; also ``stack_trace_like``, ``has_stack_trace``
        - ``issue_id``: text, nullable; also ``issue_id_like``, ``has_issue_id``
        - ``occurred_at``: timestamp; also ``occurred_at_from``, ``occurred_at_to``

        Order keys (``-key`` for descending; ``error_id``, the default, is added last when left
        out): ``error_id``, ``error_type``, ``issue_id``, ``occurred_at``, ``session_id``,
        ``severity``, ``user_id``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, SessionError)

    async def for_session(self, session_id: int) -> list[SessionError]:
        """A session's errors in the order they occurred (empty when it is hidden)."""
        bound = FOR_SESSION.bind({"session_id": session_id})
        return await self._session.fetch_all(bound, SessionError)

    async def create(self, new: NewSessionError | Mapping[str, Any]) -> SessionError:
        """Record an error. ``PermissionDenied`` when ``user_id`` is not the context's;
        ``ForeignKeyViolation`` when it is not the session's user."""
        error = validate_input(NewSessionError, new)
        params = error.model_dump()
        params["context"] = Jsonb(error.context)
        created = await self._session.fetch_one(CREATE.bind(params), SessionError)
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    async def delete(self, error_id: int) -> bool:
        """Remove one error; False if absent or hidden."""
        return await self._session.run(DELETE.bind({"error_id": error_id})) > 0

    async def delete_by_severity(self, severity: ErrorSeverity) -> int:
        """Remove every visible error of ``severity`` (an ordinary user's own only); the
        number removed. ``InvalidInput`` for an unknown severity, before any SQL."""
        checked = validate_value(_SEVERITY, severity, "severity")
        return await self._session.run(DELETE_BY_SEVERITY.bind({"severity": checked}))
