"""The named statements of ``queries/comments.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import IssueComment, NewIssueComment

SQL = load("comments")
GET = SQL.statement("get", "comment_id", record=IssueComment)
FOR_ISSUE = SQL.statement("for_issue", "issue_pk", record=IssueComment)
FIND = SQL.statement("find", "limit", "offset", record=IssueComment)
CREATE = SQL.statement("create", *NewIssueComment.model_fields, record=IssueComment)
UPDATE = SQL.statement("update", "comment_id", "changes", record=IssueComment)
DELETE = SQL.statement("delete", "comment_id")
ADD_MANY = SQL.statement("add_many", "issue_pk", "comments")
