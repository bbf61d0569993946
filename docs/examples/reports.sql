-- An application's own named statements, for shapes the repositories do not offer
-- (SPEC §4: OR across columns, other ad-hoc shapes). Same format, loader and checks as
-- ims_repo/queries/*.sql; the typed functions that run them are in reports.py.

-- name: urgent_issues :many
-- Issues that are urgent by either measure: this priority OR this severity (the usage
-- guide's or_() example). Shared table: every context sees every issue.
SELECT issue_pk, issue_id, title, product, status, priority, severity
FROM ims.issues
WHERE priority = :priority
   OR severity = :severity
ORDER BY issue_pk;

-- name: who_crawled :many
-- Who crawled which issue of a product, one row per crawl of an issue (users, their
-- crawl sessions, the sessions' issues). Row-level security applies as everywhere: an
-- ordinary user sees only their own sessions, an admin everyone's.
SELECT u.username, cs.session_id, cs.session_uuid, i.issue_id, i.title, si.crawl_order,
       si.crawled_at
FROM ims.users AS u
JOIN ims.crawl_sessions AS cs
  ON cs.user_id = u.user_id
JOIN ims.session_issues AS si
  ON si.session_id = cs.session_id
JOIN ims.issues AS i
  ON i.issue_pk = si.issue_pk
WHERE i.product = :product
ORDER BY u.username, cs.session_id, si.crawl_order, i.issue_id;
