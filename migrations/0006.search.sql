-- 0006 search: ims.search_issues also finds words glued to other text, such
-- as Korean words with their particles.
--
-- The stored search vector holds whole words (english stemmed, simple as
-- typed). Korean attaches particles to words: the title '연결 시간이
-- 초과되었습니다' holds the word '시간이', so the query '시간' (time) finds
-- nothing by full text. When the full-text search finds fewer than
-- max_results issues, the function now adds issues whose title contains the
-- query's words as text (in the order typed, any case, anything between
-- them), served by the trigram index issues_title_trgm_idx and ranked after
-- every full-text hit.
--
-- Same signature and result columns as 0004 (CREATE OR REPLACE keeps the
-- function's privileges); the rollback restores the 0004 definition.
-- depends: 0005.audit


-- Create everything below as the owner (see 0002 for why SET LOCAL).
SET LOCAL ROLE ims_owner;


-- Ranked issue search in two tiers, best first, at most max_results rows.
--
-- 1. Full text, as in 0004: the text is read as web-search syntax (quotes,
--    "or", -word) by websearch_to_tsquery, which accepts any input; the
--    english query (stemmed) is OR'ed with the simple one (words as typed).
--    rank = ts_rank, always > 0 for a hit.
-- 2. Title text, only when tier 1 found fewer than max_results and the
--    query is plain (no web-search operator: no double quote, no word
--    starting with '-', no word 'or'; with operators the caller asked for
--    their exact meaning, which a text match would not keep): issues not
--    already found whose title contains the query's words in the order
--    typed, in any case, with any text between them (title ILIKE
--    '%word1%word2%'). The query is escaped for LIKE first (backslash, % and
--    _ stand for themselves), so any text is still a valid query. The one
--    pattern is served by the trigram index on title; when every word is
--    shorter than three characters (the two-syllable Korean '시간') it gives
--    the index no trigram to look up, and the index then returns every row
--    for the pattern to check.
--    rank = word_similarity(query, title) - 1, in [-1, 0]: below every
--    full-text hit, and higher when the query's words start words of the
--    title (a stem with its particle).
--
-- An empty query gives no rows. Equal ranks in issue_pk order so pages are
-- stable. SECURITY INVOKER and a single SQL statement whose inputs are
-- computed by immutable expressions, so the planner inlines it into the
-- caller's query and plans it for the caller's values.
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
