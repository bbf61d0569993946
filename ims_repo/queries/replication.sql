-- Where the write-ahead log stands: what read-your-writes on replicas compares.

-- name: commit_position :scalar
-- Asked right after a COMMIT, in the same round trip: a WAL position at or past the end
-- of that commit's record, which replicas can reach. A synchronous commit (the default)
-- has flushed its record, so the flush position covers it; replicas are sent flushed
-- WAL only, so no later position is needed. An asynchronous commit (synchronous_commit
-- off) may not be flushed yet: the insert position covers it. NULL on a standby.
SELECT
    CASE
        WHEN pg_catalog.pg_is_in_recovery()
            THEN NULL
        WHEN pg_catalog.current_setting('synchronous_commit') = 'off'
            THEN CAST(pg_catalog.pg_current_wal_insert_lsn() AS text)
        ELSE CAST(pg_catalog.pg_current_wal_flush_lsn() AS text)
    END AS wal_position;

-- name: replayed_position :scalar
-- How far a standby has replayed the primary's WAL; NULL on a server that is not in
-- recovery (a primary, or a standby promoted since).
SELECT CAST(pg_catalog.pg_last_wal_replay_lsn() AS text) AS wal_position;
