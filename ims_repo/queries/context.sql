-- The row-level-security context, set by every session at the start of each transaction.

-- name: set_current_user :none
-- Sets the RLS context for the current transaction only; NULL means no user (no rows).
SELECT ims.set_current_user(:user_id::bigint);

-- name: set_statement_timeout :none
-- Sets statement_timeout (text such as '150ms') for the current transaction only, for a
-- session opened with a statement_timeout of its own.
SELECT pg_catalog.set_config('statement_timeout', :timeout, TRUE);
