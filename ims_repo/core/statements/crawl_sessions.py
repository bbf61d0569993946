"""The named statements of ``queries/crawl_sessions.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import CrawlSession, DurationStats, NewCrawlSession

SQL = load("crawl_sessions")
GET = SQL.statement("get", "session_id", record=CrawlSession)
GET_BY_UUID = SQL.statement("get_by_uuid", "session_uuid", record=CrawlSession)
FIND = SQL.statement("find", "limit", "offset", record=CrawlSession)
LIST_FOR_USER = SQL.statement("list_for_user", "user_id", record=CrawlSession)
CREATE = SQL.statement("create", *NewCrawlSession.model_fields, record=CrawlSession)
UPDATE = SQL.statement("update", "session_id", "changes", record=CrawlSession)
DELETE = SQL.statement("delete", "session_id")
DURATION_STATS = SQL.statement("duration_stats", record=DurationStats)
WITH_METADATA_KEY = SQL.statement("with_metadata_key", "key", record=CrawlSession)
METADATA_CONTAINS = SQL.statement("metadata_contains", "document", record=CrawlSession)
ISSUES = SQL.statement("issues", "session_id")
