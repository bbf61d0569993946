-- Rollback of 0009 search ranking: restores ims.search_issues exactly as 0006
-- defined it (every full-text match ranked; Hangul words matched whole, found
-- with particles by the title-text tier only), then drops the bounds and pairs
-- indexes and the functions 0009 added. CREATE OR REPLACE keeps search_issues' privileges.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;

SET LOCAL lock_timeout = '5s';


-- As in 0006.
CREATE OR REPLACE FUNCTION ims.search_issues(
    query text,
    product text DEFAULT NULL,
    max_results integer DEFAULT 50
)
RETURNS TABLE (
    issue_pk bigint,
    issue_id text,
    title text,
    product text,
    status text,
    rank real
)
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
WITH full_text AS (
    SELECT
        i.issue_pk,
        i.issue_id,
        i.title,
        i.product,
        i.status,
        ts_rank(i.search_vector, q.tsq) AS rank
    FROM (
        SELECT
            websearch_to_tsquery('english'::regconfig, COALESCE(search_issues.query, ''))
            || websearch_to_tsquery('simple'::regconfig, COALESCE(search_issues.query, '')) AS tsq
    ) AS q
    JOIN ims.issues AS i
      ON i.search_vector @@ q.tsq
    WHERE search_issues.product IS NULL
       OR i.product = search_issues.product
    ORDER BY
        rank DESC,
        i.issue_pk
    LIMIT GREATEST(COALESCE(search_issues.max_results, 50), 0)
),
title_text AS (
    SELECT
        i.issue_pk,
        i.issue_id,
        i.title,
        i.product,
        i.status,
        (ims.word_similarity(search_issues.query, i.title) - 1)::real AS rank
    FROM (
        SELECT
            -- '%' around the trimmed query and for every run of whitespace,
            -- after escaping the LIKE metacharacters in it.
            '%' || regexp_replace(
                replace(replace(replace(
                    regexp_replace(search_issues.query, '^[[:space:]]+|[[:space:]]+$', '', 'g'),
                    '\', '\\'), '%', '\%'), '_', '\_'),
                '[[:space:]]+', '%', 'g'
            ) || '%' AS pattern
        WHERE search_issues.query ~ '[^[:space:]]'
          AND search_issues.query !~* '"|(^|[[:space:]])(-|or([[:space:]]|$))'
    ) AS q
    JOIN ims.issues AS i
      ON i.title ILIKE q.pattern
    WHERE (SELECT count(*) FROM full_text) < GREATEST(COALESCE(search_issues.max_results, 50), 0)
      AND (search_issues.product IS NULL
           OR i.product = search_issues.product)
      AND NOT EXISTS (
          SELECT
          FROM full_text AS f
          WHERE f.issue_pk = i.issue_pk
      )
    ORDER BY
        rank DESC,
        i.issue_pk
    LIMIT GREATEST(COALESCE(search_issues.max_results, 50), 0) - (SELECT count(*) FROM full_text)
)
SELECT
    hit.issue_pk,
    hit.issue_id,
    hit.title,
    hit.product,
    hit.status,
    hit.rank
FROM (
    SELECT
        ft.issue_pk,
        ft.issue_id,
        ft.title,
        ft.product,
        ft.status,
        ft.rank
    FROM full_text AS ft
    UNION ALL
    SELECT
        tt.issue_pk,
        tt.issue_id,
        tt.title,
        tt.product,
        tt.status,
        tt.rank
    FROM title_text AS tt
) AS hit
ORDER BY
    hit.rank DESC,
    hit.issue_pk;
$$;

COMMENT ON FUNCTION ims.search_issues(text, text, integer) IS
    'Ranked issue search, best first, at most max_results rows, optionally for one product: full-text hits (web-search syntax; title before description; english stemming and words as typed; rank = ts_rank > 0), then, when those are fewer than max_results and the query has no web-search operator, issues whose title contains the query''s words as text, in order, any case, anything between them (trigram index; rank = word_similarity - 1, <= 0).';


DROP FUNCTION ims.search_title_text(text, text, integer, bigint[]);
DROP FUNCTION ims.search_full_text(text, text, integer);
DROP FUNCTION ims.search_estimate(tsquery, text);
DROP FUNCTION ims.search_candidates(text[], boolean[], integer[], double precision);
DROP FUNCTION ims.search_operands(tsquery);
DROP INDEX ims.issues_title_bigrams_idx;
DROP FUNCTION ims.search_bigrams(text);
DROP INDEX ims.issues_search_impacts_idx;
DROP FUNCTION ims.search_impacts(tsvector);
DROP FUNCTION ims.search_quote(text);
DROP FUNCTION ims.search_tsquery(text);
