"""The named statements of ``queries/context.sql``: what a transaction begins with."""

from __future__ import annotations

from ims_repo.core.loader import load

SQL = load("context")
SET_CURRENT_USER = SQL.statement("set_current_user", "user_id")
# Sent in the same pipeline as BEGIN and the context, like them transaction-local.
SET_STATEMENT_TIMEOUT = SQL.statement("set_statement_timeout", "timeout")
# Behind a connection pooler: the settings a direct connection sends at login.
SET_SETTINGS = SQL.statement("set_settings", "names", "values")
