-- The row-level-security context, set by every session at the start of each transaction.

-- name: set_current_user :none
-- Sets the RLS context for the current transaction only; NULL means no user (no rows).
-- Does what ims.set_current_user() does, inline: PostgreSQL 15 plans a SQL function
-- afresh on every call (~18 us a checkout, measured in bench/).
SELECT
    pg_catalog.set_config(
        'ims.current_user_id', coalesce(CAST(CAST(:user_id AS bigint) AS text), ''), TRUE
    );

-- name: set_statement_timeout :none
-- Sets statement_timeout (text such as '150ms') for the current transaction only, for a
-- session opened with a statement_timeout of its own.
SELECT pg_catalog.set_config('statement_timeout', :timeout, TRUE);

-- name: set_settings :none
-- Sets server settings (parallel arrays of names and values: the role of act_as, the
-- database's statement_timeout, a URL's options) for the current transaction only: what
-- a connection behind a transaction-pooling pgbouncer cannot set at login.
SELECT pg_catalog.set_config(setting.name, setting.value, TRUE)
FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS setting (name, value);
