-- 0003 rls: the row-level-security context functions, the policies of every
-- table, and the privileges of the runtime role ims_app.
--
-- Model (SPEC §3): the caller states who it acts for with
-- ims.set_current_user(id), transaction-local. User-owned tables show and
-- accept only that user's rows (all rows for an admin); shared tables are
-- open to the runtime role. No context, no user-owned rows. Every table has
-- FORCE ROW LEVEL SECURITY, so even the owner goes through a policy (its own,
-- permissive one: the owner is the maintenance path).
-- depends: 0002.tables


-- Create everything below as the owner (see 0002 for why SET LOCAL).
SET LOCAL ROLE ims_owner;


-- ---------------------------------------------------------------------------
-- Context functions
-- ---------------------------------------------------------------------------

-- Set the context for the rest of the current transaction only (is_local =
-- true): it ends at commit or rollback, so it can never reach the next user
-- of a pooled connection. NULL clears it. set_config takes text, hence the
-- cast; '' is the cleared value (see ims.current_user_id).
CREATE FUNCTION ims.set_current_user(user_id bigint)
RETURNS void
LANGUAGE sql
VOLATILE
SECURITY INVOKER
AS $$
SELECT pg_catalog.set_config('ims.current_user_id', COALESCE(user_id::text, ''), TRUE);
$$;

COMMENT ON FUNCTION ims.set_current_user(bigint) IS
    'Sets the row-level-security context (ims.current_user_id) for the current transaction; NULL clears it.';


-- The context, or NULL. current_setting(..., true) gives NULL when the
-- setting was never defined in this session and '' after a transaction-local
-- value has ended; nullif maps both to NULL ("no context").
CREATE FUNCTION ims.current_user_id()
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
SELECT NULLIF(pg_catalog.current_setting('ims.current_user_id', TRUE), '')::bigint;
$$;

COMMENT ON FUNCTION ims.current_user_id() IS
    'The row-level-security context set by ims.set_current_user, or NULL.';


-- Why a range and not "user_id = ctx OR is_admin": PostgreSQL cannot use the
-- user_id index for an OR with a parameter (measured: Seq Scan with
-- Filter: ((user_id = $0) OR $1)). The policies below say instead
--     user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id())
-- Each (SELECT …) is an InitPlan evaluated once per statement, and the
-- comparison is an ordinary index range (Index Cond: user_id >= $0 AND
-- user_id <= $1). For an ordinary user both bounds are the user's own id
-- (an equality in effect), for an admin they span all of bigint, and
-- without context both are NULL, so the comparison is never true: deny by
-- default.

-- Lower bound of the visible user_id range. Reads ims.users under the
-- caller's own rights (users is readable by the runtime role).
CREATE FUNCTION ims.rls_min_user_id()
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
SELECT CASE
    WHEN EXISTS (
        SELECT
        FROM ims.users AS u
        WHERE u.user_id = ims.current_user_id()
          AND u.role = 'admin'
    ) THEN '-9223372036854775808'::bigint
    ELSE ims.current_user_id()
END;
$$;

COMMENT ON FUNCTION ims.rls_min_user_id() IS
    'Lower bound of the user_id range the context may see: the context user id, the smallest bigint for an admin, NULL without context.';


-- Upper bound of the visible user_id range (see ims.rls_min_user_id).
CREATE FUNCTION ims.rls_max_user_id()
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
SELECT CASE
    WHEN EXISTS (
        SELECT
        FROM ims.users AS u
        WHERE u.user_id = ims.current_user_id()
          AND u.role = 'admin'
    ) THEN '9223372036854775807'::bigint
    ELSE ims.current_user_id()
END;
$$;

COMMENT ON FUNCTION ims.rls_max_user_id() IS
    'Upper bound of the user_id range the context may see: the context user id, the largest bigint for an admin, NULL without context.';


-- ---------------------------------------------------------------------------
-- Row-level security on every table
-- ---------------------------------------------------------------------------

-- ENABLE makes policies apply; FORCE makes them apply to the owner too, so
-- nothing running as ims_owner (the audit trigger, maintenance) bypasses RLS
-- by accident; the owner gets its own explicit policy below.
ALTER TABLE ims.users ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.users FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.crawl_sessions ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.crawl_sessions FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.issues ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.issues FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.session_issues ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.session_issues FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_comments ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_comments FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_history ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_history FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.attachments ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.attachments FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.search_queries ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.search_queries FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.session_errors ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.session_errors FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_daily ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_daily FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_monthly ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_monthly FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.audit_log ENABLE ROW LEVEL SECURITY;


ALTER TABLE ims.audit_log FORCE ROW LEVEL SECURITY;


-- ---------------------------------------------------------------------------
-- Owner policies: the owner is the maintenance path (ims-repo set-role, the
-- SECURITY DEFINER audit trigger, DBA fixes) and sees and changes every row.
-- ---------------------------------------------------------------------------

CREATE POLICY users_owner_all
    ON ims.users
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY crawl_sessions_owner_all
    ON ims.crawl_sessions
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY issues_owner_all
    ON ims.issues
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY session_issues_owner_all
    ON ims.session_issues
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY issue_comments_owner_all
    ON ims.issue_comments
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY issue_history_owner_all
    ON ims.issue_history
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY attachments_owner_all
    ON ims.attachments
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY search_queries_owner_all
    ON ims.search_queries
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY session_errors_owner_all
    ON ims.session_errors
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY analytics_daily_owner_all
    ON ims.analytics_daily
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY analytics_monthly_owner_all
    ON ims.analytics_monthly
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY audit_log_owner_all
    ON ims.audit_log
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);


-- ---------------------------------------------------------------------------
-- Runtime policies, user-owned tables: own rows only (all rows for an admin),
-- for reading and for writing. USING filters what is seen, updated and
-- deleted; WITH CHECK refuses (SQLSTATE 42501) a row written for another
-- user. The range form keeps the user_id index usable (see above).
-- ---------------------------------------------------------------------------

CREATE POLICY crawl_sessions_app_own_rows
    ON ims.crawl_sessions
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()))
    WITH CHECK (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()));


CREATE POLICY session_issues_app_own_rows
    ON ims.session_issues
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()))
    WITH CHECK (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()));


CREATE POLICY search_queries_app_own_rows
    ON ims.search_queries
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()))
    WITH CHECK (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()));


CREATE POLICY session_errors_app_own_rows
    ON ims.session_errors
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()))
    WITH CHECK (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()));


CREATE POLICY analytics_daily_app_own_rows
    ON ims.analytics_daily
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()))
    WITH CHECK (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()));


CREATE POLICY analytics_monthly_app_own_rows
    ON ims.analytics_monthly
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()))
    WITH CHECK (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()));


-- Audit rows: read-only for the runtime role (it has only SELECT on the
-- table, and only this SELECT policy), own rows only. Rows written without
-- context (actor NULL) fall outside every range and are read by the owner.
CREATE POLICY audit_log_app_read_own_rows
    ON ims.audit_log
    AS PERMISSIVE
    FOR SELECT
    TO ims_app
    USING (user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id()));


-- ---------------------------------------------------------------------------
-- Runtime policies, shared tables: every row may be read and written. The
-- one exception is users, below.
-- ---------------------------------------------------------------------------

CREATE POLICY issues_app_all
    ON ims.issues
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY issue_comments_app_all
    ON ims.issue_comments
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY issue_history_app_all
    ON ims.issue_history
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);


CREATE POLICY attachments_app_all
    ON ims.attachments
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);


-- users: readable by everyone (the RLS helper functions read it too).
CREATE POLICY users_app_select
    ON ims.users
    AS PERMISSIVE
    FOR SELECT
    TO ims_app
    USING (TRUE);


-- users: the runtime role may create users but never an admin. (Changing
-- role afterwards is impossible for it: it has no UPDATE privilege on the
-- role column, see the grants below.)
CREATE POLICY users_app_insert_non_admin
    ON ims.users
    AS PERMISSIVE
    FOR INSERT
    TO ims_app
    WITH CHECK (role <> 'admin');


-- users: any row may be updated (in the columns granted below), including an
-- admin's last_login_at; the role column itself is not updatable.
CREATE POLICY users_app_update
    ON ims.users
    AS PERMISSIVE
    FOR UPDATE
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);


-- users: any row may be deleted; foreign keys (RESTRICT) refuse deleting a
-- user who still has crawl data, whoever's it is.
CREATE POLICY users_app_delete
    ON ims.users
    AS PERMISSIVE
    FOR DELETE
    TO ims_app
    USING (TRUE);


-- ---------------------------------------------------------------------------
-- Privileges of the runtime role: exactly what the application needs. No
-- TRUNCATE (it would bypass RLS and audit), no DDL, no CREATE on any schema.
-- Identity columns need no sequence privilege for their defaults.
-- ---------------------------------------------------------------------------

-- Name resolution in schema ims.
GRANT USAGE
    ON SCHEMA ims
    TO ims_app;


-- Read and write of the crawl data and the shared issue tables (rows limited
-- by the policies above).
GRANT SELECT, INSERT, UPDATE, DELETE
    ON TABLE
        ims.crawl_sessions,
        ims.issues,
        ims.session_issues,
        ims.issue_comments,
        ims.attachments,
        ims.analytics_daily,
        ims.analytics_monthly
    TO ims_app;


-- Logs of what happened (field history, searches, crawl errors) are written
-- and removed, never edited: no UPDATE.
GRANT SELECT, INSERT, DELETE
    ON TABLE
        ims.issue_history,
        ims.search_queries,
        ims.session_errors
    TO ims_app;


-- users: read, create, delete ...
GRANT SELECT, INSERT, DELETE
    ON TABLE ims.users
    TO ims_app;


-- ... and update every column except the key, the creation time and role:
-- only the owner makes or unmakes an admin (ims-repo set-role).
GRANT UPDATE (username, email, full_name, department, is_active, preferences, updated_at, last_login_at)
    ON TABLE ims.users
    TO ims_app;


-- audit_log: read only; rows are written by the SECURITY DEFINER trigger
-- function (0005) as the owner.
GRANT SELECT
    ON TABLE ims.audit_log
    TO ims_app;


-- Functions are executable by PUBLIC by default; keep them to the roles that
-- need them.
REVOKE EXECUTE
    ON FUNCTION
        ims.set_current_user(bigint),
        ims.current_user_id(),
        ims.rls_min_user_id(),
        ims.rls_max_user_id()
    FROM PUBLIC;


-- The runtime role sets and reads its context; it must also be able to run
-- the helpers its policies call.
GRANT EXECUTE
    ON FUNCTION
        ims.set_current_user(bigint),
        ims.current_user_id(),
        ims.rls_min_user_id(),
        ims.rls_max_user_id()
    TO ims_app;
