-- Where the write-ahead log stands: what read-your-writes on replicas compares.

-- name: commit_position :scalar
-- The primary's WAL insert position, asked right after a COMMIT (in the same round
-- trip): at or past the end of that commit's record, so a replica that has replayed
-- up to it sees the commit. NULL on a standby.
SELECT
    CASE
        WHEN NOT pg_catalog.pg_is_in_recovery()
            THEN CAST(pg_catalog.pg_current_wal_insert_lsn() AS text)
    END AS wal_position;

-- name: replayed_position :scalar
-- How far a standby has replayed the primary's WAL; NULL on a server that is not in
-- recovery (a primary, or a standby promoted since).
SELECT CAST(pg_catalog.pg_last_wal_replay_lsn() AS text) AS wal_position;
