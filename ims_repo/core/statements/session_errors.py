"""The named statements of ``queries/session_errors.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import NewSessionError, SessionError

SQL = load("session_errors")
GET = SQL.statement("get", "error_id", record=SessionError)
FIND = SQL.statement("find", "limit", "offset", record=SessionError)
FOR_SESSION = SQL.statement("for_session", "session_id", record=SessionError)
CREATE = SQL.statement("create", *NewSessionError.model_fields, record=SessionError)
DELETE = SQL.statement("delete", "error_id")
DELETE_BY_SEVERITY = SQL.statement("delete_by_severity", "severity")
