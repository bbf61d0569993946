-- 0011 lazy rank bounds: an inserted or re-indexed issue no longer computes
-- its rank bounds (0009) on the write path; a refresh computes them later,
-- and the search stays exact meanwhile.
--
-- Why (issue 13, docs/BENCHMARKS.md): after 0010 the largest part of what a
-- fresh issue costs the server was 0009's bounds index
-- (issues_search_impacts_idx, an expression index over
-- ims.search_impacts(search_vector)): ~80-115 us per issue, more than the
-- whole plain table's insert. The bounds serve only the broad queries' top
-- (the candidates of 'server -network' at 10^6 issues); nothing needs them
-- the moment an issue is written.
--
-- 1. The bounds move out of the index into a table of their own,
--    ims.issue_search_bounds (issue_pk, impacts), with a GIN index over
--    impacts. Its rows are written by ims.refresh_search_bounds(), never by
--    a crawl.
-- 2. Every issue whose bounds are missing or describe an older search
--    vector has a row in ims.issue_search_stale: the statement-level
--    trigger issues_search_stale adds the issues an INSERT wrote, and those
--    an UPDATE gave another search vector, from the statement's transition
--    tables (the audit triggers build them already), and removes the issues
--    a DELETE removed (with their bounds).
--    ims.refresh_search_bounds(max_issues) takes up to max_issues stale
--    issues (oldest key first) out of the set, then computes their bounds
--    from their vectors as committed by then. It never waits and locks no
--    issue: a writer that changes a vector also writes (and so locks) its
--    stale row, and the refresh skips locked stale rows, so a vector
--    committed after the refresh read it always leaves its issue stale.
-- 3. ims.search_full_text, in its bounded rounds, ranks the candidates the
--    bounds table names AND every stale issue that matches (each with its
--    real ts_rank): an issue outside both is current in the bounds table
--    and ranks below the round's threshold, so the proof of 0009 holds and
--    the top is still exactly that of ranking every match. The stale set
--    only costs time: ranking its matches (about 2 us each), so a crawler
--    refreshes after an ingest (s.search.refresh_bounds()) or in the
--    background. ims.search_estimate reads the bounds table's statistics.
--
-- Cost: the stale trigger and its row, about 5 us per inserted issue,
-- against the index's ~100 us; the refresh pays what the index did, off the
-- write path, once per issue and re-index.
--
-- The rollback restores 0010's state exactly: the expression index (built
-- again), 0009's ims.search_full_text and ims.search_estimate, no tables.
-- depends: 0010.lean_writes


-- Create everything below as the owner (see 0002 for why SET LOCAL). The
-- trigger and the index take locks on ims.issues: fail fast rather than
-- queue every crawler behind a long transaction. Filling the bounds takes
-- about as long as 0009's index build (45-65 s at 10^6 issues).
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';


-- The bounds of every issue not in ims.issue_search_stale (see the header).
-- No foreign key: its check would lock every issue a refresh reads (a
-- tuple lock is a write); the DELETE trigger removes the bounds of deleted
-- issues instead. (A refresh that reads an issue while an uncommitted
-- DELETE removes it can leave a row for a key that no longer exists:
-- harmless, the search reads bounds only through ims.issues.)
CREATE TABLE ims.issue_search_bounds (
    issue_pk bigint NOT NULL,
    impacts tsvector NOT NULL,
    CONSTRAINT issue_search_bounds_pkey PRIMARY KEY (issue_pk)
);

COMMENT ON TABLE ims.issue_search_bounds IS
    'Upper bounds of each issue''s ts_rank contributions (ims.search_impacts of its search vector), written by ims.refresh_search_bounds(); current for every issue not in ims.issue_search_stale.';

COMMENT ON COLUMN ims.issue_search_bounds.issue_pk IS
    'The issue (ims.issues); the DELETE trigger of ims.issues removes the row with it.';

COMMENT ON COLUMN ims.issue_search_bounds.impacts IS
    'ims.search_impacts(search_vector) as of the last refresh: lexemes and lexeme#t tokens bounding their ts_rank contributions.';


-- Issues whose bounds are missing or out of date (see the header). No
-- foreign key: a check per inserted row would cost the write path what
-- this table saves; the DELETE trigger removes the rows of deleted issues.
CREATE TABLE ims.issue_search_stale (
    issue_pk bigint NOT NULL,
    CONSTRAINT issue_search_stale_pkey PRIMARY KEY (issue_pk)
);

COMMENT ON TABLE ims.issue_search_stale IS
    'Issues whose row in ims.issue_search_bounds is missing or out of date: ims.search_full_text ranks their matches exactly, ims.refresh_search_bounds() computes their bounds.';

COMMENT ON COLUMN ims.issue_search_stale.issue_pk IS
    'The issue (ims.issues) to refresh.';


-- Copy the bounds the index held (0009), then drop the index.
INSERT INTO ims.issue_search_bounds (issue_pk, impacts)
SELECT
    i.issue_pk,
    ims.search_impacts(i.search_vector)
FROM ims.issues AS i
ORDER BY i.issue_pk;

-- Built on the table filled just now, in this transaction (nothing else
-- sees the table yet).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX issue_search_bounds_impacts_idx
    ON ims.issue_search_bounds
    USING gin (impacts);

COMMENT ON INDEX ims.issue_search_bounds_impacts_idx IS
    'GIN over the bounds: ims.search_full_text finds the issues that can reach the top through it.';

-- Not CONCURRENTLY: yoyo runs the file in one transaction; dropping an index
-- is quick, and lock_timeout bounds the wait.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX ims.issues_search_impacts_idx;


-- Row-level security as on ims.issues (0003): enabled and forced; the owner
-- and the runtime role see every row of these shared tables.
ALTER TABLE ims.issue_search_bounds ENABLE ROW LEVEL SECURITY;
ALTER TABLE ims.issue_search_bounds FORCE ROW LEVEL SECURITY;
ALTER TABLE ims.issue_search_stale ENABLE ROW LEVEL SECURITY;
ALTER TABLE ims.issue_search_stale FORCE ROW LEVEL SECURITY;

CREATE POLICY issue_search_bounds_owner_all
    ON ims.issue_search_bounds
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);

CREATE POLICY issue_search_bounds_app_all
    ON ims.issue_search_bounds
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);

CREATE POLICY issue_search_stale_owner_all
    ON ims.issue_search_stale
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);

CREATE POLICY issue_search_stale_app_all
    ON ims.issue_search_stale
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);

-- The runtime role searches (SELECT) and refreshes (bounds written, stale
-- rows locked, FOR UPDATE needing UPDATE, and removed); the trigger (a
-- definer) adds stale rows and removes those and the bounds of deleted
-- issues.
GRANT SELECT, INSERT, UPDATE
    ON TABLE ims.issue_search_bounds
    TO ims_app;

GRANT SELECT, UPDATE, DELETE
    ON TABLE ims.issue_search_stale
    TO ims_app;


-- Keeps ims.issue_search_stale (see the header): one call per statement, from
-- its transition tables. SECURITY DEFINER (fixed search_path), so that any
-- writer of ims.issues, a DBA's UPDATE included, keeps the set without a
-- grant on it.
CREATE FUNCTION ims.mark_search_stale()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, ims
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ims.issue_search_stale (issue_pk)
        SELECT nr.issue_pk
        FROM new_rows AS nr
        ORDER BY nr.issue_pk
        ON CONFLICT (issue_pk) DO NOTHING;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO ims.issue_search_stale (issue_pk)
        SELECT nr.issue_pk
        FROM new_rows AS nr
        LEFT JOIN old_rows AS orow
          ON orow.issue_pk = nr.issue_pk
        WHERE orow.search_vector IS DISTINCT FROM nr.search_vector
        ORDER BY nr.issue_pk
        -- Write (lock) a row already there: a refresh then skips it, or this
        -- waits for the refresh that took it and adds it again.
        ON CONFLICT (issue_pk) DO UPDATE
        SET issue_pk = EXCLUDED.issue_pk;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM ims.issue_search_stale AS s
        USING old_rows AS orow
        WHERE s.issue_pk = orow.issue_pk;
        DELETE FROM ims.issue_search_bounds AS b
        USING old_rows AS orow
        WHERE b.issue_pk = orow.issue_pk;
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION ims.mark_search_stale() IS
    'Statement-level trigger of ims.issues (SECURITY DEFINER, owner ims_owner): adds to ims.issue_search_stale the issues an INSERT wrote and those an UPDATE gave another search vector (writing the row if it is there); removes those a DELETE removed, and their ims.issue_search_bounds.';

REVOKE EXECUTE
    ON FUNCTION ims.mark_search_stale()
    FROM PUBLIC;

CREATE TRIGGER issues_search_stale_insert
    AFTER INSERT
    ON ims.issues
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.mark_search_stale();

CREATE TRIGGER issues_search_stale_update
    AFTER UPDATE
    ON ims.issues
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.mark_search_stale();

CREATE TRIGGER issues_search_stale_delete
    AFTER DELETE
    ON ims.issues
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.mark_search_stale();


-- Takes up to max_issues stale issues, oldest key first, out of the stale
-- set, then computes their bounds; returns how many (see the header). In
-- READ COMMITTED (the default) the second statement sees every vector
-- committed by the time the first took the stale rows: a writer that
-- commits later holds, or waits to write, the stale row of its issue, which
-- the first statement skips or the writer adds again. (In REPEATABLE READ a
-- writer's committed stale row makes the first statement fail with a
-- serialization error instead.) Never waits for a lock.
CREATE FUNCTION ims.refresh_search_bounds(max_issues integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
AS $$
DECLARE
    taken bigint[];
    refreshed integer;
BEGIN
    WITH cleared AS (
        DELETE FROM ims.issue_search_stale AS s
        WHERE s.issue_pk IN (
            SELECT t.issue_pk
            FROM ims.issue_search_stale AS t
            ORDER BY t.issue_pk
            LIMIT GREATEST(COALESCE(refresh_search_bounds.max_issues, 10000), 0)
            FOR UPDATE SKIP LOCKED
        )
        RETURNING s.issue_pk
    )
    SELECT COALESCE(array_agg(c.issue_pk), '{}')
    INTO taken
    FROM cleared AS c;
    INSERT INTO ims.issue_search_bounds AS b (issue_pk, impacts)
    SELECT
        i.issue_pk,
        ims.search_impacts(i.search_vector)
    FROM ims.issues AS i
    WHERE i.issue_pk = ANY (taken)
    ORDER BY i.issue_pk
    ON CONFLICT (issue_pk) DO UPDATE
    SET impacts = EXCLUDED.impacts;
    GET DIAGNOSTICS refreshed = ROW_COUNT;
    RETURN refreshed;
END
$$;

COMMENT ON FUNCTION ims.refresh_search_bounds(integer) IS
    'Computes the rank bounds (ims.issue_search_bounds) of up to max_issues issues of ims.issue_search_stale, oldest first, and removes them from it; returns how many. Never waits: skips stale rows other transactions hold.';

REVOKE EXECUTE
    ON FUNCTION ims.refresh_search_bounds(integer)
    FROM PUBLIC;

GRANT EXECUTE
    ON FUNCTION ims.refresh_search_bounds(integer)
    TO ims_app;


-- As 0009's, over the bounds table: the planner's estimate of the issues (of
-- one product, or all) whose bounds match a query (one EXPLAIN, about
-- 0.2 ms). Stale issues are not counted: few of them means ranking every
-- match, which is exact too. CREATE OR REPLACE keeps the privileges.
CREATE OR REPLACE FUNCTION ims.search_estimate(query tsquery, product text)
RETURNS double precision
LANGUAGE plpgsql
VOLATILE
PARALLEL RESTRICTED
AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT FROM ims.issue_search_bounds AS b '
            'JOIN ims.issues AS i ON i.issue_pk = b.issue_pk '
            'WHERE b.impacts @@ $1 AND ($2::text IS NULL OR i.product = $2)'
        INTO plan
        USING query, product;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision;
END
$$;

COMMENT ON FUNCTION ims.search_estimate(tsquery, text) IS
    'The planner''s estimate of the issues (of one product, or all) whose bounds in ims.issue_search_bounds match a query.';


-- As 0009's, with the bounds in ims.issue_search_bounds: a bounded round
-- ranks the candidates the bounds name and every stale issue that matches
-- (see the header), so the top is still exactly that of ranking every match.
-- CREATE OR REPLACE keeps the privileges.
CREATE OR REPLACE FUNCTION ims.search_full_text(
    query text,
    product text DEFAULT NULL,
    max_results integer DEFAULT 50
)
RETURNS TABLE (issue_pk bigint, rank real)
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED
SECURITY INVOKER
SET plan_cache_mode = force_custom_plan
SET jit = off
SET work_mem = '32MB'
AS $$
DECLARE
    wanted integer := GREATEST(COALESCE(max_results, 50), 0);
    tsq tsquery := ims.search_tsquery(query);
    operands record;
    thresholds double precision[] := '{1.6, 1.3, 1.1, 0.95, 0.85, 0.75, 0.65, 0.55, 0.45}';
    step integer := 1;
    threshold double precision;
    rounds integer := 0;
    presence tsquery;
    estimate double precision;
    i integer;
    candidates text;
    pks bigint[];
    ranks real[];
    ranked integer;
    last_rank real;
BEGIN
    SELECT o.lexemes, o.prefixes, o.patterns INTO operands FROM ims.search_operands(tsq) AS o;
    IF wanted > 0 AND cardinality(operands.patterns) > 0 THEN
        -- The query over the bounds, to estimate: a prefix as its token ('시간*').
        presence := tsq;
        FOR i IN 1 .. cardinality(operands.lexemes) LOOP
            CONTINUE WHEN NOT operands.prefixes[i];
            presence := ts_rewrite(presence, ims.search_quote(operands.lexemes[i])::tsquery,
                                   ims.search_quote(left(operands.lexemes[i], 3) || '*')::tsquery);
        END LOOP;
        estimate := ims.search_estimate(presence, search_full_text.product);
        RAISE DEBUG 'ims.search_full_text: about % matches', round(estimate);
    END IF;
    IF estimate > COALESCE(NULLIF(current_setting('ims.search_rank_all_below', true), '')::double precision, 10000) THEN
        threshold := thresholds[1];
        LOOP
            candidates := ims.search_candidates(operands.lexemes, operands.prefixes, operands.patterns, threshold);
            EXIT WHEN candidates IS NULL OR rounds = 20;
            rounds := rounds + 1;
            -- The candidates of the bounds ('' when none can reach the
            -- threshold; ts_match_vq(): the match checked on their rows, not
            -- looked up in issues_search_vector_idx as well), and every stale
            -- issue that matches, whose bounds are unknown (the planner picks
            -- the stale rows or the search vector's index, by their sizes).
            -- UNION: an issue found both ways counts once, with one rank.
            SELECT COALESCE(array_agg(h.issue_pk ORDER BY h.rank DESC, h.issue_pk), '{}'),
                   COALESCE(array_agg(h.rank ORDER BY h.rank DESC, h.issue_pk), '{}'),
                   count(*),
                   min(h.rank)
            INTO pks, ranks, ranked, last_rank
            FROM (
                SELECT i.issue_pk, ts_rank(i.search_vector, tsq) AS rank
                FROM ims.issues AS i
                WHERE i.issue_pk IN (
                        SELECT b.issue_pk
                        FROM ims.issue_search_bounds AS b
                        WHERE candidates <> ''
                          AND b.impacts @@ candidates::tsquery
                    )
                  AND ts_match_vq(i.search_vector, tsq)
                  AND (search_full_text.product IS NULL OR i.product = search_full_text.product)
                UNION
                SELECT i.issue_pk, ts_rank(i.search_vector, tsq) AS rank
                FROM ims.issues AS i
                WHERE i.issue_pk IN (
                        SELECT s.issue_pk
                        FROM ims.issue_search_stale AS s
                    )
                  AND i.search_vector @@ tsq
                  AND (search_full_text.product IS NULL OR i.product = search_full_text.product)
                ORDER BY rank DESC, issue_pk
                LIMIT wanted
            ) AS h;
            RAISE DEBUG 'ims.search_full_text: threshold %: % candidates, last rank %', threshold, ranked, last_rank;
            -- Every other match ranks below the threshold (1e-5: more than the
            -- float rounding of a rank), so below these: they are the top.
            IF ranked = wanted AND last_rank >= threshold + 1e-5 THEN
                RAISE DEBUG 'ims.search_full_text: top % proved in % rounds', wanted, rounds;
                RETURN QUERY SELECT unnest(pks), unnest(ranks);
                RETURN;
            END IF;
            step := step + 1;
            threshold := CASE WHEN ranked = wanted THEN last_rank - 2e-5 ELSE thresholds[step] END;
            EXIT WHEN threshold IS NULL OR threshold <= 0.4;
        END LOOP;
    END IF;
    RAISE DEBUG 'ims.search_full_text: ranking every match';
    RETURN QUERY
    SELECT i.issue_pk, ts_rank(i.search_vector, tsq) AS rank
    FROM ims.issues AS i
    WHERE i.search_vector @@ tsq
      AND (search_full_text.product IS NULL OR i.product = search_full_text.product)
    ORDER BY rank DESC, i.issue_pk
    LIMIT wanted;
END
$$;

COMMENT ON FUNCTION ims.search_full_text(text, text, integer) IS
    'The max_results full-text matches (ims.search_tsquery) with the highest ts_rank, ties in issue_pk order, optionally of one product: exactly the first rows of ranking every match, found through ims.issue_search_bounds (and the stale issues) when the ranks can be bounded.';
