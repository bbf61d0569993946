-- Statements on ims.search_queries: the search log, one row per search a user ran.
-- Row-level security shows each context only its own searches (an admin sees all).

-- name: get :one
-- The logged search with this id, or nothing (also when it is another user's).
SELECT query_id, user_id, session_id, query_text, parsed_query, query_language,
       result_count, execution_time_ms, executed_at
FROM ims.search_queries
WHERE query_id = :query_id;

-- name: find :many
-- Visible logged searches matching the caller's whitelisted filters, ordered, one page.
SELECT query_id, user_id, session_id, query_text, parsed_query, query_language,
       result_count, execution_time_ms, executed_at
FROM ims.search_queries
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: log :one
-- Records a search (executed now unless :executed_at says when). RLS refuses another
-- user's user_id; the composite foreign key refuses a session_id of another user.
INSERT INTO ims.search_queries (user_id, session_id, query_text, parsed_query,
                                query_language, result_count, execution_time_ms,
                                executed_at)
VALUES (:user_id, :session_id, :query_text, :parsed_query, :query_language, :result_count,
        :execution_time_ms, COALESCE(:executed_at, now()))
RETURNING query_id, user_id, session_id, query_text, parsed_query, query_language,
          result_count, execution_time_ms, executed_at;

-- name: delete :rowcount
-- Removes one logged search (the usage guide's "delete single record"); a row the
-- context cannot see is not deleted.
DELETE FROM ims.search_queries
WHERE query_id = :query_id;
