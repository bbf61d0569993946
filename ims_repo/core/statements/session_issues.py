"""The named statements of ``queries/session_issues.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import NewSessionIssue, SessionIssue

SQL = load("session_issues")
GET = SQL.statement("get", "session_id", "issue_pk", record=SessionIssue)
FOR_SESSION = SQL.statement("for_session", "session_id", record=SessionIssue)
FIND = SQL.statement("find", "limit", "offset", record=SessionIssue)
LINK = SQL.statement("link", *NewSessionIssue.model_fields, record=SessionIssue)
LINK_MANY = SQL.statement("link_many", "links")
UNLINK = SQL.statement("unlink", "session_id", "issue_pk")
