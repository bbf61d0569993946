-- 0010 lean writes: an audit that records what happened without copying the
-- crawl, and no index that no statement uses.
--
-- Why (issue 13, docs/BENCHMARKS.md): a fresh issue cost the server ~420 us
-- (INSERT … SELECT of 20,000 IMS-like issues as the owner), against ~100 us
-- for a plain table with one english vector. Of that, the audit trigger on
-- ims.issues took ~130 us: it wrote every new issue a second time, as JSON,
-- into ims.audit_log; and the raw_data GIN index, which no statement of
-- ims_repo reads, ~30 us.
--
-- 1. Inserted issues are audited by key. The row an INSERT wrote is in
--    ims.issues, so its audit row carries its key (record_id), its IMS id
--    (new_values = {"issue_id": …}), the actor, the time and the client
--    address: who inserted this issue and when. Still one audit row per
--    inserted row, from the statement's transition table, by one trigger call
--    per statement (SPEC §3). users and crawl_sessions, small and written one
--    row at a time, keep the whole new row.
-- 2. An UPDATE carries only what changed: old_values and new_values hold the
--    columns whose values differ (old -> new), the crawl bookkeeping included
--    when it moved along with a change. An UPDATE that changes no audited
--    column still writes nothing; a row whose key changed is still recorded
--    whole, as two rows (old key with old values, new key with new values).
--    DELETE keeps the whole old row (the row is gone).
-- 3. issues_raw_data_idx (0002) is dropped: no named statement filters on
--    ims.issues.raw_data (the JSONB filters of ims_repo are on
--    crawl_sessions.session_metadata). An application that adds one creates
--    the index it needs (docs/BENCHMARKS.md shows the cost per issue).
-- 4. ims.issues keeps rows of up to 8160 bytes inline and uncompressed
--    (toast_tuple_target, default 2032). An IMS-like issue (60-character
--    title, 400-character description, its search vector of ~1 kB in two
--    configurations) is ~1.9 kB, at the default threshold: the toaster
--    compressed (pglz) a fifth of the new rows (987 of 5,000 bench issues),
--    6-20% of the server's cost of an insert in A/Bs on a loaded machine. The
--    table grows by ~1.5%; reads by index fetch the same rows. Longer rows
--    are still compressed and moved out of line.
--
-- The rollback restores 0009's state exactly: 0005's audit_changes, the
-- issues INSERT trigger calling it, the raw_data index and the default
-- toast_tuple_target.
-- depends: 0009.search_ranking


-- Create everything below as the owner (see 0002 for why SET LOCAL). The
-- trigger and the index drop take locks on ims.issues: fail fast rather than
-- queue every crawler behind a long transaction.
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';


-- The audit trigger function of 0005, with UPDATE rows narrowed to the
-- columns that changed (see the header). Arguments as in 0005: TG_ARGV[0] the
-- key column, [1..] columns ignored when deciding whether an UPDATE changed a
-- row (recorded when they changed along with an audited column).
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
            CASE
                WHEN n.row_values IS NULL THEN o.row_values
                WHEN o.row_values IS NOT NULL THEN (
                    SELECT pg_catalog.jsonb_object_agg(e.key, e.value)
                    FROM pg_catalog.jsonb_each(o.row_values) AS e
                    WHERE e.value IS DISTINCT FROM n.row_values -> e.key
                )
            END,
            CASE
                WHEN o.row_values IS NULL THEN n.row_values
                WHEN n.row_values IS NOT NULL THEN (
                    SELECT pg_catalog.jsonb_object_agg(e.key, e.value)
                    FROM pg_catalog.jsonb_each(n.row_values) AS e
                    WHERE e.value IS DISTINCT FROM o.row_values -> e.key
                )
            END,
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
    'Statement-level audit trigger (SECURITY DEFINER, owner ims_owner): writes one ims.audit_log row per inserted, changed or deleted row, from the transition tables old_rows/new_rows; an UPDATE row holds only the columns that changed (old -> new). TG_ARGV[0] is the key column, further arguments are columns ignored when deciding whether an UPDATE changed anything.';


-- The INSERT audit of ims.issues: one audit row per inserted issue, with its
-- key as record_id and its IMS id as new_values (the row itself is in
-- ims.issues). Reads only those two columns of the transition table: no copy
-- of the row is built. SECURITY DEFINER for the reason of 0005's function.
CREATE FUNCTION ims.audit_issue_inserts()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, ims
AS $$
BEGIN
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
        ims.current_user_id(),
        'INSERT',
        TG_TABLE_NAME,
        nr.issue_pk::text,
        NULL,
        pg_catalog.jsonb_build_object('issue_id', nr.issue_id),
        pg_catalog.inet_client_addr()
    FROM new_rows AS nr;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION ims.audit_issue_inserts() IS
    'Statement-level INSERT audit trigger of ims.issues (SECURITY DEFINER, owner ims_owner): one ims.audit_log row per inserted issue with record_id = issue_pk and new_values = {"issue_id": …}; the inserted row itself is in ims.issues.';


REVOKE EXECUTE
    ON FUNCTION ims.audit_issue_inserts()
    FROM PUBLIC;


DROP TRIGGER issues_audit_insert
    ON ims.issues;


CREATE TRIGGER issues_audit_insert
    AFTER INSERT
    ON ims.issues
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.audit_issue_inserts();


-- No statement reads it (see the header). Not CONCURRENTLY: yoyo runs the file
-- in one transaction; dropping an index is quick, and lock_timeout bounds the wait.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX ims.issues_raw_data_idx;


-- Rows up to a page's worth stay inline and uncompressed (see the header).
ALTER TABLE ims.issues
    SET (toast_tuple_target = 8160);
