-- Issue search through the database function ims.search_issues (migrations 0004,
-- 0006, 0009): full text in web-search syntax (Hangul words as word starts, the top
-- found through a bounds index), then title text for words inside others.

-- name: issues :many
-- Ranked hits for :query, optionally in one product, at most :max_results, best first.
-- The query is only ever a value: websearch_to_tsquery accepts any text.
SELECT issue_pk, issue_id, title, product, status, rank
FROM ims.search_issues(CAST(:query AS text), CAST(:product AS text),
                       CAST(:max_results AS integer))
ORDER BY rank DESC, issue_pk ASC;

-- name: refresh_bounds :scalar :write
-- Computes the rank bounds of up to :max_issues issues written since their last
-- refresh (ims.issue_search_stale, migration 0011) and returns how many; the search is
-- exact either way, stale issues only make broad queries rank more rows. :write: the
-- function writes, so it runs in the caller's transaction, never on a replica.
SELECT ims.refresh_search_bounds(CAST(:max_issues AS integer)) AS refreshed;
