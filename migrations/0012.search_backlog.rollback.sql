-- Rollback of 0012 search backlog: restores 0011's state exactly: its
-- ims.refresh_search_bounds (no ANALYZE) and ims.search_full_text (the stale
-- part ranked in every round, a full round's next threshold just below its
-- last rank), with their comments (CREATE OR REPLACE keeps their
-- privileges), and no ims.maintain_search_bounds.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';


-- As in 0011.
CREATE OR REPLACE FUNCTION ims.refresh_search_bounds(max_issues integer DEFAULT 10000)
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


DROP FUNCTION ims.maintain_search_bounds(boolean);


-- As in 0011.
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
