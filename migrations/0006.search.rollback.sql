-- Rollback of 0006 search: restores ims.search_issues exactly as 0004
-- defined it (full text only). CREATE OR REPLACE keeps its privileges.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;


-- Ranked full-text search over issues. The text is read as web-search syntax
-- (quotes, "or", -word) by websearch_to_tsquery, which accepts any input, so
-- any text is a valid query and is never interpreted as SQL. The english
-- query (stemmed) is OR'ed with the simple one (words as typed, e.g. Korean)
-- to match both halves of ims.issues.search_vector. An empty query gives no
-- rows. Best first; equal ranks in issue_pk order so pages are stable.
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
LIMIT GREATEST(COALESCE(search_issues.max_results, 50), 0);
$$;

COMMENT ON FUNCTION ims.search_issues(text, text, integer) IS
    'Ranked full-text search over ims.issues (title before description; english stemming and words as typed), optionally for one product, best first, at most max_results rows.';
