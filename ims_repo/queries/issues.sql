-- Statements on ims.issues: issues as crawled from the IMS, one row per IMS issue
-- (issue_id), shared by every user. Re-crawls upsert on issue_id: fields a crawl did
-- not set keep their stored value, first_crawled_at is kept, last_crawled_at and
-- crawl_count move on every upsert, in the narrow ims.issue_crawls (migration 0007):
-- issues are read through the view ims.issues_with_crawls, which adds that bookkeeping
-- to the issue row. Children (comments, history, attachments) are loaded with their
-- issue in one statement (detail, find_detailed).

-- name: get :one
-- The issue with this surrogate key, or nothing.
SELECT issue_pk, issue_id, title, description, product, module, version, status, priority,
       severity, reporter, assignee, issue_created_at, issue_updated_at, url, raw_data,
       first_crawled_at, last_crawled_at, crawl_count
FROM ims.issues_with_crawls
WHERE issue_pk = :issue_pk;

-- name: get_by_issue_id :one
-- The issue with this IMS id (e.g. SAMPLE-001), or nothing.
SELECT issue_pk, issue_id, title, description, product, module, version, status, priority,
       severity, reporter, assignee, issue_created_at, issue_updated_at, url, raw_data,
       first_crawled_at, last_crawled_at, crawl_count
FROM ims.issues_with_crawls
WHERE issue_id = :issue_id;

-- name: find :many
-- Issues matching the caller's whitelisted filters, in the requested order, one page.
SELECT issue_pk, issue_id, title, description, product, module, version, status, priority,
       severity, reporter, assignee, issue_created_at, issue_updated_at, url, raw_data,
       first_crawled_at, last_crawled_at, crawl_count
FROM ims.issues_with_crawls
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: count :scalar
-- How many issues match the caller's whitelisted filters (the filters of find). The
-- view's join to ims.issue_crawls is planned away unless a filter reads the bookkeeping.
SELECT count(*) AS issues
FROM ims.issues_with_crawls
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
-- their value. An edit, not a crawl: the crawl bookkeeping does not move (it is
-- returned as ims.issues_with_crawls shows it).
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
          i.issue_updated_at, i.url, i.raw_data, i.first_crawled_at,
          greatest(
              i.last_crawled_at,
              (
                  SELECT c.last_crawled_at
                  FROM ims.issue_crawls AS c
                  WHERE c.issue_pk = i.issue_pk
              )
          ) AS last_crawled_at,
          i.crawl_count + coalesce(
              (
                  SELECT c.extra_crawls
                  FROM ims.issue_crawls AS c
                  WHERE c.issue_pk = i.issue_pk
              ),
              0
          ) AS crawl_count;

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

-- name: with_status :many
-- The issue_id of every issue with status :status: the issues replace_status will write,
-- for a transaction that must name their lock buckets (see lock_issues).
SELECT issue_id
FROM ims.issues
WHERE status = :status;

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
-- fields named in :set_fields (NULL: every field; the others keep their stored value).
-- A stored issue whose content would not change is not rewritten at all. The crawl
-- bookkeeping moves in ims.issue_crawls: last_crawled_at to the statement's time
-- (statement_timestamp(), so a re-crawl later in the same transaction still moves it),
-- one more crawl; first_crawled_at is kept. A new row counts its crawl in
-- ims.issues.crawl_count, a stored one in ims.issue_crawls.extra_crawls: additions
-- only, so concurrent crawlers of one issue never lose a count. The digest of the
-- item is not known here: the bookkeeping row keeps none (see upsert_staged).
WITH proposed AS (
    SELECT :issue_id::text AS issue_id, :title::text AS title,
           :description::text AS description, :product::text AS product,
           :module::text AS module, :version::text AS version, :status::text AS status,
           :priority::text AS priority, :severity::text AS severity,
           :reporter::text AS reporter, :assignee::text AS assignee,
           :issue_created_at::timestamptz AS issue_created_at,
           :issue_updated_at::timestamptz AS issue_updated_at, :url::text AS url,
           :raw_data::jsonb AS raw_data, :set_fields::text[] AS set_fields
),
stored AS (
    SELECT i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
           i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
           i.issue_updated_at, i.url, i.raw_data
    FROM ims.issues AS i
    WHERE i.issue_id = :issue_id
),
written AS (
    INSERT INTO ims.issues AS i (issue_id, title, description, product, module, version,
                                 status, priority, severity, reporter, assignee,
                                 issue_created_at, issue_updated_at, url, raw_data,
                                 first_crawled_at, last_crawled_at, crawl_count)
    SELECT p.issue_id, p.title, p.description, p.product, p.module, p.version, p.status,
           p.priority, p.severity, p.reporter, p.assignee, p.issue_created_at,
           p.issue_updated_at, p.url, p.raw_data, statement_timestamp(),
           statement_timestamp(),
           -- A stored issue counts this crawl in ims.issue_crawls instead.
           CASE WHEN o.issue_pk IS NULL THEN 1 ELSE 0 END
    FROM proposed AS p
    LEFT JOIN stored AS o
      ON o.issue_id = p.issue_id
    WHERE o.issue_pk IS NULL
       OR p.set_fields IS NOT NULL
       OR (p.title, p.description, p.product, p.module, p.version, p.status, p.priority,
           p.severity, p.reporter, p.assignee, p.issue_created_at, p.issue_updated_at,
           p.url, p.raw_data)
          IS DISTINCT FROM
          (o.title, o.description, o.product, o.module, o.version, o.status, o.priority,
           o.severity, o.reporter, o.assignee, o.issue_created_at, o.issue_updated_at,
           o.url, o.raw_data)
    ON CONFLICT (issue_id) DO UPDATE
    SET (title, description, product, module, version, status, priority, severity,
         reporter, assignee, issue_created_at, issue_updated_at, url, raw_data) = (
            SELECT CASE WHEN p.set_fields IS NULL OR 'title' = ANY(p.set_fields)
                        THEN p.title ELSE i.title END,
                   CASE WHEN p.set_fields IS NULL OR 'description' = ANY(p.set_fields)
                        THEN p.description ELSE i.description END,
                   CASE WHEN p.set_fields IS NULL OR 'product' = ANY(p.set_fields)
                        THEN p.product ELSE i.product END,
                   CASE WHEN p.set_fields IS NULL OR 'module' = ANY(p.set_fields)
                        THEN p.module ELSE i.module END,
                   CASE WHEN p.set_fields IS NULL OR 'version' = ANY(p.set_fields)
                        THEN p.version ELSE i.version END,
                   CASE WHEN p.set_fields IS NULL OR 'status' = ANY(p.set_fields)
                        THEN p.status ELSE i.status END,
                   CASE WHEN p.set_fields IS NULL OR 'priority' = ANY(p.set_fields)
                        THEN p.priority ELSE i.priority END,
                   CASE WHEN p.set_fields IS NULL OR 'severity' = ANY(p.set_fields)
                        THEN p.severity ELSE i.severity END,
                   CASE WHEN p.set_fields IS NULL OR 'reporter' = ANY(p.set_fields)
                        THEN p.reporter ELSE i.reporter END,
                   CASE WHEN p.set_fields IS NULL OR 'assignee' = ANY(p.set_fields)
                        THEN p.assignee ELSE i.assignee END,
                   CASE WHEN p.set_fields IS NULL OR 'issue_created_at' = ANY(p.set_fields)
                        THEN p.issue_created_at ELSE i.issue_created_at END,
                   CASE WHEN p.set_fields IS NULL OR 'issue_updated_at' = ANY(p.set_fields)
                        THEN p.issue_updated_at ELSE i.issue_updated_at END,
                   CASE WHEN p.set_fields IS NULL OR 'url' = ANY(p.set_fields)
                        THEN p.url ELSE i.url END,
                   CASE WHEN p.set_fields IS NULL OR 'raw_data' = ANY(p.set_fields)
                        THEN p.raw_data ELSE i.raw_data END
            FROM proposed AS p
        ),
        -- Another crawler inserted the issue after this statement began: add this crawl.
        crawl_count = i.crawl_count + EXCLUDED.crawl_count
    RETURNING i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module,
              i.version, i.status, i.priority, i.severity, i.reporter, i.assignee,
              i.issue_created_at, i.issue_updated_at, i.url, i.raw_data,
              i.first_crawled_at, i.last_crawled_at, i.crawl_count
),
crawled AS (
    INSERT INTO ims.issue_crawls AS c (issue_pk, last_crawled_at, extra_crawls)
    SELECT coalesce(w.issue_pk, o.issue_pk), statement_timestamp(),
           CASE WHEN o.issue_pk IS NULL THEN 0 ELSE 1 END
    FROM proposed AS p
    LEFT JOIN stored AS o
      ON o.issue_id = p.issue_id
    LEFT JOIN written AS w
      ON w.issue_id = p.issue_id
    ON CONFLICT (issue_pk) DO UPDATE
    SET last_crawled_at = EXCLUDED.last_crawled_at,
        extra_crawls = c.extra_crawls + EXCLUDED.extra_crawls,
        content_hash = NULL
    RETURNING c.issue_pk, c.last_crawled_at, c.extra_crawls
)
SELECT cur.issue_pk, cur.issue_id, cur.title, cur.description, cur.product, cur.module,
       cur.version, cur.status, cur.priority, cur.severity, cur.reporter, cur.assignee,
       cur.issue_created_at, cur.issue_updated_at, cur.url, cur.raw_data,
       cur.first_crawled_at, greatest(cur.last_crawled_at, cr.last_crawled_at) AS last_crawled_at,
       cur.crawl_count + cr.extra_crawls AS crawl_count
FROM (
    SELECT w.issue_pk, w.issue_id, w.title, w.description, w.product, w.module, w.version,
           w.status, w.priority, w.severity, w.reporter, w.assignee, w.issue_created_at,
           w.issue_updated_at, w.url, w.raw_data, w.first_crawled_at, w.last_crawled_at,
           w.crawl_count
    FROM written AS w
    UNION ALL
    SELECT i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
           i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
           i.issue_updated_at, i.url, i.raw_data, i.first_crawled_at, i.last_crawled_at,
           i.crawl_count
    FROM ims.issues AS i
    JOIN stored AS o
      ON o.issue_pk = i.issue_pk
    -- Unchanged, so not written: the row as the statement found it.
    WHERE NOT EXISTS (
        SELECT
        FROM written
    )
) AS cur
JOIN crawled AS cr
  ON cr.issue_pk = cur.issue_pk;

-- name: lock_issues :one
-- The lock order every writer of issues, their crawl bookkeeping and their children
-- follows (ims_repo/db/_async/repositories/issues.py explains why it cannot deadlock): before
-- touching a row, a transaction takes the coarse advisory lock (1768780544, -1), then,
-- unless it took that lock exclusive, the advisory lock (1768780544, bucket) of every
-- bucket its issues fall in, in ascending bucket order. An issue's bucket is
-- md5(issue_id) mod 512 (its last 16 bits); :issue_pks name stored issues by key. The
-- coarse lock is exclusive for a writer of several batches in one transaction
-- (:exclusive), shared for the others. The transaction-local setting
-- ims_repo.issue_lock keeps what the transaction holds: holding the exclusive lock it
-- takes nothing more; holding the shared one it never waits again but tries the buckets
-- it lacks, and busy counts those another transaction holds (the caller then rolls its
-- savepoint back, which releases what this statement took, and retries).
WITH held AS MATERIALIZED (
    SELECT coalesce(nullif(current_setting('ims_repo.issue_lock', TRUE), ''), 'none') AS held_mode
),
wanted AS (
    SELECT -1 AS bucket
    UNION
    SELECT ('x' || right(md5(t.issue_id), 4))::bit(16)::integer % 512 AS bucket
    FROM (
        SELECT unnest(:issue_ids::text[]) AS issue_id
        UNION ALL
        SELECT i.issue_id
        FROM ims.issues AS i
        WHERE i.issue_pk = ANY(:issue_pks::bigint[])
    ) AS t
    -- No bucket is taken or tried by a transaction that holds, or takes, the
    -- exclusive lock: not computed for it.
    WHERE (
        SELECT h.held_mode = 'shared' OR (h.held_mode = 'none' AND NOT :exclusive::boolean)
        FROM held AS h
    )
),
ordered AS (
    SELECT w.bucket, h.held_mode
    FROM wanted AS w
    CROSS JOIN held AS h
    ORDER BY w.bucket
)
SELECT count(*) FILTER (WHERE NOT l.taken)::integer AS busy,
       set_config(
           'ims_repo.issue_lock',
           (
               SELECT CASE WHEN h.held_mode <> 'none' THEN h.held_mode
                           WHEN :exclusive::boolean THEN 'exclusive'
                           ELSE 'shared' END
               FROM held AS h
           ),
           TRUE
       ) AS issue_lock
FROM (
    SELECT CASE WHEN o.held_mode = 'exclusive' THEN TRUE
                WHEN o.held_mode = 'shared' AND o.bucket < 0 THEN TRUE
                WHEN o.held_mode = 'shared' THEN pg_try_advisory_xact_lock(1768780544, o.bucket)
                WHEN o.bucket < 0 AND :exclusive::boolean
                    THEN pg_advisory_xact_lock(1768780544, o.bucket) IS NOT NULL
                WHEN o.bucket < 0
                    THEN pg_advisory_xact_lock_shared(1768780544, o.bucket) IS NOT NULL
                -- The exclusive lock keeps every other writer out: no bucket is needed.
                WHEN :exclusive::boolean THEN TRUE
                ELSE pg_advisory_xact_lock(1768780544, o.bucket) IS NOT NULL END AS taken
    FROM ordered AS o
) AS l;

-- name: create_hash_stage :none
-- The staging table upsert_many COPYs the issue_ids of each batch into, with the digest
-- of the item as received (NULL when the issue's items cannot be recognised by digest)
-- and how many items of the batch it stands for; unless this transaction has it
-- already. Temporary and dropped at commit or rollback.
CREATE TEMP TABLE IF NOT EXISTS pg_temp.ims_issue_hash_stage (
    issue_id text NOT NULL PRIMARY KEY,
    content_hash bytea,
    occurrences integer NOT NULL
) ON COMMIT DROP;

-- name: copy_hash_stage :none
-- Streams one batch's issue_ids and digests into the digest staging table, in COPY's
-- binary format (WITH BINARY: the spelling older than (FORMAT BINARY), which sqlfluff
-- parses; PostgreSQL accepts both).
COPY pg_temp.ims_issue_hash_stage (issue_id, content_hash, occurrences)
FROM STDIN WITH BINARY;

-- name: add_missing_crawls :none
-- Gives every stored issue of the batch a bookkeeping row if it has none yet (carrying
-- nothing over: extra_crawls 0, last_crawled_at as ims.issues has it), in issue_pk
-- order, so that crawl_unchanged can lock the bookkeeping of every stored issue of the
-- batch. Waits for a concurrent crawler inserting the same rows, in the same order.
INSERT INTO ims.issue_crawls (issue_pk, last_crawled_at, extra_crawls)
SELECT i.issue_pk, i.last_crawled_at, 0
FROM pg_temp.ims_issue_hash_stage AS h
JOIN ims.issues AS i
  ON i.issue_id = h.issue_id
ORDER BY i.issue_pk
ON CONFLICT (issue_pk) DO NOTHING;

-- name: crawl_unchanged :many
-- The re-crawl fast path. Locks the bookkeeping rows of every stored issue of the batch
-- in issue_pk order (concurrent crawlers of the same issues queue here, in one order,
-- instead of deadlocking later), then, for each issue whose stored digest equals the
-- staged one, moves last_crawled_at and counts the crawls: the item is as last stored,
-- so neither it nor the issue row needs writing. Returns those issue_ids; the other
-- items are sent in full (upsert_staged).
WITH locked AS (
    SELECT c.issue_pk, c.content_hash AS stored_hash, h.issue_id,
           h.content_hash AS staged_hash, h.occurrences
    FROM pg_temp.ims_issue_hash_stage AS h
    JOIN ims.issues AS i
      ON i.issue_id = h.issue_id
    JOIN ims.issue_crawls AS c
      ON c.issue_pk = i.issue_pk
    ORDER BY c.issue_pk
    FOR UPDATE OF c
)
UPDATE ims.issue_crawls AS c
SET last_crawled_at = statement_timestamp(),
    extra_crawls = c.extra_crawls + l.occurrences
FROM locked AS l
WHERE c.issue_pk = l.issue_pk
  AND l.stored_hash = l.staged_hash
RETURNING l.issue_id;

-- name: clear_hash_stage :none
-- Empties the digest staging table after a batch, ready for the next one.
TRUNCATE pg_temp.ims_issue_hash_stage;

-- name: create_upsert_stage :none
-- The staging table upsert_many COPYs the items of a batch into (those the fast path
-- did not settle), unless this transaction has it already. Temporary (this connection
-- only) and dropped at commit or rollback, so a pooled connection never carries it to
-- another checkout. One row per issue_id: duplicates within a batch are merged before
-- the COPY; set_fields names the fields the crawl gave (NULL: all of them),
-- occurrences how many upserts of the issue the row stands for, content_hash the
-- digest of the item (NULL for a merge of different items).
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
    set_fields text[],
    occurrences integer NOT NULL,
    content_hash bytea
) ON COMMIT DROP;

-- name: copy_upsert_stage :none
-- Streams one batch into the staging table, in COPY's binary format (see
-- copy_hash_stage).
COPY pg_temp.ims_issue_upsert_stage (issue_id, title, description, product, module,
                                     version, status, priority, severity, reporter,
                                     assignee, issue_created_at, issue_updated_at, url,
                                     raw_data, set_fields, occurrences, content_hash)
FROM STDIN WITH BINARY;

-- name: fill_upsert_stage :none
-- Fills the staging table from :rows, a JSON array of staged rows (objects with the
-- columns of copy_upsert_stage; content_hash as bytea's hex text): how store_page
-- stages a page of issues inside the one pipeline that writes the page, where COPY
-- cannot run.
INSERT INTO pg_temp.ims_issue_upsert_stage (issue_id, title, description, product, module,
                                            version, status, priority, severity, reporter,
                                            assignee, issue_created_at, issue_updated_at,
                                            url, raw_data, set_fields, occurrences,
                                            content_hash)
SELECT r.issue_id, r.title, r.description, r.product, r.module, r.version, r.status,
       r.priority, r.severity, r.reporter, r.assignee, r.issue_created_at,
       r.issue_updated_at, r.url, r.raw_data, r.set_fields, r.occurrences, r.content_hash
FROM jsonb_populate_recordset(NULL::pg_temp.ims_issue_upsert_stage, :rows) AS r;

-- name: upsert_staged :one
-- Writes the staged batch in one statement, judged against the rows as they were when
-- it started: new issue_ids are inserted (counting their crawls in ims.issues); stored
-- issues whose content would change get the fields in their set_fields (NULL: all;
-- the others keep the stored value); stored issues that would not change are not
-- rewritten. Every staged issue then gets its bookkeeping in ims.issue_crawls:
-- last_crawled_at moves, a stored issue adds its occurrences to extra_crawls, and the
-- digest is kept for the next re-crawl's fast path. Returns how many rows were
-- inserted, updated (some content field changed) and unchanged. Rows are written in
-- issue_id order (bookkeeping in issue_pk order), so concurrent bulk upserts lock
-- shared issues in the same order. An insert that meets an issue another crawler
-- inserted meanwhile updates it instead, still counting its crawls.
WITH stored AS (
    SELECT i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module, i.version,
           i.status, i.priority, i.severity, i.reporter, i.assignee, i.issue_created_at,
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
           statement_timestamp(),
           -- A stored issue counts its crawls in ims.issue_crawls instead.
           CASE WHEN o.issue_pk IS NULL THEN s.occurrences ELSE 0 END
    FROM pg_temp.ims_issue_upsert_stage AS s
    LEFT JOIN stored AS o
      ON o.issue_id = s.issue_id
    WHERE o.issue_pk IS NULL
       OR s.set_fields IS NOT NULL
       OR (s.title, s.description, s.product, s.module, s.version, s.status, s.priority,
           s.severity, s.reporter, s.assignee, s.issue_created_at, s.issue_updated_at,
           s.url, s.raw_data)
          IS DISTINCT FROM
          (o.title, o.description, o.product, o.module, o.version, o.status, o.priority,
           o.severity, o.reporter, o.assignee, o.issue_created_at, o.issue_updated_at,
           o.url, o.raw_data)
    ORDER BY s.issue_id
    -- The proposed row (EXCLUDED) has no set_fields column, so the update reads them
    -- from the staged row by its primary key.
    ON CONFLICT (issue_id) DO UPDATE
    SET (title, description, product, module, version, status, priority, severity,
         reporter, assignee, issue_created_at, issue_updated_at, url, raw_data) = (
            SELECT CASE WHEN s.set_fields IS NULL OR 'title' = ANY(s.set_fields)
                        THEN s.title ELSE i.title END,
                   CASE WHEN s.set_fields IS NULL OR 'description' = ANY(s.set_fields)
                        THEN s.description ELSE i.description END,
                   CASE WHEN s.set_fields IS NULL OR 'product' = ANY(s.set_fields)
                        THEN s.product ELSE i.product END,
                   CASE WHEN s.set_fields IS NULL OR 'module' = ANY(s.set_fields)
                        THEN s.module ELSE i.module END,
                   CASE WHEN s.set_fields IS NULL OR 'version' = ANY(s.set_fields)
                        THEN s.version ELSE i.version END,
                   CASE WHEN s.set_fields IS NULL OR 'status' = ANY(s.set_fields)
                        THEN s.status ELSE i.status END,
                   CASE WHEN s.set_fields IS NULL OR 'priority' = ANY(s.set_fields)
                        THEN s.priority ELSE i.priority END,
                   CASE WHEN s.set_fields IS NULL OR 'severity' = ANY(s.set_fields)
                        THEN s.severity ELSE i.severity END,
                   CASE WHEN s.set_fields IS NULL OR 'reporter' = ANY(s.set_fields)
                        THEN s.reporter ELSE i.reporter END,
                   CASE WHEN s.set_fields IS NULL OR 'assignee' = ANY(s.set_fields)
                        THEN s.assignee ELSE i.assignee END,
                   CASE WHEN s.set_fields IS NULL OR 'issue_created_at' = ANY(s.set_fields)
                        THEN s.issue_created_at ELSE i.issue_created_at END,
                   CASE WHEN s.set_fields IS NULL OR 'issue_updated_at' = ANY(s.set_fields)
                        THEN s.issue_updated_at ELSE i.issue_updated_at END,
                   CASE WHEN s.set_fields IS NULL OR 'url' = ANY(s.set_fields)
                        THEN s.url ELSE i.url END,
                   CASE WHEN s.set_fields IS NULL OR 'raw_data' = ANY(s.set_fields)
                        THEN s.raw_data ELSE i.raw_data END
            FROM pg_temp.ims_issue_upsert_stage AS s
            WHERE s.issue_id = EXCLUDED.issue_id
        ),
        crawl_count = i.crawl_count + EXCLUDED.crawl_count
    RETURNING i.issue_pk, i.issue_id, i.title, i.description, i.product, i.module,
              i.version, i.status, i.priority, i.severity, i.reporter, i.assignee,
              i.issue_created_at, i.issue_updated_at, i.url, i.raw_data
),
crawled AS (
    INSERT INTO ims.issue_crawls AS c (issue_pk, last_crawled_at, extra_crawls, content_hash)
    SELECT coalesce(w.issue_pk, o.issue_pk), statement_timestamp(),
           CASE WHEN o.issue_pk IS NULL THEN 0 ELSE s.occurrences END, s.content_hash
    FROM pg_temp.ims_issue_upsert_stage AS s
    LEFT JOIN stored AS o
      ON o.issue_id = s.issue_id
    LEFT JOIN written AS w
      ON w.issue_id = s.issue_id
    ORDER BY coalesce(w.issue_pk, o.issue_pk)
    ON CONFLICT (issue_pk) DO UPDATE
    SET last_crawled_at = EXCLUDED.last_crawled_at,
        extra_crawls = c.extra_crawls + EXCLUDED.extra_crawls,
        content_hash = EXCLUDED.content_hash
)
SELECT count(*) FILTER (WHERE o.issue_pk IS NULL)::integer AS inserted,
       count(*) FILTER (
           WHERE o.issue_pk IS NOT NULL
             AND (w.title, w.description, w.product, w.module, w.version, w.status,
                  w.priority, w.severity, w.reporter, w.assignee, w.issue_created_at,
                  w.issue_updated_at, w.url, w.raw_data)
                 IS DISTINCT FROM
                 (o.title, o.description, o.product, o.module, o.version, o.status,
                  o.priority, o.severity, o.reporter, o.assignee, o.issue_created_at,
                  o.issue_updated_at, o.url, o.raw_data)
             AND w.issue_id IS NOT NULL
       )::integer AS updated,
       count(*) FILTER (
           WHERE o.issue_pk IS NOT NULL
             AND (
                 w.issue_id IS NULL
                 OR (w.title, w.description, w.product, w.module, w.version, w.status,
                     w.priority, w.severity, w.reporter, w.assignee, w.issue_created_at,
                     w.issue_updated_at, w.url, w.raw_data)
                    IS NOT DISTINCT FROM
                    (o.title, o.description, o.product, o.module, o.version, o.status,
                     o.priority, o.severity, o.reporter, o.assignee, o.issue_created_at,
                     o.issue_updated_at, o.url, o.raw_data)
             )
       )::integer AS unchanged
FROM pg_temp.ims_issue_upsert_stage AS s
LEFT JOIN stored AS o
  ON o.issue_id = s.issue_id
LEFT JOIN written AS w
  ON w.issue_id = s.issue_id;

-- name: clear_upsert_stage :none
-- Empties the staging table after a batch is written, ready for the next one.
TRUNCATE pg_temp.ims_issue_upsert_stage;

-- name: detail :scalar
-- The issue with this IMS id with its comments (by comment_order, unnumbered last, then
-- time, then id), history (by time, then id) and attachments (by id) as JSON arrays
-- ([] when none); each list is one index range on the child's issue_pk. The result is
-- one JSON document, as find_detailed's: an array holding the issue, or [] if none.
SELECT coalesce(json_agg(d), '[]'::json) AS issues
FROM (
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
    FROM ims.issues_with_crawls AS i
    WHERE i.issue_id = :issue_id
) AS d;

-- name: find_detailed :scalar
-- Issues matching the caller's whitelisted filters (as find), ordered, one page, each
-- with its comments, history and attachments as JSON arrays ordered as in detail: one
-- statement, no query per issue. The page is one JSON document, an array in the page's
-- order ([] when empty), which ims_repo validates in one call (Session.fetch_json).
SELECT coalesce(json_agg(d ORDER BY {order_by}), '[]'::json) AS issues
FROM (
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
    FROM ims.issues_with_crawls AS i
    WHERE {filters}
    ORDER BY {order_by}
    LIMIT :limit
    OFFSET :offset
) AS d;

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
