-- Statements on ims.session_errors: errors met during crawl sessions. Row-level
-- security shows each context only its own (an admin sees all).

-- name: get :one
-- The error with this id, or nothing (also when it is another user's).
SELECT error_id, session_id, user_id, severity, error_type, error_message, stack_trace,
       issue_id, context, occurred_at
FROM ims.session_errors
WHERE error_id = :error_id;

-- name: find :many
-- Visible errors matching the caller's whitelisted filters, ordered, one page.
SELECT error_id, session_id, user_id, severity, error_type, error_message, stack_trace,
       issue_id, context, occurred_at
FROM ims.session_errors
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: for_session :many
-- One crawl session's errors in the order they occurred (empty for a hidden session).
SELECT error_id, session_id, user_id, severity, error_type, error_message, stack_trace,
       issue_id, context, occurred_at
FROM ims.session_errors
WHERE session_id = :session_id
ORDER BY occurred_at, error_id;

-- name: create :one
-- Records an error (occurred now unless :occurred_at says when). RLS refuses another
-- user's user_id; the composite foreign key refuses a user_id that is not the session's.
INSERT INTO ims.session_errors (session_id, user_id, severity, error_type, error_message,
                                stack_trace, issue_id, context, occurred_at)
VALUES (:session_id, :user_id, :severity, :error_type, :error_message, :stack_trace,
        :issue_id, :context, COALESCE(:occurred_at, now()))
RETURNING error_id, session_id, user_id, severity, error_type, error_message, stack_trace,
          issue_id, context, occurred_at;

-- name: delete :rowcount
-- Removes one error; a row the context cannot see is not deleted.
DELETE FROM ims.session_errors
WHERE error_id = :error_id;

-- name: delete_by_severity :rowcount
-- Removes every visible error of one severity (the usage guide's bulk delete): an
-- ordinary user's own rows only, RLS sees to that (served by the severity index).
DELETE FROM ims.session_errors
WHERE severity = :severity;
