"""The named statements of ``queries/attachments.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import Attachment, NewAttachment

SQL = load("attachments")
GET = SQL.statement("get", "attachment_id", record=Attachment)
FOR_ISSUE = SQL.statement("for_issue", "issue_pk", record=Attachment)
FIND = SQL.statement("find", "limit", "offset", record=Attachment)
CREATE = SQL.statement("create", *NewAttachment.model_fields, record=Attachment)
UPDATE = SQL.statement("update", "attachment_id", "changes", record=Attachment)
DELETE = SQL.statement("delete", "attachment_id")
