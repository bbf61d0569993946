-- Statements on ims.audit_log: who changed what in users, issues and crawl_sessions.
-- Written only by the audit trigger; the runtime role reads its own rows, nothing more.

-- name: find :many
-- The newest visible audit rows, optionally of one table and/or one record (the
-- whitelisted filters; served by the (table_name, record_id) index), newest first.
SELECT audit_id, user_id, action, table_name, record_id, old_values, new_values,
       ip_address, created_at
FROM ims.audit_log
WHERE {filters}
ORDER BY created_at DESC, audit_id DESC
LIMIT :limit;
