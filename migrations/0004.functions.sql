-- 0004 functions: the database functions of SPEC §2 that DBAs call from psql
-- as well as the application: user statistics, full-text issue search and
-- the analytics refresh.
--
-- All are SQL, SECURITY INVOKER: they run with the caller's rights, so
-- row-level security applies inside them exactly as to the caller's own
-- statements. Parameters are referred to as function_name.parameter because
-- in a SQL function a column of the same name would otherwise win.
-- depends: 0003.rls


-- Create everything below as the owner (see 0002 for why SET LOCAL).
SET LOCAL ROLE ims_owner;


-- One row of crawl statistics for a user. Counts are zero when the user has
-- no (visible) sessions; the average and the last session time are then
-- NULL, as there is nothing to average. Row-level security applies: asking
-- for another user's figures as an ordinary user gives zeros.
CREATE FUNCTION ims.get_user_stats(user_id bigint)
RETURNS TABLE (
    total_sessions bigint,
    completed_sessions bigint,
    failed_sessions bigint,
    total_issues bigint,
    avg_duration_seconds numeric,
    last_session_at timestamptz
)
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
SELECT
    count(*) AS total_sessions,
    count(*) FILTER (WHERE cs.status = 'completed') AS completed_sessions,
    count(*) FILTER (WHERE cs.status = 'failed') AS failed_sessions,
    COALESCE(sum(cs.total_issues), 0)::bigint AS total_issues,
    round(avg(cs.duration_seconds), 2) AS avg_duration_seconds,
    max(COALESCE(cs.started_at, cs.created_at)) AS last_session_at
FROM ims.crawl_sessions AS cs
WHERE cs.user_id = get_user_stats.user_id;
$$;

COMMENT ON FUNCTION ims.get_user_stats(bigint) IS
    'One row of crawl statistics of a user over ims.crawl_sessions (row-level security applies): session counts, issues reported, average duration, last session time.';


-- Ranked full-text search over issues. The text is read as web-search syntax
-- (quotes, "or", -word) by websearch_to_tsquery, which accepts any input, so
-- any text is a valid query and is never interpreted as SQL. The english
-- query (stemmed) is OR'ed with the simple one (words as typed, e.g. Korean)
-- to match both halves of ims.issues.search_vector. An empty query gives no
-- rows. Best first; equal ranks in issue_pk order so pages are stable.
CREATE FUNCTION ims.search_issues(
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


-- Per-user figures of the crawl sessions that started (or, not yet started,
-- were created) in [period_start, period_end) as UTC days, as far as the
-- caller can see them (row-level security). The building block of
-- ims.refresh_analytics, callable on its own for ad-hoc periods.
CREATE FUNCTION ims.analytics_figures(period_start date, period_end date)
RETURNS TABLE (
    user_id bigint,
    sessions_count integer,
    completed_sessions integer,
    failed_sessions integer,
    issues_crawled integer,
    unique_issues integer,
    errors_count integer,
    avg_duration_seconds numeric(12, 2),
    total_duration_seconds bigint
)
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
WITH period_sessions AS (
    -- A range on the timestamp (not a cast of it to date) so the comparison
    -- does not depend on the session time zone.
    SELECT
        cs.session_id,
        cs.user_id,
        cs.status,
        cs.duration_seconds
    FROM ims.crawl_sessions AS cs
    WHERE COALESCE(cs.started_at, cs.created_at) >= (analytics_figures.period_start::timestamp AT TIME ZONE 'UTC')
      AND COALESCE(cs.started_at, cs.created_at) < (analytics_figures.period_end::timestamp AT TIME ZONE 'UTC')
),
session_figures AS (
    SELECT
        ps.user_id,
        count(*) AS sessions_count,
        count(*) FILTER (WHERE ps.status = 'completed') AS completed_sessions,
        count(*) FILTER (WHERE ps.status = 'failed') AS failed_sessions,
        round(avg(ps.duration_seconds), 2) AS avg_duration_seconds,
        COALESCE(sum(ps.duration_seconds), 0) AS total_duration_seconds
    FROM period_sessions AS ps
    GROUP BY ps.user_id
),
issue_figures AS (
    SELECT
        ps.user_id,
        count(*) AS issues_crawled,
        count(DISTINCT si.issue_pk) AS unique_issues
    FROM period_sessions AS ps
    JOIN ims.session_issues AS si
      ON si.session_id = ps.session_id
    GROUP BY ps.user_id
),
error_figures AS (
    SELECT
        ps.user_id,
        count(*) AS errors_count
    FROM period_sessions AS ps
    JOIN ims.session_errors AS se
      ON se.session_id = ps.session_id
    GROUP BY ps.user_id
)
SELECT
    sf.user_id,
    sf.sessions_count::integer,
    sf.completed_sessions::integer,
    sf.failed_sessions::integer,
    COALESCE(isf.issues_crawled, 0)::integer,
    COALESCE(isf.unique_issues, 0)::integer,
    COALESCE(ef.errors_count, 0)::integer,
    sf.avg_duration_seconds::numeric(12, 2),
    sf.total_duration_seconds::bigint
FROM session_figures AS sf
LEFT JOIN issue_figures AS isf
  ON isf.user_id = sf.user_id
LEFT JOIN error_figures AS ef
  ON ef.user_id = sf.user_id;
$$;

COMMENT ON FUNCTION ims.analytics_figures(date, date) IS
    'Per-user crawl figures of the sessions in [period_start, period_end) (UTC days, day of COALESCE(started_at, created_at)) that the caller can see.';


-- Recompute ims.analytics_daily for one UTC day and ims.analytics_monthly for
-- that day's month, for every user whose data the caller can see (one user,
-- or everyone for an admin; row-level security decides). Visible rows of a
-- user with nothing in the period are removed; the rest are upserted. Each
-- statement computes the figures once and uses them for both the delete and
-- the upsert (data-modifying CTE; the two touch disjoint rows).
CREATE FUNCTION ims.refresh_analytics(day date)
RETURNS void
LANGUAGE sql
VOLATILE
SECURITY INVOKER
AS $$
WITH figures AS (
    SELECT
        f.user_id,
        f.sessions_count,
        f.completed_sessions,
        f.failed_sessions,
        f.issues_crawled,
        f.unique_issues,
        f.errors_count,
        f.avg_duration_seconds,
        f.total_duration_seconds
    FROM ims.analytics_figures(refresh_analytics.day, refresh_analytics.day + 1) AS f
),
removed AS (
    DELETE FROM ims.analytics_daily AS d
    WHERE d.stat_date = refresh_analytics.day
      AND NOT EXISTS (
          SELECT
          FROM figures AS f
          WHERE f.user_id = d.user_id
      )
)
INSERT INTO ims.analytics_daily AS d (
    user_id,
    stat_date,
    sessions_count,
    completed_sessions,
    failed_sessions,
    issues_crawled,
    unique_issues,
    errors_count,
    avg_duration_seconds,
    total_duration_seconds,
    updated_at
)
SELECT
    f.user_id,
    refresh_analytics.day,
    f.sessions_count,
    f.completed_sessions,
    f.failed_sessions,
    f.issues_crawled,
    f.unique_issues,
    f.errors_count,
    f.avg_duration_seconds,
    f.total_duration_seconds,
    now()
FROM figures AS f
ON CONFLICT (user_id, stat_date) DO UPDATE
SET
    sessions_count = EXCLUDED.sessions_count,
    completed_sessions = EXCLUDED.completed_sessions,
    failed_sessions = EXCLUDED.failed_sessions,
    issues_crawled = EXCLUDED.issues_crawled,
    unique_issues = EXCLUDED.unique_issues,
    errors_count = EXCLUDED.errors_count,
    avg_duration_seconds = EXCLUDED.avg_duration_seconds,
    total_duration_seconds = EXCLUDED.total_duration_seconds,
    updated_at = EXCLUDED.updated_at;

WITH bounds AS (
    SELECT
        date_trunc('month', refresh_analytics.day::timestamp)::date AS month_start,
        (date_trunc('month', refresh_analytics.day::timestamp) + INTERVAL '1 month')::date AS month_end
),
figures AS (
    SELECT
        b.month_start,
        f.user_id,
        f.sessions_count,
        f.completed_sessions,
        f.failed_sessions,
        f.issues_crawled,
        f.unique_issues,
        f.errors_count,
        f.avg_duration_seconds,
        f.total_duration_seconds
    FROM bounds AS b
    CROSS JOIN LATERAL ims.analytics_figures(b.month_start, b.month_end) AS f
),
removed AS (
    DELETE FROM ims.analytics_monthly AS m
    USING bounds AS b
    WHERE m.month = b.month_start
      AND NOT EXISTS (
          SELECT
          FROM figures AS f
          WHERE f.user_id = m.user_id
      )
)
INSERT INTO ims.analytics_monthly AS m (
    user_id,
    month,
    sessions_count,
    completed_sessions,
    failed_sessions,
    issues_crawled,
    unique_issues,
    errors_count,
    avg_duration_seconds,
    total_duration_seconds,
    updated_at
)
SELECT
    f.user_id,
    f.month_start,
    f.sessions_count,
    f.completed_sessions,
    f.failed_sessions,
    f.issues_crawled,
    f.unique_issues,
    f.errors_count,
    f.avg_duration_seconds,
    f.total_duration_seconds,
    now()
FROM figures AS f
ON CONFLICT (user_id, month) DO UPDATE
SET
    sessions_count = EXCLUDED.sessions_count,
    completed_sessions = EXCLUDED.completed_sessions,
    failed_sessions = EXCLUDED.failed_sessions,
    issues_crawled = EXCLUDED.issues_crawled,
    unique_issues = EXCLUDED.unique_issues,
    errors_count = EXCLUDED.errors_count,
    avg_duration_seconds = EXCLUDED.avg_duration_seconds,
    total_duration_seconds = EXCLUDED.total_duration_seconds,
    updated_at = EXCLUDED.updated_at;
$$;

COMMENT ON FUNCTION ims.refresh_analytics(date) IS
    'Recomputes ims.analytics_daily for the UTC day and ims.analytics_monthly for its month, for the users the caller can see (row-level security: one user, or all for an admin).';


-- Functions are executable by PUBLIC by default; keep them to the runtime
-- role (and the owner, who keeps EXECUTE as owner).
REVOKE EXECUTE
    ON FUNCTION
        ims.get_user_stats(bigint),
        ims.search_issues(text, text, integer),
        ims.analytics_figures(date, date),
        ims.refresh_analytics(date)
    FROM PUBLIC;


GRANT EXECUTE
    ON FUNCTION
        ims.get_user_stats(bigint),
        ims.search_issues(text, text, integer),
        ims.analytics_figures(date, date),
        ims.refresh_analytics(date)
    TO ims_app;
