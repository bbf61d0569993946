-- The row-level-security context, set by every session at the start of each transaction.

-- name: set_current_user :none
-- Sets the RLS context for the current transaction only; NULL means no user (no rows).
SELECT ims.set_current_user(:user_id::bigint);
