-- Rollback of 0003 rls: revokes the runtime role's privileges, drops every
-- policy, turns row-level security off and drops the context functions, in
-- the reverse order of the apply.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;


-- Table privileges.
REVOKE SELECT
    ON TABLE ims.audit_log
    FROM ims_app;


REVOKE UPDATE (username, email, full_name, department, is_active, preferences, updated_at, last_login_at)
    ON TABLE ims.users
    FROM ims_app;


REVOKE SELECT, INSERT, DELETE
    ON TABLE ims.users
    FROM ims_app;


REVOKE SELECT, INSERT, DELETE
    ON TABLE
        ims.issue_history,
        ims.search_queries,
        ims.session_errors
    FROM ims_app;


REVOKE SELECT, INSERT, UPDATE, DELETE
    ON TABLE
        ims.crawl_sessions,
        ims.issues,
        ims.session_issues,
        ims.issue_comments,
        ims.attachments,
        ims.analytics_daily,
        ims.analytics_monthly
    FROM ims_app;


REVOKE USAGE
    ON SCHEMA ims
    FROM ims_app;


-- Runtime policies, shared tables.
DROP POLICY users_app_delete
    ON ims.users;


DROP POLICY users_app_update
    ON ims.users;


DROP POLICY users_app_insert_non_admin
    ON ims.users;


DROP POLICY users_app_select
    ON ims.users;


DROP POLICY attachments_app_all
    ON ims.attachments;


DROP POLICY issue_history_app_all
    ON ims.issue_history;


DROP POLICY issue_comments_app_all
    ON ims.issue_comments;


DROP POLICY issues_app_all
    ON ims.issues;


-- Runtime policies, user-owned tables.
DROP POLICY audit_log_app_read_own_rows
    ON ims.audit_log;


DROP POLICY analytics_monthly_app_own_rows
    ON ims.analytics_monthly;


DROP POLICY analytics_daily_app_own_rows
    ON ims.analytics_daily;


DROP POLICY session_errors_app_own_rows
    ON ims.session_errors;


DROP POLICY search_queries_app_own_rows
    ON ims.search_queries;


DROP POLICY session_issues_app_own_rows
    ON ims.session_issues;


DROP POLICY crawl_sessions_app_own_rows
    ON ims.crawl_sessions;


-- Owner policies.
DROP POLICY audit_log_owner_all
    ON ims.audit_log;


DROP POLICY analytics_monthly_owner_all
    ON ims.analytics_monthly;


DROP POLICY analytics_daily_owner_all
    ON ims.analytics_daily;


DROP POLICY session_errors_owner_all
    ON ims.session_errors;


DROP POLICY search_queries_owner_all
    ON ims.search_queries;


DROP POLICY attachments_owner_all
    ON ims.attachments;


DROP POLICY issue_history_owner_all
    ON ims.issue_history;


DROP POLICY issue_comments_owner_all
    ON ims.issue_comments;


DROP POLICY session_issues_owner_all
    ON ims.session_issues;


DROP POLICY issues_owner_all
    ON ims.issues;


DROP POLICY crawl_sessions_owner_all
    ON ims.crawl_sessions;


DROP POLICY users_owner_all
    ON ims.users;


-- Row-level security off again (NO FORCE, then DISABLE), every table.
ALTER TABLE ims.audit_log NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.audit_log DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_monthly NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_monthly DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_daily NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.analytics_daily DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.session_errors NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.session_errors DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.search_queries NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.search_queries DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.attachments NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.attachments DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_history NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_history DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_comments NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.issue_comments DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.session_issues NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.session_issues DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.issues NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.issues DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.crawl_sessions NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.crawl_sessions DISABLE ROW LEVEL SECURITY;


ALTER TABLE ims.users NO FORCE ROW LEVEL SECURITY;


ALTER TABLE ims.users DISABLE ROW LEVEL SECURITY;


-- Context functions, dependents first (the range helpers call
-- ims.current_user_id). Dropping a function drops its privileges (the
-- apply's REVOKE FROM PUBLIC and GRANT TO ims_app) with it.
DROP FUNCTION ims.rls_max_user_id();


DROP FUNCTION ims.rls_min_user_id();


DROP FUNCTION ims.current_user_id();


DROP FUNCTION ims.set_current_user(bigint);
