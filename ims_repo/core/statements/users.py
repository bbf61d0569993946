"""The named statements of ``queries/users.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import User, UserStats

SQL = load("users")
GET = SQL.statement("get", "user_id", record=User)
GET_BY_USERNAME = SQL.statement("get_by_username", "username", record=User)
FIND = SQL.statement("find", "limit", "offset", record=User)
CREATE = SQL.statement(
    "create",
    *("username", "email", "full_name", "department", "role", "is_active", "preferences"),
    "last_login_at",
    record=User,
)
UPDATE = SQL.statement("update", "user_id", "changes", record=User)
DELETE = SQL.statement("delete", "user_id")
WITH_SESSIONS = SQL.statement("with_sessions", "limit", "offset")
STATS = SQL.statement("stats", "user_id", record=UserStats)
