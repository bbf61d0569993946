"""The named statements of ``queries/search.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import SearchHit

SQL = load("search")
ISSUES = SQL.statement("issues", "query", "product", "max_results", record=SearchHit)
REFRESH_BOUNDS = SQL.statement("refresh_bounds", "max_issues")
