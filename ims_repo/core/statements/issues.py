"""The named statements of ``queries/issues.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import Issue, IssueDetail, NewIssue, UpsertResult

SQL = load("issues")
GET = SQL.statement("get", "issue_pk", record=Issue)
GET_BY_ISSUE_ID = SQL.statement("get_by_issue_id", "issue_id", record=Issue)
FIND = SQL.statement("find", "limit", "offset", record=Issue)
COUNT = SQL.statement("count")
COUNT_BY_PRODUCT = SQL.statement("count_by_product")
CREATE = SQL.statement("create", *NewIssue.model_fields, record=Issue)
UPDATE = SQL.statement("update", "issue_pk", "changes", record=Issue)
DELETE = SQL.statement("delete", "issue_pk")
SET_STATUS = SQL.statement("set_status", "issue_pks", "status")
REPLACE_STATUS = SQL.statement("replace_status", "old", "new")
WITH_STATUS = SQL.statement("with_status", "status")
UPDATE_MANY = SQL.statement("update_many", "rows")
UPSERT = SQL.statement("upsert", *NewIssue.model_fields, "set_fields", record=Issue)
LOCK_ISSUES = SQL.statement("lock_issues", "issue_ids", "issue_pks", "exclusive")
CREATE_HASH_STAGE = SQL.statement("create_hash_stage")
COPY_HASH_STAGE = SQL.statement("copy_hash_stage")
ADD_MISSING_CRAWLS = SQL.statement("add_missing_crawls")
CRAWL_UNCHANGED = SQL.statement("crawl_unchanged")
CLEAR_HASH_STAGE = SQL.statement("clear_hash_stage")
CREATE_UPSERT_STAGE = SQL.statement("create_upsert_stage")
COPY_UPSERT_STAGE = SQL.statement("copy_upsert_stage")
FILL_UPSERT_STAGE = SQL.statement("fill_upsert_stage", "rows")
UPSERT_STAGED = SQL.statement("upsert_staged", record=UpsertResult)
CLEAR_UPSERT_STAGE = SQL.statement("clear_upsert_stage")
DETAIL = SQL.statement("detail", "issue_id", record=IssueDetail)
FIND_DETAILED = SQL.statement("find_detailed", "limit", "offset", record=IssueDetail)
SESSIONS = SQL.statement("sessions", "issue_pk")
