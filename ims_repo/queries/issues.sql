-- Statements on ims.issues: issues as crawled from the IMS, one row per IMS issue
-- (issue_id), shared by every user. Re-crawls upsert on issue_id: fields a crawl did
-- not set keep their stored value, first_crawled_at is kept, last_crawled_at and
-- crawl_count move on every upsert. Children (comments, history, attachments) are
-- loaded with their issue in one statement (detail, find_detailed).

-- name: get :one
-- The issue with this surrogate key, or nothing.
SELECT issue_pk, issue_id, title, description, product, module, version, status, priority,
       severity, reporter, assignee, issue_created_at, issue_updated_at, url, raw_data,
       first_crawled_at, last_crawled_at, crawl_count
FROM ims.issues
WHERE issue_pk = :issue_pk;

-- name: get_by_issue_id :one
-- The issue with this IMS id (e.g. SAMPLE-001), or nothing.
SELECT issue_pk, issue_id, title, description, product, module, version, status, priority,
       severity, reporter, assignee, issue_created_at, issue_updated_at, url, raw_data,
       first_crawled_at, last_crawled_at, crawl_count
FROM ims.issues
WHERE issue_id = :issue_id;

-- name: find :many
-- Issues matching the caller's whitelisted filters, in the requested order, one page.
SELECT issue_pk, issue_id, title, description, product, module, version, status, priority,
       severity, reporter, assignee, issue_created_at, issue_updated_at, url, raw_data,
       first_crawled_at, last_crawled_at, crawl_count
FROM ims.issues
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: count :scalar
-- How many issues match the caller's whitelisted filters (the filters of find).
SELECT count(*) AS issues
FROM ims.issues
WHERE {filters};

-- name: count_by_product :many
-- How many issues each product has, by product name.
SELECT product, count(*) AS issues
FROM ims.issues
GROUP BY product
ORDER BY product;

-- name: create :one
-- Adds an issue; a second issue with the same issue_id is refused (unique violation).
INSERT INTO ims.issues (issue_id, title, description, product, module, version, status,
                        priority, severity, reporter, assignee, issue_created_at,
                        issue_updated_at, url, raw_data)
VALUES (:issue_id, :title, :description, :product, :module, :version, :status, :priority,
        :severity, :reporter, :assignee, :issue_created_at, :issue_updated_at, :url,
        :raw_data)
RETURNING issue_pk, issue_id, title, description, product, module, version, status,
          priority, severity, reporter, assignee, issue_created_at, issue_updated_at, url,
          raw_data, first_crawled_at, last_crawled_at, crawl_count;

-- name: update :one
-- Changes the fields present in :changes (a JSON object); fields it leaves out keep
-- their value. An edit, not a crawl: the crawl bookkeeping does not move.
UPDATE ims.issues AS i
SET (title, description, product, module, version, status, priority, severity, reporter,
     assignee, issue_created_at, issue_updated_at, url, raw_data) = (
        SELECT c.title, c.description, c.product, c.module, c.version, c.status,
               c.priority, c.severity, c.reporter, c.assignee, c.issue_created_at,
               c.issue_updated_at, c.url, c.raw_data
        FROM jsonb_populate_record(i, :changes) AS c
    )
WHERE i.issue_pk = :issue_pk
RETURNING i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
          i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
          i.issue_updated_at, i.url, i.raw_data, i.first_crawled_at, i.last_crawled_at,
          i.crawl_count;

-- name: delete :rowcount
-- Removes an issue with its comments, history and attachments; refused while any crawl
-- session links it (the foreign key checks every link, also those the caller cannot
-- see, so nothing is deleted through another user's rows).
DELETE FROM ims.issues
WHERE issue_pk = :issue_pk;

-- name: set_status :rowcount
-- Sets the status of the listed issues; counts only rows whose status changes (a row
-- that already has it is not rewritten).
UPDATE ims.issues
SET status = :status
WHERE issue_pk = ANY(:issue_pks::bigint[])
  AND status IS DISTINCT FROM :status;

-- name: replace_status :rowcount
-- The guide's bulk update: every issue with status :old gets status :new; counts the
-- rows changed (none when :old equals :new).
UPDATE ims.issues
SET status = :new
WHERE status = :old
  AND status IS DISTINCT FROM :new;

-- name: update_many :rowcount
-- The guide's bulk_update_mappings: :rows is a JSON array of {"issue_pk": …, "changes":
-- {…}}, one element per issue; each issue gets the fields of its changes object, the
-- others keep their value. Counts only rows whose content changes.
UPDATE ims.issues AS i
SET (title, description, product, module, version, status, priority, severity, reporter,
     assignee, issue_created_at, issue_updated_at, url, raw_data) = (
        SELECT c.title, c.description, c.product, c.module, c.version, c.status,
               c.priority, c.severity, c.reporter, c.assignee, c.issue_created_at,
               c.issue_updated_at, c.url, c.raw_data
        FROM jsonb_populate_record(i, r.changes) AS c
    )
FROM (
    SELECT (e.item ->> 'issue_pk')::bigint AS issue_pk,
           e.item -> 'changes' AS changes
    FROM jsonb_array_elements(:rows) AS e (item)
) AS r
WHERE i.issue_pk = r.issue_pk
  AND jsonb_populate_record(i, r.changes) IS DISTINCT FROM i;

-- name: upsert :one
-- Stores one crawled issue: inserts it, or, when its issue_id exists, updates the
-- fields named in :set_fields (the others keep their stored value), keeps
-- first_crawled_at, moves last_crawled_at and adds 1 to crawl_count.
-- statement_timestamp(), not now(): a re-crawl later in the same transaction still
-- moves last_crawled_at.
INSERT INTO ims.issues AS i (issue_id, title, description, product, module, version,
                             status, priority, severity, reporter, assignee,
                             issue_created_at, issue_updated_at, url, raw_data,
                             first_crawled_at, last_crawled_at)
VALUES (:issue_id, :title, :description, :product, :module, :version, :status, :priority,
        :severity, :reporter, :assignee, :issue_created_at, :issue_updated_at, :url,
        :raw_data, statement_timestamp(), statement_timestamp())
ON CONFLICT (issue_id) DO UPDATE
SET title = CASE WHEN 'title' = ANY(:set_fields::text[])
                 THEN EXCLUDED.title ELSE i.title END,
    description = CASE WHEN 'description' = ANY(:set_fields::text[])
                       THEN EXCLUDED.description ELSE i.description END,
    product = CASE WHEN 'product' = ANY(:set_fields::text[])
                   THEN EXCLUDED.product ELSE i.product END,
    module = CASE WHEN 'module' = ANY(:set_fields::text[])
                  THEN EXCLUDED.module ELSE i.module END,
    version = CASE WHEN 'version' = ANY(:set_fields::text[])
                   THEN EXCLUDED.version ELSE i.version END,
    status = CASE WHEN 'status' = ANY(:set_fields::text[])
                  THEN EXCLUDED.status ELSE i.status END,
    priority = CASE WHEN 'priority' = ANY(:set_fields::text[])
                    THEN EXCLUDED.priority ELSE i.priority END,
    severity = CASE WHEN 'severity' = ANY(:set_fields::text[])
                    THEN EXCLUDED.severity ELSE i.severity END,
    reporter = CASE WHEN 'reporter' = ANY(:set_fields::text[])
                    THEN EXCLUDED.reporter ELSE i.reporter END,
    assignee = CASE WHEN 'assignee' = ANY(:set_fields::text[])
                    THEN EXCLUDED.assignee ELSE i.assignee END,
    issue_created_at = CASE WHEN 'issue_created_at' = ANY(:set_fields::text[])
                            THEN EXCLUDED.issue_created_at ELSE i.issue_created_at END,
    issue_updated_at = CASE WHEN 'issue_updated_at' = ANY(:set_fields::text[])
                            THEN EXCLUDED.issue_updated_at ELSE i.issue_updated_at END,
    url = CASE WHEN 'url' = ANY(:set_fields::text[])
               THEN EXCLUDED.url ELSE i.url END,
    raw_data = CASE WHEN 'raw_data' = ANY(:set_fields::text[])
                    THEN EXCLUDED.raw_data ELSE i.raw_data END,
    last_crawled_at = statement_timestamp(),
    crawl_count = i.crawl_count + 1
RETURNING i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
          i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
          i.issue_updated_at, i.url, i.raw_data, i.first_crawled_at, i.last_crawled_at,
          i.crawl_count;

-- name: create_upsert_stage :none
-- The staging table upsert_many COPYs each batch into, unless this transaction has it
-- already. Temporary (this connection only) and dropped at commit or rollback, so a pooled
-- connection never carries it to another checkout. One row per issue_id: duplicates
-- within a batch are merged before the COPY; set_fields names the fields the crawl
-- gave, occurrences how many upserts of the issue the row stands for.
CREATE TEMP TABLE IF NOT EXISTS pg_temp.ims_issue_upsert_stage (
    issue_id text NOT NULL PRIMARY KEY,
    title text NOT NULL,
    description text,
    product text NOT NULL,
    module text,
    version text,
    status text,
    priority text,
    severity text,
    reporter text,
    assignee text,
    issue_created_at timestamptz,
    issue_updated_at timestamptz,
    url text,
    raw_data jsonb NOT NULL,
    set_fields text[] NOT NULL,
    occurrences integer NOT NULL
) ON COMMIT DROP;

-- name: copy_upsert_stage :none
-- Streams one batch into the staging table (COPY … FROM STDIN, text format).
COPY pg_temp.ims_issue_upsert_stage (issue_id, title, description, product, module,
                                     version, status, priority, severity, reporter,
                                     assignee, issue_created_at, issue_updated_at, url,
                                     raw_data, set_fields, occurrences)
FROM STDIN;

-- name: upsert_staged :one
-- Writes the staged batch in one statement: new issue_ids are inserted; existing ones
-- get the fields in their set_fields
-- (the others keep the stored value), keep first_crawled_at, move last_crawled_at and
-- add their occurrences to crawl_count. Returns how many rows were inserted, updated
-- (some content field changed) and unchanged (only the bookkeeping moved), judged
-- against the rows as they were when the statement started. Rows are written in
-- issue_id order, so concurrent bulk upserts lock shared issues in the same order and
-- cannot deadlock each other within a batch (new issue_pk values follow that order).
-- As with every INSERT … ON CONFLICT, a row that conflicts still draws an issue_pk
-- from the identity, so re-crawls leave gaps in issue_pk (bigint: harmless).
WITH stored AS (
    SELECT i.issue_id, i.title, i.description, i.product, i.module, i.version, i.status,
           i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
           i.issue_updated_at, i.url, i.raw_data
    FROM ims.issues AS i
    JOIN pg_temp.ims_issue_upsert_stage AS s
      ON s.issue_id = i.issue_id
),
written AS (
    INSERT INTO ims.issues AS i (issue_id, title, description, product, module, version,
                                 status, priority, severity, reporter, assignee,
                                 issue_created_at, issue_updated_at, url, raw_data,
                                 first_crawled_at, last_crawled_at, crawl_count)
    SELECT s.issue_id, s.title, s.description, s.product, s.module, s.version, s.status,
           s.priority, s.severity, s.reporter, s.assignee, s.issue_created_at,
           s.issue_updated_at, s.url, s.raw_data, statement_timestamp(),
           statement_timestamp(), s.occurrences
    FROM pg_temp.ims_issue_upsert_stage AS s
    ORDER BY s.issue_id
    -- The proposed row (EXCLUDED) has no set_fields column, so the update reads them
    -- from the staged row by its primary key.
    ON CONFLICT (issue_id) DO UPDATE
    SET (title, description, product, module, version, status, priority, severity,
         reporter, assignee, issue_created_at, issue_updated_at, url, raw_data) = (
            SELECT CASE WHEN 'title' = ANY(s.set_fields) THEN s.title ELSE i.title END,
                   CASE WHEN 'description' = ANY(s.set_fields)
                        THEN s.description ELSE i.description END,
                   CASE WHEN 'product' = ANY(s.set_fields)
                        THEN s.product ELSE i.product END,
                   CASE WHEN 'module' = ANY(s.set_fields) THEN s.module ELSE i.module END,
                   CASE WHEN 'version' = ANY(s.set_fields)
                        THEN s.version ELSE i.version END,
                   CASE WHEN 'status' = ANY(s.set_fields) THEN s.status ELSE i.status END,
                   CASE WHEN 'priority' = ANY(s.set_fields)
                        THEN s.priority ELSE i.priority END,
                   CASE WHEN 'severity' = ANY(s.set_fields)
                        THEN s.severity ELSE i.severity END,
                   CASE WHEN 'reporter' = ANY(s.set_fields)
                        THEN s.reporter ELSE i.reporter END,
                   CASE WHEN 'assignee' = ANY(s.set_fields)
                        THEN s.assignee ELSE i.assignee END,
                   CASE WHEN 'issue_created_at' = ANY(s.set_fields)
                        THEN s.issue_created_at ELSE i.issue_created_at END,
                   CASE WHEN 'issue_updated_at' = ANY(s.set_fields)
                        THEN s.issue_updated_at ELSE i.issue_updated_at END,
                   CASE WHEN 'url' = ANY(s.set_fields) THEN s.url ELSE i.url END,
                   CASE WHEN 'raw_data' = ANY(s.set_fields)
                        THEN s.raw_data ELSE i.raw_data END
            FROM pg_temp.ims_issue_upsert_stage AS s
            WHERE s.issue_id = EXCLUDED.issue_id
        ),
        last_crawled_at = statement_timestamp(),
        crawl_count = i.crawl_count + EXCLUDED.crawl_count
    RETURNING i.issue_id, i.title, i.description, i.product, i.module, i.version,
              i.status, i.priority, i.severity, i.reporter, i.assignee,
              i.issue_created_at, i.issue_updated_at, i.url, i.raw_data
)
SELECT count(*) FILTER (WHERE st.issue_id IS NULL)::integer AS inserted,
       count(*) FILTER (
           WHERE st.issue_id IS NOT NULL
             AND (w.title, w.description, w.product, w.module, w.version, w.status,
                  w.priority, w.severity, w.reporter, w.assignee, w.issue_created_at,
                  w.issue_updated_at, w.url, w.raw_data)
                 IS DISTINCT FROM
                 (st.title, st.description, st.product, st.module, st.version, st.status,
                  st.priority, st.severity, st.reporter, st.assignee, st.issue_created_at,
                  st.issue_updated_at, st.url, st.raw_data)
       )::integer AS updated,
       count(*) FILTER (
           WHERE st.issue_id IS NOT NULL
             AND (w.title, w.description, w.product, w.module, w.version, w.status,
                  w.priority, w.severity, w.reporter, w.assignee, w.issue_created_at,
                  w.issue_updated_at, w.url, w.raw_data)
                 IS NOT DISTINCT FROM
                 (st.title, st.description, st.product, st.module, st.version, st.status,
                  st.priority, st.severity, st.reporter, st.assignee, st.issue_created_at,
                  st.issue_updated_at, st.url, st.raw_data)
       )::integer AS unchanged
FROM written AS w
LEFT JOIN stored AS st
  ON st.issue_id = w.issue_id;

-- name: clear_upsert_stage :none
-- Empties the staging table after a batch is written, ready for the next one.
TRUNCATE pg_temp.ims_issue_upsert_stage;

-- name: detail :one
-- The issue with this IMS id with its comments (by comment_order, unnumbered last, then
-- time, then id), history (by time, then id) and attachments (by id) as JSON arrays
-- ([] when none); each list is one index range on the child's issue_pk.
SELECT i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
       i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
       i.issue_updated_at, i.url, i.raw_data, i.first_crawled_at, i.last_crawled_at,
       i.crawl_count,
       (
           SELECT coalesce(json_agg(c ORDER BY c.comment_order NULLS LAST, c.commented_at,
                                    c.comment_id), '[]'::json)
           FROM (
               SELECT comment_id, issue_pk, author, content, commented_at, comment_order
               FROM ims.issue_comments
               WHERE issue_pk = i.issue_pk
           ) AS c
       ) AS comments,
       (
           SELECT coalesce(json_agg(h ORDER BY h.changed_at, h.history_id), '[]'::json)
           FROM (
               SELECT history_id, issue_pk, changed_at, changed_by, field_name, old_value,
                      new_value
               FROM ims.issue_history
               WHERE issue_pk = i.issue_pk
           ) AS h
       ) AS history,
       (
           SELECT coalesce(json_agg(a ORDER BY a.attachment_id), '[]'::json)
           FROM (
               SELECT attachment_id, issue_pk, session_id, filename, file_type, file_size,
                      storage_path, checksum_sha256, downloaded_at
               FROM ims.attachments
               WHERE issue_pk = i.issue_pk
           ) AS a
       ) AS attachments
FROM ims.issues AS i
WHERE i.issue_id = :issue_id;

-- name: find_detailed :many
-- Issues matching the caller's whitelisted filters (as find), ordered, one page, each
-- with its comments, history and attachments as JSON arrays ordered as in detail: one
-- statement, no query per issue.
SELECT i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
       i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
       i.issue_updated_at, i.url, i.raw_data, i.first_crawled_at, i.last_crawled_at,
       i.crawl_count,
       (
           SELECT coalesce(json_agg(c ORDER BY c.comment_order NULLS LAST, c.commented_at,
                                    c.comment_id), '[]'::json)
           FROM (
               SELECT comment_id, issue_pk, author, content, commented_at, comment_order
               FROM ims.issue_comments
               WHERE issue_pk = i.issue_pk
           ) AS c
       ) AS comments,
       (
           SELECT coalesce(json_agg(h ORDER BY h.changed_at, h.history_id), '[]'::json)
           FROM (
               SELECT history_id, issue_pk, changed_at, changed_by, field_name, old_value,
                      new_value
               FROM ims.issue_history
               WHERE issue_pk = i.issue_pk
           ) AS h
       ) AS history,
       (
           SELECT coalesce(json_agg(a ORDER BY a.attachment_id), '[]'::json)
           FROM (
               SELECT attachment_id, issue_pk, session_id, filename, file_type, file_size,
                      storage_path, checksum_sha256, downloaded_at
               FROM ims.attachments
               WHERE issue_pk = i.issue_pk
           ) AS a
       ) AS attachments
FROM ims.issues AS i
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: sessions :many
-- The crawl sessions that crawled this issue and the context may see (row-level
-- security on both tables), with the link's crawl order, duration and time, by session.
SELECT cs.session_id, cs.session_uuid, cs.user_id, cs.product, cs.original_query,
       cs.parsed_query, cs.query_language, cs.max_results, cs.status, cs.started_at,
       cs.completed_at, cs.duration_seconds, cs.total_issues, cs.data_path,
       cs.session_metadata, cs.created_at,
       si.crawl_order, si.crawl_duration_ms, si.crawled_at
FROM ims.session_issues AS si
JOIN ims.crawl_sessions AS cs
  ON cs.session_id = si.session_id
WHERE si.issue_pk = :issue_pk
ORDER BY si.session_id;
