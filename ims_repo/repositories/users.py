"""``s.users``: accounts (``queries/users.sql``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from ims_repo import loader
from ims_repo.filters import After, Column, FilterSet
from ims_repo.records import CrawlSession, NewUser, User, UserStats, UserWithSessions
from ims_repo.records.types import UserRole, validate_changes, validate_input
from ims_repo.repositories.base import Repository, bind_find

_SQL = loader.load("users")
GET = _SQL.statement("get", "user_id", record=User)
GET_BY_USERNAME = _SQL.statement("get_by_username", "username", record=User)
FIND = _SQL.statement("find", "limit", "offset", record=User)
CREATE = _SQL.statement(
    "create",
    *("username", "email", "full_name", "department", "role", "is_active", "preferences"),
    "last_login_at",
    record=User,
)
UPDATE = _SQL.statement("update", "user_id", "changes", record=User)
DELETE = _SQL.statement("delete", "user_id")
WITH_SESSIONS = _SQL.statement("with_sessions", "limit", "offset")
STATS = _SQL.statement("stats", "user_id", record=UserStats)

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
``role``, ``is_active`` and the timestamps, in the forms of ``ims_repo.filters``."""

UPDATABLE = (
    "username",
    "email",
    "full_name",
    "department",
    "is_active",
    "preferences",
    "last_login_at",
)


class UserRepository(Repository):
    """Users: shared by every context; the role is changed only by the owner."""

    def get(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return self._session.fetch_one(GET.bind({"user_id": user_id}), User)

    def get_by_username(self, username: str) -> User | None:
        """The user with this username, or None."""
        return self._session.fetch_one(GET_BY_USERNAME.bind({"username": username}), User)

    def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[User]:
        """Users matching ``filters`` (see ``FILTERS``), ordered by ``order_by`` keys
        (``-key`` descending; default ``user_id``); no ``limit`` returns all."""
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return self._session.fetch_all(bound, User)

    def create(self, new: NewUser | Mapping[str, Any]) -> User:
        """Add a user; ``Duplicate`` when the username or email (any case) is taken."""
        user = validate_input(NewUser, new)
        params = user.model_dump()
        params["preferences"] = Jsonb(user.preferences)
        created = self._session.fetch_one(CREATE.bind(params), User)
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    def update(self, user_id: int, /, **fields: Any) -> User:
        """Change the given fields (not the role); ``NotFound`` if there is no such user."""
        changes = validate_changes(NewUser, fields, allowed=UPDATABLE)
        return self._update(UPDATE, User, "users", ("user_id", user_id), changes)

    def delete(self, user_id: int) -> bool:
        """Remove a user; False if there was none. ``ForeignKeyViolation`` while crawl
        data of theirs exists (nothing is deleted behind the caller's back)."""
        return self._session.run(DELETE.bind({"user_id": user_id})) > 0

    def with_sessions(
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
        rows = self._session.fetch_rows(bound)
        return [
            UserWithSessions(
                user=User.model_validate({k: v for k, v in row.items() if k != "sessions"}),
                sessions=[CrawlSession.model_validate(s) for s in row["sessions"]],
            )
            for row in rows
        ]

    def stats(self, user_id: int) -> UserStats:
        """The user's figures from ``ims.get_user_stats`` (their sessions, as RLS allows)."""
        stats = self._session.fetch_one(STATS.bind({"user_id": user_id}), UserStats)
        assert stats is not None  # the function always returns one row
        return stats
