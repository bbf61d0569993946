-- Statements on ims.session_issues: which issues a crawl session found, in what order
-- and how fast. User-owned: row-level security filters on the copied user_id, which
-- the composite foreign key (session_id, user_id) ties to the session's own user. The
-- writes below never take user_id from the caller: they copy it from the session, so a
-- session the context cannot see links nothing.

-- name: get :one
-- The link between this session and this issue, or nothing (also when it is hidden).
SELECT session_id, issue_pk, user_id, crawl_order, crawl_duration_ms, crawled_at
FROM ims.session_issues
WHERE session_id = :session_id
  AND issue_pk = :issue_pk;

-- name: for_session :many
-- A session's links in crawl order (links without a position last, then by issue).
SELECT session_id, issue_pk, user_id, crawl_order, crawl_duration_ms, crawled_at
FROM ims.session_issues
WHERE session_id = :session_id
ORDER BY crawl_order NULLS LAST, issue_pk;

-- name: find :many
-- Visible links matching the caller's whitelisted filters, ordered, one page (issue_pk
-- completes the key, so pages are stable).
SELECT session_id, issue_pk, user_id, crawl_order, crawl_duration_ms, crawled_at
FROM ims.session_issues
WHERE {filters}
ORDER BY {order_by}, issue_pk
LIMIT :limit
OFFSET :offset;

-- name: link :one
-- Links an issue to a session with the session's user_id; inserts nothing (no row
-- back) when the context cannot see the session, so the caller cannot tell another
-- user's session from a missing one.
INSERT INTO ims.session_issues (session_id, issue_pk, user_id, crawl_order,
                                crawl_duration_ms)
SELECT s.session_id, :issue_pk::bigint, s.user_id, :crawl_order::integer,
       :crawl_duration_ms::integer
FROM ims.crawl_sessions AS s
WHERE s.session_id = :session_id
RETURNING session_id, issue_pk, user_id, crawl_order, crawl_duration_ms, crawled_at;

-- name: link_many :one
-- Links every pair of :links (a JSON array of objects with session_id, issue_pk and
-- optional crawl_order, crawl_duration_ms) in one statement, each with its session's
-- user_id. All or nothing: if any session is missing or hidden, nothing is inserted
-- and missing_sessions lists those session ids (NULL when there are none); linked is
-- the number of links written.
WITH wanted AS (
    SELECT l.session_id, l.issue_pk, l.crawl_order, l.crawl_duration_ms, s.user_id
    FROM jsonb_populate_recordset(NULL::ims.session_issues, :links) AS l
    LEFT JOIN ims.crawl_sessions AS s
      ON s.session_id = l.session_id
),
linked AS (
    INSERT INTO ims.session_issues (session_id, issue_pk, user_id, crawl_order,
                                    crawl_duration_ms)
    SELECT w.session_id, w.issue_pk, w.user_id, w.crawl_order, w.crawl_duration_ms
    FROM wanted AS w
    WHERE NOT EXISTS (
        SELECT
        FROM wanted AS m
        WHERE m.user_id IS NULL
    )
    RETURNING session_id
)
SELECT (
           SELECT count(*)
           FROM linked
       ) AS linked,
       (
           SELECT array_agg(DISTINCT w.session_id ORDER BY w.session_id)
           FROM wanted AS w
           WHERE w.user_id IS NULL
       ) AS missing_sessions;

-- name: unlink :rowcount
-- Removes the link between this session and this issue (nothing when it is hidden).
DELETE FROM ims.session_issues
WHERE session_id = :session_id
  AND issue_pk = :issue_pk;
