-- Rollback of 0011 lazy rank bounds: restores 0010's state exactly: 0009's
-- expression index of bounds (built again over every issue: 45-65 s at 10^6),
-- 0009's ims.search_estimate and ims.search_full_text (CREATE OR REPLACE
-- keeps their privileges), no stale trigger, no bounds or stale table.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';


DROP TRIGGER issues_search_stale_insert
    ON ims.issues;

DROP TRIGGER issues_search_stale_update
    ON ims.issues;

DROP TRIGGER issues_search_stale_delete
    ON ims.issues;

DROP FUNCTION ims.mark_search_stale();

DROP FUNCTION ims.refresh_search_bounds(integer);


-- As in 0009.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX issues_search_impacts_idx
    ON ims.issues
    USING gin (ims.search_impacts(search_vector));

COMMENT ON INDEX ims.issues_search_impacts_idx IS
    'GIN over ims.search_impacts(search_vector): lexemes and bounds of their ts_rank contributions; ims.search_full_text finds the issues that can reach the top through it.';


-- As in 0009 (CREATE OR REPLACE: the privileges stay).
-- The planner's estimate of the issues a query over ims.search_impacts
-- matches (one EXPLAIN, about 0.2 ms): below ten thousand, ranking every
-- match is as cheap as bounding. Over the impacts, not the search vector: its
-- statistics count the Hangul prefixes ('시간*') as tokens, where the
-- estimate of a prefix match ('시간':*) on the vector is ten times too low.
-- VOLATILE because EXPLAIN is refused in a STABLE function; it reads nothing
-- but statistics.
CREATE OR REPLACE FUNCTION ims.search_estimate(query tsquery, product text)
RETURNS double precision
LANGUAGE plpgsql
VOLATILE
PARALLEL RESTRICTED
AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT FROM ims.issues '
            'WHERE ims.search_impacts(search_vector) @@ $1 AND ($2::text IS NULL OR product = $2)'
        INTO plan
        USING query, product;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision;
END
$$;

COMMENT ON FUNCTION ims.search_estimate(tsquery, text) IS
    'The planner''s estimate of the issues (of one product, or all) whose ims.search_impacts match a query.';


-- The max_results full-text matches of the query with the highest ts_rank,
-- equal ranks in issue_pk order: exactly the first rows of ranking every
-- match, found through ims.issues_search_impacts_idx when the ranks can be
-- bounded and the planner expects more than ims.search_rank_all_below
-- matches (a setting, default 10000; 0: always bound). Thresholds are tried
-- from the top down; a round that finds max_results candidates but cannot
-- prove them sets the threshold just below their last rank, where the next
-- round always proves. DEBUG messages tell which way a query went. Own
-- settings: custom plans (each round's tsquery decides between index and
-- scan), no JIT (compiling costs more than these queries), enough work_mem
-- for exact bitmaps.
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
        -- The query over the impacts, to estimate: a prefix as its token ('시간*').
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
            ranked := 0;
            IF candidates <> '' THEN
                -- ts_match_vq(): the match is checked on the candidates' rows, not
                -- looked up in issues_search_vector_idx as well.
                SELECT COALESCE(array_agg(h.issue_pk ORDER BY h.rank DESC, h.issue_pk), '{}'),
                       COALESCE(array_agg(h.rank ORDER BY h.rank DESC, h.issue_pk), '{}'),
                       count(*),
                       min(h.rank)
                INTO pks, ranks, ranked, last_rank
                FROM (
                    SELECT i.issue_pk, ts_rank(i.search_vector, tsq) AS rank
                    FROM ims.issues AS i
                    WHERE ims.search_impacts(i.search_vector) @@ candidates::tsquery
                      AND ts_match_vq(i.search_vector, tsq)
                      AND (search_full_text.product IS NULL OR i.product = search_full_text.product)
                    ORDER BY rank DESC, i.issue_pk
                    LIMIT wanted
                ) AS h;
            END IF;
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
    'The max_results full-text matches (ims.search_tsquery) with the highest ts_rank, ties in issue_pk order, optionally of one product: exactly the first rows of ranking every match, found through issues_search_impacts_idx when the ranks can be bounded.';


DROP TABLE ims.issue_search_stale;

DROP TABLE ims.issue_search_bounds;
