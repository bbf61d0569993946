-- Statements on ims.users: accounts of the people who run crawls (a shared table:
-- every context sees every user; only the owner changes a role).

-- name: get :one
-- The user with this id, or nothing.
SELECT user_id, username, email, full_name, department, role, is_active, preferences,
       created_at, updated_at, last_login_at
FROM ims.users
WHERE user_id = :user_id;

-- name: get_by_username :one
-- The user with this username, or nothing.
SELECT user_id, username, email, full_name, department, role, is_active, preferences,
       created_at, updated_at, last_login_at
FROM ims.users
WHERE username = :username;

-- name: find :many
-- Users matching the caller's whitelisted filters, in the requested order, one page.
SELECT user_id, username, email, full_name, department, role, is_active, preferences,
       created_at, updated_at, last_login_at
FROM ims.users
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: create :one
-- Adds a user; the database refuses role 'admin' from the runtime role.
INSERT INTO ims.users (username, email, full_name, department, role, is_active, preferences,
                       last_login_at)
VALUES (:username, :email, :full_name, :department, :role, :is_active, :preferences,
        :last_login_at)
RETURNING user_id, username, email, full_name, department, role, is_active, preferences,
          created_at, updated_at, last_login_at;

-- name: update :one
-- Changes the fields present in :changes (a JSON object); fields it leaves out keep
-- their value. The role is not among them: only the owner changes it.
UPDATE ims.users AS u
SET (username, email, full_name, department, is_active, preferences, last_login_at) = (
        SELECT c.username, c.email, c.full_name, c.department, c.is_active, c.preferences,
               c.last_login_at
        FROM jsonb_populate_record(u, :changes) AS c
    ),
    updated_at = now()
WHERE u.user_id = :user_id
RETURNING u.user_id, u.username, u.email, u.full_name, u.department, u.role, u.is_active,
          u.preferences, u.created_at, u.updated_at, u.last_login_at;

-- name: delete :rowcount
-- Removes a user; refused while crawl data of theirs exists (no hidden cascades).
DELETE FROM ims.users
WHERE user_id = :user_id;

-- name: with_sessions :many
-- Users (filtered and ordered like find) each with the crawl sessions the context can
-- see, as a JSON array in session order; users without sessions get [] (outer join).
SELECT u.user_id, u.username, u.email, u.full_name, u.department, u.role, u.is_active,
       u.preferences, u.created_at, u.updated_at, u.last_login_at,
       coalesce(s.sessions, '[]'::json) AS sessions
FROM ims.users AS u
LEFT JOIN LATERAL (
    SELECT json_agg(cs ORDER BY cs.session_id) AS sessions
    FROM (
        SELECT session_id, session_uuid, user_id, product, original_query, parsed_query,
               query_language, max_results, status, started_at, completed_at,
               duration_seconds, total_issues, data_path, session_metadata, created_at
        FROM ims.crawl_sessions
        WHERE user_id = u.user_id
    ) AS cs
) AS s ON TRUE
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: stats :one
-- The user's crawl figures from ims.get_user_stats (sessions the context can see).
SELECT total_sessions, completed_sessions, failed_sessions, total_issues,
       avg_duration_seconds, last_session_at
FROM ims.get_user_stats(:user_id);
