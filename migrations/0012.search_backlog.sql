-- 0012 search backlog: what a backlog of stale rank bounds (0011) costs a
-- search, down to ranking its stale matches once; and a refresh that leaves
-- the search as fast as after a VACUUM ANALYZE.
--
-- Why (issue 13, docs/BENCHMARKS.md, "Search at 10^6 with lazy rank bounds"):
-- with 100,000 stale issues among 10^6 the broad queries took 0.3-1.0 s
-- (about ranking every match) until refreshed, and right after the refresh
-- still up to 0.2 s until an ANALYZE. Three causes, three changes:
--
-- 1. The stale part is ranked once per call. In 0011 every bounded round of
--    ims.search_full_text ranked every stale issue that matches (41,000 of
--    100,000 for 'server -network'), although those ranks do not depend on
--    the round's threshold. The call now ranks them once, before the first
--    round, and keeps their best max_results (pks and ranks in two arrays);
--    each round merges these into the candidates of the bounds. The round's
--    top is the same: an issue among the stale matches but not among their
--    best max_results has max_results stale matches before it in the order
--    (rank DESC, issue_pk), so it cannot be in the top max_results of any set
--    that holds them. Both parts are read in the call's one snapshot (the
--    function is STABLE), so an issue found both ways (a stale issue whose
--    outdated bounds still name it) has one rank, and UNION keeps it once.
-- 2. The next threshold no longer falls below the true one. A round that
--    fills max_results but proves nothing set the next threshold just below
--    its last rank. When the stale matches fill the round, that is their
--    last rank, which can lie well below the true last rank of the top
--    (0.380 against 0.433 for 'crash or hang' with 20,000 stale), and at 0.4
--    or less the function gives up and ranks every match. Such a round's
--    next threshold is now the larger of the next listed one and just below
--    that rank; a round the bounds' candidates alone filled still sets it
--    just below its last rank, as in 0009 (see the function for why the top
--    stays exact either way).
-- 3. The refresh leaves the two tables as autovacuum would, some time
--    later. 0011's refresh emptied ims.issue_search_stale but, without an
--    ANALYZE (autovacuum may be off, or a minute away), the planner still
--    expected the backlog there and planned the stale part for it: a bitmap
--    scan over every match of the query before it found the stale set empty
--    (13 ms for 'crash or hang', in each of its 10 rounds). And the bounds it
--    wrote sat in the GIN index's pending list (up to gin_pending_list_limit,
--    4 MB: 514 pages at 10^6 issues), which every lookup of every round scans
--    whole until a VACUUM merges it: 2-13 ms a round, 73 against 33 ms for
--    'crash or hang'. Only the tables' owner may ANALYZE them or clean the
--    list, so ims.refresh_search_bounds now calls ims.maintain_search_bounds,
--    a SECURITY DEFINER function that, when the refresh drained the stale set
--    (took fewer rows than it was asked for: the end of a backlog), merges
--    the pending list (about 0.1 s at most) and analyzes the stale table if
--    the planner still expects rows there; and after any refresh analyzes
--    the bounds table if it was never analyzed or has grown by a tenth since
--    its statistics were taken (a never-analyzed bounds table makes
--    ims.search_estimate guess 0.5% of the rows: every query then ranks all
--    its matches). It never waits for a transaction: a table another one is
--    analyzing or vacuuming is skipped. (Turning the pending list off,
--    fastupdate = off, made the refresh 3x slower: 1.0 s against 3.2 s per
--    20,000 issues at 10^6.)
--
-- The rollback restores 0011's ims.search_full_text and
-- ims.refresh_search_bounds exactly and drops ims.maintain_search_bounds.
-- depends: 0011.lazy_rank_bounds


-- Create everything below as the owner (see 0002 for why SET LOCAL). Only
-- functions change (CREATE OR REPLACE keeps their privileges); the locks
-- are on the catalog: fail fast rather than queue behind a long transaction.
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';


-- Leaves the tables of the rank bounds as autovacuum would after a refresh
-- (see the header). Run as the owner (SECURITY DEFINER, fixed search_path):
-- ANALYZE and gin_clean_pending_list need the owner, and the runtime role
-- that refreshes needs no more than EXECUTE on this, which decides for
-- itself what to do:
--
-- - when the caller drained the stale set (drained: its refresh took fewer
--   rows than it asked for, so only rows other transactions hold are left):
--   the pending list of ims.issue_search_bounds_impacts_idx is merged into
--   the index (gin_clean_pending_list; the list's entries would otherwise be
--   merged by the insert that overflows it, or by a VACUUM: the work is done
--   once either way), and ims.issue_search_stale is analyzed if the planner
--   expects more than autovacuum_analyze_threshold rows (default 50) in it
--   (one bigint column: a few hundred pages at most);
-- - ims.issue_search_bounds is analyzed when it was never analyzed
--   (reltuples < 0) and has a page, or has more than a tenth (and a page)
--   more pages than when its statistics were taken (relpages), as
--   autovacuum's default rule would count the rows a refresh adds. Between
--   the two the planner scales its row counts with the pages; the lexemes'
--   frequencies stay those of the sample.
--
-- Each ANALYZE first tries its lock (SHARE UPDATE EXCLUSIVE, NOWAIT): a table
-- being analyzed or vacuumed by someone else (another refresh, autovacuum) is
-- left to them. The pending list's merge holds the index's metapage lock for
-- its duration only (another merge may make it wait that long, never for a
-- transaction). Inside the caller's transaction ANALYZE counts the rows the
-- transaction removed as gone and those it wrote as present.
CREATE FUNCTION ims.maintain_search_bounds(drained boolean)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, ims
AS $$
DECLARE
    merged bigint;
    plan json;
    expected double precision;
    due boolean;
BEGIN
    IF drained THEN
        merged := gin_clean_pending_list('ims.issue_search_bounds_impacts_idx'::regclass);
        RAISE DEBUG 'ims.maintain_search_bounds: % pages of pending bounds merged', merged;
        EXECUTE 'EXPLAIN (FORMAT JSON) SELECT FROM ims.issue_search_stale' INTO plan;
        expected := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision;
        IF expected > current_setting('autovacuum_analyze_threshold')::double precision THEN
            BEGIN
                LOCK TABLE ims.issue_search_stale IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;
                ANALYZE ims.issue_search_stale;
            EXCEPTION WHEN lock_not_available THEN
                RAISE DEBUG 'ims.maintain_search_bounds: ims.issue_search_stale is busy, not analyzed';
            END;
        END IF;
    END IF;
    SELECT (c.reltuples < 0 AND pg_relation_size(c.oid) > 0)
           OR pg_relation_size(c.oid) / current_setting('block_size')::bigint > c.relpages + 1 + c.relpages / 10
    INTO due
    FROM pg_class AS c
    WHERE c.oid = 'ims.issue_search_bounds'::regclass;
    IF due THEN
        BEGIN
            LOCK TABLE ims.issue_search_bounds IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;
            ANALYZE ims.issue_search_bounds;
        EXCEPTION WHEN lock_not_available THEN
            RAISE DEBUG 'ims.maintain_search_bounds: ims.issue_search_bounds is busy, not analyzed';
        END;
    END IF;
END
$$;

COMMENT ON FUNCTION ims.maintain_search_bounds(boolean) IS
    'SECURITY DEFINER (owner ims_owner), called by ims.refresh_search_bounds: when the refresh drained ims.issue_search_stale, merges the GIN pending list of ims.issue_search_bounds_impacts_idx and analyzes the stale table if the planner still expects rows in it; analyzes ims.issue_search_bounds when never analyzed or grown by a tenth since its statistics. A table being analyzed or vacuumed is skipped.';

REVOKE EXECUTE
    ON FUNCTION ims.maintain_search_bounds(boolean)
    FROM PUBLIC;

-- The runtime role refreshes, so it calls this from the refresh.
GRANT EXECUTE
    ON FUNCTION ims.maintain_search_bounds(boolean)
    TO ims_app;


-- As 0011's, then ims.maintain_search_bounds (see the header): a refresh
-- that took fewer stale rows than asked for drained the stale set.
-- CREATE OR REPLACE keeps the privileges.
CREATE OR REPLACE FUNCTION ims.refresh_search_bounds(max_issues integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
AS $$
DECLARE
    wanted integer := GREATEST(COALESCE(refresh_search_bounds.max_issues, 10000), 0);
    taken bigint[];
    refreshed integer;
BEGIN
    WITH cleared AS (
        DELETE FROM ims.issue_search_stale AS s
        WHERE s.issue_pk IN (
            SELECT t.issue_pk
            FROM ims.issue_search_stale AS t
            ORDER BY t.issue_pk
            LIMIT wanted
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
    PERFORM ims.maintain_search_bounds(cardinality(taken) < wanted);
    RETURN refreshed;
END
$$;

COMMENT ON FUNCTION ims.refresh_search_bounds(integer) IS
    'Computes the rank bounds (ims.issue_search_bounds) of up to max_issues issues of ims.issue_search_stale, oldest first, and removes them from it; returns how many. Then ims.maintain_search_bounds leaves the two tables as autovacuum would (statistics, the GIN pending list). Never waits for a transaction: skips stale rows other transactions hold, and tables being analyzed.';


-- As 0011's, with the stale part ranked once per call (1.) and the next
-- threshold of a round that filled max_results the larger of the next
-- listed one and just below its last rank (2.); see the header.
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
    stale_pks bigint[];
    stale_ranks real[];
    pks bigint[];
    ranks real[];
    ranked integer;
    by_bounds integer;
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
        -- The stale part, once: the best max_results of the stale issues that
        -- match, whose bounds are unknown (the planner picks the stale rows or
        -- the search vector's index, by their sizes). Their ranks do not
        -- depend on a round's threshold; no other stale match can reach the
        -- top of a round (see the header).
        SELECT COALESCE(array_agg(h.issue_pk ORDER BY h.rank DESC, h.issue_pk), '{}'),
               COALESCE(array_agg(h.rank ORDER BY h.rank DESC, h.issue_pk), '{}')
        INTO stale_pks, stale_ranks
        FROM (
            SELECT i.issue_pk, ts_rank(i.search_vector, tsq) AS rank
            FROM ims.issues AS i
            WHERE i.issue_pk IN (
                    SELECT s.issue_pk
                    FROM ims.issue_search_stale AS s
                )
              AND i.search_vector @@ tsq
              AND (search_full_text.product IS NULL OR i.product = search_full_text.product)
            ORDER BY rank DESC, i.issue_pk
            LIMIT wanted
        ) AS h;
        RAISE DEBUG 'ims.search_full_text: % stale matches kept', cardinality(stale_pks);
        threshold := thresholds[1];
        LOOP
            candidates := ims.search_candidates(operands.lexemes, operands.prefixes, operands.patterns, threshold);
            EXIT WHEN candidates IS NULL OR rounds = 20;
            rounds := rounds + 1;
            -- The best max_results candidates of the bounds ('' when none can
            -- reach the threshold; ts_match_vq(): the match checked on their
            -- rows, not looked up in issues_search_vector_idx as well), merged
            -- with the stale part. UNION: an issue found both ways counts
            -- once, with one rank.
            WITH bounded AS (
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
                ORDER BY rank DESC, i.issue_pk
                LIMIT wanted
            )
            SELECT COALESCE(array_agg(h.issue_pk ORDER BY h.rank DESC, h.issue_pk), '{}'),
                   COALESCE(array_agg(h.rank ORDER BY h.rank DESC, h.issue_pk), '{}'),
                   count(*),
                   min(h.rank),
                   (SELECT count(*) FROM bounded)
            INTO pks, ranks, ranked, last_rank, by_bounds
            FROM (
                SELECT bd.issue_pk, bd.rank
                FROM bounded AS bd
                UNION
                SELECT st.issue_pk, st.rank
                FROM unnest(stale_pks, stale_ranks) AS st (issue_pk, rank)
                ORDER BY rank DESC, issue_pk
                LIMIT wanted
            ) AS h;
            RAISE DEBUG 'ims.search_full_text: threshold %: % candidates (% of the bounds), last rank %',
                threshold, ranked, by_bounds, last_rank;
            -- Every other match ranks below the threshold (1e-5: more than the
            -- float rounding of a rank), so below these: they are the top.
            IF ranked = wanted AND last_rank >= threshold + 1e-5 THEN
                RAISE DEBUG 'ims.search_full_text: top % proved in % rounds', wanted, rounds;
                RETURN QUERY SELECT unnest(pks), unnest(ranks);
                RETURN;
            END IF;
            -- The next threshold. Whatever it is, the top stays exact: a round
            -- returns only what it proved above (its last rank at least its
            -- threshold + 1e-5, and every match neither a candidate nor stale
            -- below the threshold); a threshold only decides which candidates
            -- a round ranks. When the bounds' candidates alone filled
            -- max_results, as in 0009: that many matches rank last_rank or
            -- more, so the top's true last rank is at least last_rank, and just
            -- below it (2e-5) the next round proves: every issue that ranks
            -- last_rank or more is a candidate there, or stale. When only the
            -- stale matches made the round full, last_rank is theirs and can
            -- lie far below the true one (0011 jumped there: a round ranking
            -- most matches, or at 0.4 or less every match): the next listed
            -- threshold comes first, as with no backlog, unless last_rank -
            -- 2e-5 is larger (then the next round proves, as above). The
            -- threshold falls in every round, so the rounds end: a round that
            -- did not prove has last_rank below its threshold + 1e-5, and the
            -- next listed threshold is the first below this one.
            step := step + 1;
            WHILE thresholds[step] >= threshold LOOP
                step := step + 1;
            END LOOP;
            threshold := CASE
                WHEN by_bounds = wanted THEN last_rank - 2e-5
                WHEN ranked = wanted THEN GREATEST(thresholds[step], last_rank - 2e-5)
                ELSE thresholds[step]
            END;
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
    'The max_results full-text matches (ims.search_tsquery) with the highest ts_rank, ties in issue_pk order, optionally of one product: exactly the first rows of ranking every match, found through ims.issue_search_bounds (and the best stale matches, ranked once per call) when the ranks can be bounded.';
