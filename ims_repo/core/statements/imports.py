"""The named statements of ``queries/imports.sql`` (the JSON Lines importer's writes),
with the records their rows fill."""

from __future__ import annotations

from pydantic import BaseModel

from ims_repo.core.loader import load
from ims_repo.core.records.types import RECORD_CONFIG


class ImportReplaced(BaseModel):
    """What one ``imports.replace_*`` statement did."""

    model_config = RECORD_CONFIG

    issues: int
    removed: int
    added: int


class ImportLinked(BaseModel):
    """What ``imports.link_issues`` did; ``sessions`` is 0 when the session is hidden."""

    model_config = RECORD_CONFIG

    sessions: int
    linked: int
    relinked: int


SQL = load("imports")
REPLACE_COMMENTS = SQL.statement("replace_comments", "issue_ids", "comments", record=ImportReplaced)
REPLACE_HISTORY = SQL.statement("replace_history", "issue_ids", "changes", record=ImportReplaced)
REPLACE_ATTACHMENTS = SQL.statement(
    "replace_attachments", "issue_ids", "attachments", "session_id", record=ImportReplaced
)
LINK_ISSUES = SQL.statement("link_issues", "session_id", "links", record=ImportLinked)
