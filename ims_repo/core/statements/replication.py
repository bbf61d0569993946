"""The named statements of ``queries/replication.sql``: WAL positions for read-your-writes."""

from __future__ import annotations

from ims_repo.core.loader import load

SQL = load("replication")
# Sent after COMMIT in the same pipeline, by sessions of a database with replicas.
COMMIT_POSITION = SQL.statement("commit_position")
# Asked of a replica before a session that must see a given commit runs on it.
REPLAYED_POSITION = SQL.statement("replayed_position")
