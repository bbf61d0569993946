"""The named statements of ``queries/audit.sql``, each declared with the parameters
its callers pass and the record its rows fill (checked at import)."""

from __future__ import annotations

from ims_repo.core.loader import load
from ims_repo.core.records import AuditLog

SQL = load("audit")
FIND = SQL.statement("find", "limit", record=AuditLog)
