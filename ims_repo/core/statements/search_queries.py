"""The named statements of ``queries/search_queries.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import NewSearchQuery, SearchQuery

SQL = load("search_queries")
GET = SQL.statement("get", "query_id", record=SearchQuery)
FIND = SQL.statement("find", "limit", "offset", record=SearchQuery)
LOG = SQL.statement("log", *NewSearchQuery.model_fields, record=SearchQuery)
DELETE = SQL.statement("delete", "query_id")
