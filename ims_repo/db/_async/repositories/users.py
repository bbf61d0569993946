"""``s.users``: accounts (``queries/users.sql``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.records import CrawlSession, NewUser, User, UserStats, UserWithSessions
from ims_repo.core.records.types import UserRole, validate_changes, validate_input
from ims_repo.core.statements.users import (
    CREATE,
    DELETE,
    FIND,
    GET,
    GET_BY_USERNAME,
    STATS,
    UPDATE,
    WITH_SESSIONS,
)
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find

FILTERS = FilterSet(
    columns={
        "user_id": Column(int),
        "username": Column(str),
        "email": Column(str),
        "full_name": Column(str, nullable=True),
        "department": Column(str, nullable=True),
        "role": Column(UserRole),
        "is_active": Column(bool),
        "created_at": Column(datetime),
        "updated_at": Column(datetime),
        "last_login_at": Column(datetime, nullable=True),
    },
    key="user_id",
)
"""``find`` filters: ``user_id``, ``username``, ``email``, ``full_name``, ``department``,
``role``, ``is_active`` and the timestamps, in the forms of ``ims_repo.core.filters``."""

UPDATABLE = (
    "username",
    "email",
    "full_name",
    "department",
    "is_active",
    "preferences",
    "last_login_at",
)
"""Fields ``update`` may change; ``role`` is not one (only the owner changes it)."""


class AsyncUserRepository(AsyncRepository):
    """Users: shared by every context; the role is changed only by the owner."""

    async def get(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return await self._session.fetch_one(GET.bind({"user_id": user_id}), User)

    async def get_by_username(self, username: str) -> User | None:
        """The user with this username, or None."""
        return await self._session.fetch_one(GET_BY_USERNAME.bind({"username": username}), User)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[User]:
        """Users matching ``filters`` (see ``FILTERS``), ordered by ``order_by`` keys
        (``-key`` descending; default ``user_id``); no ``limit`` returns all.

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``user_id``: int
        - ``username``: text; also ``username_like``
        - ``email``: text; also ``email_like``
        - ``full_name``: text, nullable; also ``full_name_like``, ``has_full_name``
        - ``department``: text, nullable; also ``department_like``, ``has_department``
        - ``role``: ``"admin"`` | ``"user"``
        - ``is_active``: bool
        - ``created_at``: timestamp; also ``created_at_from``, ``created_at_to``
        - ``updated_at``: timestamp; also ``updated_at_from``, ``updated_at_to``
        - ``last_login_at``: timestamp, nullable; also ``has_last_login_at``,
          ``last_login_at_from``, ``last_login_at_to``

        Order keys (``-key`` for descending; ``user_id``, the default, is added last when left out):
        ``created_at``, ``department``, ``email``, ``full_name``, ``is_active``, ``last_login_at``,
        ``role``, ``updated_at``, ``user_id``, ``username``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, User)

    async def create(self, new: NewUser | Mapping[str, Any]) -> User:
        """Add a user; ``Duplicate`` when the username or email (any case) is taken."""
        user = validate_input(NewUser, new)
        params = user.model_dump()
        params["preferences"] = Jsonb(user.preferences)
        created = await self._session.fetch_one(CREATE.bind(params), User)
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    async def update(self, user_id: int, /, **fields: Any) -> User:
        """Change the given fields (not the role); ``NotFound`` if there is no such user."""
        changes = validate_changes(NewUser, fields, allowed=UPDATABLE)
        return await self._update(UPDATE, User, "users", ("user_id", user_id), changes)

    async def delete(self, user_id: int) -> bool:
        """Remove a user; False if there was none. ``ForeignKeyViolation`` while crawl
        data of theirs exists (nothing is deleted behind the caller's back)."""
        return await self._session.run(DELETE.bind({"user_id": user_id})) > 0

    async def with_sessions(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        **filters: Any,
    ) -> list[UserWithSessions]:
        """Users (filtered like ``find``) each with their visible crawl sessions, in one
        statement; users without sessions are included with an empty list."""
        bound = bind_find(WITH_SESSIONS, FILTERS, filters, order_by, limit, offset)
        rows = await self._session.fetch_rows(bound)
        return [
            UserWithSessions(
                user=User.model_validate({k: v for k, v in row.items() if k != "sessions"}),
                sessions=[CrawlSession.model_validate(s) for s in row["sessions"]],
            )
            for row in rows
        ]

    async def stats(self, user_id: int) -> UserStats:
        """The user's figures from ``ims.get_user_stats`` (their sessions, as RLS allows)."""
        stats = await self._session.fetch_one(STATS.bind({"user_id": user_id}), UserStats)
        assert stats is not None  # the function always returns one row
        return stats
