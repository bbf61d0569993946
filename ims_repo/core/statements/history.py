"""The named statements of ``queries/history.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import IssueHistory, NewIssueHistory

SQL = load("history")
GET = SQL.statement("get", "history_id", record=IssueHistory)
FOR_ISSUE = SQL.statement("for_issue", "issue_pk", record=IssueHistory)
FIND = SQL.statement("find", "limit", "offset", record=IssueHistory)
CREATE = SQL.statement("create", *NewIssueHistory.model_fields, record=IssueHistory)
DELETE = SQL.statement("delete", "history_id")
ADD_MANY = SQL.statement("add_many", "issue_pk", "changes")
