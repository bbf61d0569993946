-- Statements on ims.analytics_daily and ims.analytics_monthly: per-user crawl figures,
-- recomputed by ims.refresh_analytics. Row-level security shows each context its own.

-- name: refresh :none
-- Recomputes the figures of one UTC day and of its month for every user the context
-- can see (one user, or everyone for an admin); other users' rows are left alone.
SELECT ims.refresh_analytics(:day);

-- name: daily :many
-- One user's daily figures for the days from :date_from to :date_to (both included),
-- by day.
SELECT user_id, stat_date, sessions_count, completed_sessions, failed_sessions,
       issues_crawled, unique_issues, errors_count, avg_duration_seconds,
       total_duration_seconds, updated_at
FROM ims.analytics_daily
WHERE user_id = :user_id
  AND stat_date BETWEEN :date_from AND :date_to
ORDER BY stat_date;

-- name: monthly :many
-- One user's monthly figures for the months from :month_from's to :month_to's (both
-- included; any day of a month stands for that month), by month.
SELECT user_id, month, sessions_count, completed_sessions, failed_sessions,
       issues_crawled, unique_issues, errors_count, avg_duration_seconds,
       total_duration_seconds, updated_at
FROM ims.analytics_monthly
WHERE user_id = :user_id
  AND month BETWEEN CAST(date_trunc('month', CAST(:month_from AS timestamp)) AS date)
                AND CAST(date_trunc('month', CAST(:month_to AS timestamp)) AS date)
ORDER BY month;
