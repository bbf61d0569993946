-- 0005 audit: changes to users, issues and crawl_sessions are written to
-- ims.audit_log by statement-level triggers.
--
-- Per statement, not per row (SPEC §3): a bulk upsert of 10^5 issues fires
-- one trigger call that inserts its audit rows with one INSERT … SELECT from
-- the statement's transition tables. PostgreSQL allows transition tables
-- only on triggers with a single event, hence three triggers per table, all
-- calling one function.
-- depends: 0003.rls


-- Create everything below as the owner (see 0002 for why SET LOCAL). The
-- trigger function must be owned by ims_owner: it is SECURITY DEFINER.
SET LOCAL ROLE ims_owner;


-- The audit trigger function.
--
-- SECURITY DEFINER on purpose: it runs as its owner ims_owner, so it can
-- insert into ims.audit_log while the runtime role has only SELECT there
-- (the runtime role can therefore never forge, change or delete an audit
-- row). search_path is pinned, as for every definer function, so no object
-- of the caller's can be substituted; names are schema-qualified anyway.
--
-- Arguments (TG_ARGV):
--   [0]   the key column; its value (as text) becomes record_id.
--   [1..] columns ignored when deciding whether an UPDATE changed a row
--         (still recorded in old_values/new_values). issues passes its crawl
--         bookkeeping (last_crawled_at, crawl_count), which every re-crawl
--         moves: a re-crawl that changes no content is not audited.
--
-- Rows: user_id = the RLS context (NULL without context: the change is
-- audited anyway), action = TG_OP, values = the row as JSON minus the
-- generated search_vector (derived from title/description, and large). An
-- UPDATE of a row to identical values, and a statement that changes no row,
-- write nothing. An UPDATE that changes a row's key is recorded as two rows
-- (old key with old values, new key with new values) rather than lost.
CREATE FUNCTION ims.audit_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, ims
AS $$
DECLARE
    key_column text := TG_ARGV[0];
    ignored_columns text[] := COALESCE(TG_ARGV[1:], '{}'::text[]);
    actor bigint := ims.current_user_id();
    client_address inet := pg_catalog.inet_client_addr();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ims.audit_log (
            user_id,
            action,
            table_name,
            record_id,
            old_values,
            new_values,
            ip_address
        )
        SELECT
            actor,
            'INSERT',
            TG_TABLE_NAME,
            n.row_values ->> key_column,
            NULL,
            n.row_values,
            client_address
        FROM (
            SELECT
                pg_catalog.to_jsonb(nr) - 'search_vector' AS row_values
            FROM new_rows AS nr
        ) AS n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO ims.audit_log (
            user_id,
            action,
            table_name,
            record_id,
            old_values,
            new_values,
            ip_address
        )
        SELECT
            actor,
            'UPDATE',
            TG_TABLE_NAME,
            COALESCE(n.row_values ->> key_column, o.row_values ->> key_column),
            o.row_values,
            n.row_values,
            client_address
        FROM (
            SELECT
                pg_catalog.to_jsonb(orow) - 'search_vector' AS row_values
            FROM old_rows AS orow
        ) AS o
        FULL JOIN (
            SELECT
                pg_catalog.to_jsonb(nrow) - 'search_vector' AS row_values
            FROM new_rows AS nrow
        ) AS n
          ON (n.row_values ->> key_column) = (o.row_values ->> key_column)
        WHERE (o.row_values - ignored_columns) IS DISTINCT FROM (n.row_values - ignored_columns);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO ims.audit_log (
            user_id,
            action,
            table_name,
            record_id,
            old_values,
            new_values,
            ip_address
        )
        SELECT
            actor,
            'DELETE',
            TG_TABLE_NAME,
            o.row_values ->> key_column,
            o.row_values,
            NULL,
            client_address
        FROM (
            SELECT
                pg_catalog.to_jsonb(orow) - 'search_vector' AS row_values
            FROM old_rows AS orow
        ) AS o;
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION ims.audit_changes() IS
    'Statement-level audit trigger (SECURITY DEFINER, owner ims_owner): writes one ims.audit_log row per inserted, changed or deleted row, from the transition tables old_rows/new_rows. TG_ARGV[0] is the key column, further arguments are columns ignored when deciding whether an UPDATE changed anything.';


-- Trigger functions are never called directly, and firing a trigger needs no
-- EXECUTE privilege: nobody but the owner needs it.
REVOKE EXECUTE
    ON FUNCTION ims.audit_changes()
    FROM PUBLIC;


-- users: one trigger per event (transition tables allow only one event).
CREATE TRIGGER users_audit_insert
    AFTER INSERT
    ON ims.users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('user_id');


CREATE TRIGGER users_audit_update
    AFTER UPDATE
    ON ims.users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('user_id');


CREATE TRIGGER users_audit_delete
    AFTER DELETE
    ON ims.users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('user_id');


-- issues: a re-crawl that only moves last_crawled_at/crawl_count is not a
-- change worth an audit row (see the function's comment).
CREATE TRIGGER issues_audit_insert
    AFTER INSERT
    ON ims.issues
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('issue_pk');


CREATE TRIGGER issues_audit_update
    AFTER UPDATE
    ON ims.issues
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('issue_pk', 'last_crawled_at', 'crawl_count');


CREATE TRIGGER issues_audit_delete
    AFTER DELETE
    ON ims.issues
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('issue_pk');


-- crawl_sessions.
CREATE TRIGGER crawl_sessions_audit_insert
    AFTER INSERT
    ON ims.crawl_sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('session_id');


CREATE TRIGGER crawl_sessions_audit_update
    AFTER UPDATE
    ON ims.crawl_sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('session_id');


CREATE TRIGGER crawl_sessions_audit_delete
    AFTER DELETE
    ON ims.crawl_sessions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('session_id');
