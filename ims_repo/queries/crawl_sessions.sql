-- Statements on ims.crawl_sessions: one search-and-download run of one user. Row-level
-- security shows each context only its own sessions (an admin sees all).

-- name: get :one
-- The crawl session with this id, or nothing (also when it is another user's).
SELECT session_id, session_uuid, user_id, product, original_query, parsed_query,
       query_language, max_results, status, started_at, completed_at, duration_seconds,
       total_issues, data_path, session_metadata, created_at
FROM ims.crawl_sessions
WHERE session_id = :session_id;

-- name: get_by_uuid :one
-- The crawl session with this UUID, or nothing.
SELECT session_id, session_uuid, user_id, product, original_query, parsed_query,
       query_language, max_results, status, started_at, completed_at, duration_seconds,
       total_issues, data_path, session_metadata, created_at
FROM ims.crawl_sessions
WHERE session_uuid = :session_uuid;

-- name: find :many
-- Visible crawl sessions matching the caller's whitelisted filters, ordered, one page.
SELECT session_id, session_uuid, user_id, product, original_query, parsed_query,
       query_language, max_results, status, started_at, completed_at, duration_seconds,
       total_issues, data_path, session_metadata, created_at
FROM ims.crawl_sessions
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: list_for_user :many
-- One user's crawl sessions, oldest first (RLS still applies: others' come back empty).
SELECT session_id, session_uuid, user_id, product, original_query, parsed_query,
       query_language, max_results, status, started_at, completed_at, duration_seconds,
       total_issues, data_path, session_metadata, created_at
FROM ims.crawl_sessions
WHERE user_id = :user_id
ORDER BY session_id;

-- name: create :one
-- Records a crawl session; RLS refuses a user_id other than the context's.
INSERT INTO ims.crawl_sessions (session_uuid, user_id, product, original_query, parsed_query,
                                query_language, max_results, status, started_at,
                                completed_at, duration_seconds, total_issues, data_path,
                                session_metadata)
VALUES (:session_uuid, :user_id, :product, :original_query, :parsed_query, :query_language,
        :max_results, :status, :started_at, :completed_at, :duration_seconds, :total_issues,
        :data_path, :session_metadata)
RETURNING session_id, session_uuid, user_id, product, original_query, parsed_query,
          query_language, max_results, status, started_at, completed_at, duration_seconds,
          total_issues, data_path, session_metadata, created_at;

-- name: update :one
-- Changes the fields present in :changes (a JSON object); the others keep their value.
UPDATE ims.crawl_sessions AS s
SET (product, original_query, parsed_query, query_language, max_results, status,
     started_at, completed_at, duration_seconds, total_issues, data_path,
     session_metadata) = (
        SELECT c.product, c.original_query, c.parsed_query, c.query_language, c.max_results,
               c.status, c.started_at, c.completed_at, c.duration_seconds, c.total_issues,
               c.data_path, c.session_metadata
        FROM jsonb_populate_record(s, :changes) AS c
    )
WHERE s.session_id = :session_id
RETURNING s.session_id, s.session_uuid, s.user_id, s.product, s.original_query,
          s.parsed_query, s.query_language, s.max_results, s.status, s.started_at,
          s.completed_at, s.duration_seconds, s.total_issues, s.data_path,
          s.session_metadata, s.created_at;

-- name: delete :rowcount
-- Removes a crawl session and, with it, its links, errors and search-log references.
DELETE FROM ims.crawl_sessions
WHERE session_id = :session_id;

-- name: duration_stats :one
-- Average, shortest and longest duration over the visible sessions that have one.
SELECT avg(duration_seconds) AS avg,
       min(duration_seconds) AS min,
       max(duration_seconds) AS max
FROM ims.crawl_sessions;

-- name: with_metadata_key :many
-- Sessions whose metadata has this top-level key (served by the GIN index).
SELECT session_id, session_uuid, user_id, product, original_query, parsed_query,
       query_language, max_results, status, started_at, completed_at, duration_seconds,
       total_issues, data_path, session_metadata, created_at
FROM ims.crawl_sessions
WHERE session_metadata ? :key
ORDER BY session_id;

-- name: metadata_contains :many
-- Sessions whose metadata contains the JSON object :document (served by the GIN index);
-- also answers find_by_metadata, which builds {"a": {"b": value}} from a key path.
SELECT session_id, session_uuid, user_id, product, original_query, parsed_query,
       query_language, max_results, status, started_at, completed_at, duration_seconds,
       total_issues, data_path, session_metadata, created_at
FROM ims.crawl_sessions
WHERE session_metadata @> :document
ORDER BY session_id;

-- name: issues :many
-- The issues one session crawled, each with its crawl order, duration and time, in
-- crawl order (issues without a position last, then by issue). Row-level security on
-- session_issues makes this empty for a session the context cannot see. Issues are read
-- with their current crawl bookkeeping (ims.issues_with_crawls, migration 0007).
SELECT i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
       i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
       i.issue_updated_at, i.url, i.raw_data, i.first_crawled_at, i.last_crawled_at,
       i.crawl_count,
       si.crawl_order, si.crawl_duration_ms, si.crawled_at
FROM ims.session_issues AS si
JOIN ims.issues_with_crawls AS i
  ON i.issue_pk = si.issue_pk
WHERE si.session_id = :session_id
ORDER BY si.crawl_order NULLS LAST, si.issue_pk;
