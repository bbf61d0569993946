-- Rollback of 0010 lean writes: restores 0009's state exactly: the default
-- toast_tuple_target and the raw_data GIN index of 0002, the issues INSERT audit trigger calling 0005's
-- audit_changes (whole rows), and 0005's definition and comment of that
-- function (CREATE OR REPLACE keeps its privileges). Audit rows written
-- meanwhile are kept (the table belongs to 0002).


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;

SET LOCAL lock_timeout = '5s';


-- The default of 0002.
ALTER TABLE ims.issues
    RESET (toast_tuple_target);


-- As in 0002.
CREATE INDEX issues_raw_data_idx
    ON ims.issues
    USING gin (raw_data);


DROP TRIGGER issues_audit_insert
    ON ims.issues;


-- As in 0005.
CREATE TRIGGER issues_audit_insert
    AFTER INSERT
    ON ims.issues
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_changes('issue_pk');


DROP FUNCTION ims.audit_issue_inserts();


-- As in 0005.
CREATE OR REPLACE FUNCTION ims.audit_changes()
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
