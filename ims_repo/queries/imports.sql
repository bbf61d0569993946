-- Statements of the bulk import (ims_repo/services/importer.py, `ims-repo import FILE`): one
-- statement per batch of crawled lines for each step, after the issues themselves went
-- through issues.upsert_many. Each :comments/:changes/:attachments/:links parameter is
-- a JSON array covering the whole batch, so a batch of 1,000 issues costs a handful of
-- round trips, not one per issue.
--
-- Children are replaced, not appended: a re-crawl resends an issue's whole list, so the
-- list in the file is the issue's list. An issue whose stored list already equals the
-- file's (position by position, in the order the rows were added) is left untouched,
-- so re-importing a file rewrites nothing; a column the file leaves NULL that the
-- database fills (history changed_at, attachment downloaded_at and session_id) matches
-- whatever is stored.
--
-- The replace_* statements and link_issues run after the batch's upsert, in the same
-- transaction, and name issues by their IMS id (issue_id): they find the issue_pk
-- themselves, so the whole sequence can be sent in one pipeline, without a round trip
-- to learn the keys of issues the upsert just inserted (s.issues.store_page). The
-- upsert locks each issue row, so two imports of one issue replace its lists one after
-- the other, never interleaved. Their DELETE takes its keys as ANY(ARRAY(…)), an index
-- scan per rewritten issue, whatever the planner guesses for the CTE (a join with it
-- was planned as a scan of the whole child table; `-- noqa: CP03`: ARRAY(…) is the
-- array constructor, which sqlfluff takes for a function).

-- name: replace_comments :one
-- Makes the comments of each issue in :issue_ids the list :comments gives it (a JSON
-- array of objects with issue_id and the fields of NewIssueComment, in file order; an
-- issue of :issue_ids with no object gets no comments). Issues whose stored comments
-- (by comment_id) already equal their list are left alone; the others lose their
-- comments and get the list, inserted in order. Returns how many issues were rewritten
-- and how many comments were removed and added.
WITH incoming AS (
    SELECT i.issue_pk, n.author, n.content, n.commented_at, n.comment_order, e.ordinality,
           row_number() OVER (PARTITION BY i.issue_pk ORDER BY e.ordinality) AS list_index
    FROM jsonb_array_elements(:comments) WITH ORDINALITY AS e (item, ordinality)
    CROSS JOIN LATERAL jsonb_populate_record(NULL::ims.issue_comments, e.item) AS n
    JOIN ims.issues AS i
      ON i.issue_id = e.item ->> 'issue_id'
),
stored AS (
    SELECT c.issue_pk, c.author, c.content, c.commented_at, c.comment_order,
           row_number() OVER (PARTITION BY c.issue_pk ORDER BY c.comment_id) AS list_index
    FROM ims.issue_comments AS c
    WHERE c.issue_pk = ANY(ARRAY(  -- noqa: CP03
        SELECT i.issue_pk
        FROM ims.issues AS i
        WHERE i.issue_id = ANY(:issue_ids::text[])
    ))
),
changed AS (
    SELECT DISTINCT coalesce(s.issue_pk, i.issue_pk) AS issue_pk
    FROM stored AS s
    FULL JOIN incoming AS i
      ON i.issue_pk = s.issue_pk
     AND i.list_index = s.list_index
    WHERE s.issue_pk IS NULL
       OR i.issue_pk IS NULL
       OR (s.author, s.content, s.commented_at, s.comment_order)
          IS DISTINCT FROM (i.author, i.content, i.commented_at, i.comment_order)
),
removed AS (
    DELETE FROM ims.issue_comments AS c
    WHERE c.issue_pk = ANY(ARRAY(  -- noqa: CP03
        SELECT ch.issue_pk
        FROM changed AS ch
    ))
    RETURNING c.comment_id
),
added AS (
    INSERT INTO ims.issue_comments (issue_pk, author, content, commented_at, comment_order)
    SELECT i.issue_pk, i.author, i.content, i.commented_at, i.comment_order
    FROM incoming AS i
    JOIN changed AS ch
      ON ch.issue_pk = i.issue_pk
    ORDER BY i.ordinality
    RETURNING comment_id
)
SELECT (
           SELECT count(*)
           FROM changed
       )::integer AS issues,
       (
           SELECT count(*)
           FROM removed
       )::integer AS removed,
       (
           SELECT count(*)
           FROM added
       )::integer AS added;

-- name: replace_history :one
-- Makes the field-change history of each issue in :issue_ids the list :changes gives
-- it (a JSON array of objects with issue_id and the fields of NewIssueHistory, in file
-- order), as replace_comments does; a change without changed_at matches any stored
-- time, and is stored at now(). Returns issues rewritten, entries removed and added.
WITH incoming AS (
    SELECT i.issue_pk, n.changed_at, n.changed_by, n.field_name, n.old_value, n.new_value,
           e.ordinality,
           row_number() OVER (PARTITION BY i.issue_pk ORDER BY e.ordinality) AS list_index
    FROM jsonb_array_elements(:changes) WITH ORDINALITY AS e (item, ordinality)
    CROSS JOIN LATERAL jsonb_populate_record(NULL::ims.issue_history, e.item) AS n
    JOIN ims.issues AS i
      ON i.issue_id = e.item ->> 'issue_id'
),
stored AS (
    SELECT h.issue_pk, h.changed_at, h.changed_by, h.field_name, h.old_value, h.new_value,
           row_number() OVER (PARTITION BY h.issue_pk ORDER BY h.history_id) AS list_index
    FROM ims.issue_history AS h
    WHERE h.issue_pk = ANY(ARRAY(  -- noqa: CP03
        SELECT i.issue_pk
        FROM ims.issues AS i
        WHERE i.issue_id = ANY(:issue_ids::text[])
    ))
),
changed AS (
    SELECT DISTINCT coalesce(s.issue_pk, i.issue_pk) AS issue_pk
    FROM stored AS s
    FULL JOIN incoming AS i
      ON i.issue_pk = s.issue_pk
     AND i.list_index = s.list_index
    WHERE s.issue_pk IS NULL
       OR i.issue_pk IS NULL
       OR (s.changed_by, s.field_name, s.old_value, s.new_value)
          IS DISTINCT FROM (i.changed_by, i.field_name, i.old_value, i.new_value)
       OR i.changed_at <> s.changed_at
),
removed AS (
    DELETE FROM ims.issue_history AS h
    WHERE h.issue_pk = ANY(ARRAY(  -- noqa: CP03
        SELECT ch.issue_pk
        FROM changed AS ch
    ))
    RETURNING h.history_id
),
added AS (
    INSERT INTO ims.issue_history (issue_pk, changed_at, changed_by, field_name, old_value,
                                   new_value)
    SELECT i.issue_pk, coalesce(i.changed_at, now()), i.changed_by, i.field_name,
           i.old_value, i.new_value
    FROM incoming AS i
    JOIN changed AS ch
      ON ch.issue_pk = i.issue_pk
    ORDER BY i.ordinality
    RETURNING history_id
)
SELECT (
           SELECT count(*)
           FROM changed
       )::integer AS issues,
       (
           SELECT count(*)
           FROM removed
       )::integer AS removed,
       (
           SELECT count(*)
           FROM added
       )::integer AS added;

-- name: replace_attachments :one
-- Makes the attachments of each issue in :issue_ids the list :attachments gives it (a
-- JSON array of objects with issue_id and the fields of NewAttachment, in file order),
-- as replace_comments does. An attachment without session_id is recorded as downloaded
-- by :session_id (the import's crawl session), one without downloaded_at at now();
-- either left out matches any stored value, so a re-import into a later session keeps
-- the session that first downloaded the file. Returns issues rewritten, attachments
-- removed and added.
WITH incoming AS (
    SELECT i.issue_pk, n.session_id, n.filename, n.file_type, n.file_size, n.storage_path,
           n.checksum_sha256, n.downloaded_at, e.ordinality,
           row_number() OVER (PARTITION BY i.issue_pk ORDER BY e.ordinality) AS list_index
    FROM jsonb_array_elements(:attachments) WITH ORDINALITY AS e (item, ordinality)
    CROSS JOIN LATERAL jsonb_populate_record(NULL::ims.attachments, e.item) AS n
    JOIN ims.issues AS i
      ON i.issue_id = e.item ->> 'issue_id'
),
stored AS (
    SELECT a.issue_pk, a.session_id, a.filename, a.file_type, a.file_size, a.storage_path,
           a.checksum_sha256, a.downloaded_at,
           row_number() OVER (PARTITION BY a.issue_pk ORDER BY a.attachment_id) AS list_index
    FROM ims.attachments AS a
    WHERE a.issue_pk = ANY(ARRAY(  -- noqa: CP03
        SELECT i.issue_pk
        FROM ims.issues AS i
        WHERE i.issue_id = ANY(:issue_ids::text[])
    ))
),
changed AS (
    SELECT DISTINCT coalesce(s.issue_pk, i.issue_pk) AS issue_pk
    FROM stored AS s
    FULL JOIN incoming AS i
      ON i.issue_pk = s.issue_pk
     AND i.list_index = s.list_index
    WHERE s.issue_pk IS NULL
       OR i.issue_pk IS NULL
       OR (s.filename, s.file_type, s.file_size, s.storage_path, s.checksum_sha256)
          IS DISTINCT FROM
          (i.filename, i.file_type, i.file_size, i.storage_path, i.checksum_sha256)
       OR coalesce(i.session_id, s.session_id) IS DISTINCT FROM s.session_id
       OR i.downloaded_at <> s.downloaded_at
),
removed AS (
    DELETE FROM ims.attachments AS a
    WHERE a.issue_pk = ANY(ARRAY(  -- noqa: CP03
        SELECT ch.issue_pk
        FROM changed AS ch
    ))
    RETURNING a.attachment_id
),
added AS (
    INSERT INTO ims.attachments (issue_pk, session_id, filename, file_type, file_size,
                                 storage_path, checksum_sha256, downloaded_at)
    SELECT i.issue_pk, coalesce(i.session_id, :session_id::bigint), i.filename, i.file_type,
           i.file_size, i.storage_path, i.checksum_sha256, coalesce(i.downloaded_at, now())
    FROM incoming AS i
    JOIN changed AS ch
      ON ch.issue_pk = i.issue_pk
    ORDER BY i.ordinality
    RETURNING attachment_id
)
SELECT (
           SELECT count(*)
           FROM changed
       )::integer AS issues,
       (
           SELECT count(*)
           FROM removed
       )::integer AS removed,
       (
           SELECT count(*)
           FROM added
       )::integer AS added;

-- name: link_issues :one
-- Links every issue of :links (a JSON array of objects with issue_id and optional
-- crawl_order and crawl_duration_ms) to crawl session :session_id with the session's
-- user_id.
-- A pair already linked (a re-import into the same session) takes the new crawl_order
-- (and crawl_duration_ms, when given) instead of failing; an unchanged pair is not
-- rewritten. A session the context cannot see links nothing: sessions is then 0.
-- Rows are written in issue_pk order, so concurrent imports lock in the same order.
WITH target AS (
    SELECT s.session_id, s.user_id
    FROM ims.crawl_sessions AS s
    WHERE s.session_id = :session_id
),
links AS (
    SELECT i.issue_pk, l.crawl_order, l.crawl_duration_ms
    FROM jsonb_array_elements(:links) AS e (item)
    CROSS JOIN LATERAL jsonb_populate_record(NULL::ims.session_issues, e.item) AS l
    JOIN ims.issues AS i
      ON i.issue_id = e.item ->> 'issue_id'
),
existing AS (
    SELECT si.issue_pk
    FROM ims.session_issues AS si
    JOIN target AS t
      ON t.session_id = si.session_id
    WHERE si.issue_pk IN (
        SELECT l.issue_pk
        FROM links AS l
    )
),
written AS (
    INSERT INTO ims.session_issues AS si (session_id, issue_pk, user_id, crawl_order,
                                          crawl_duration_ms)
    SELECT t.session_id, l.issue_pk, t.user_id, l.crawl_order, l.crawl_duration_ms
    FROM target AS t
    CROSS JOIN links AS l
    ORDER BY l.issue_pk
    ON CONFLICT (session_id, issue_pk) DO UPDATE
    SET crawl_order = EXCLUDED.crawl_order,
        crawl_duration_ms = coalesce(EXCLUDED.crawl_duration_ms, si.crawl_duration_ms)
    WHERE (si.crawl_order, si.crawl_duration_ms)
          IS DISTINCT FROM
          (EXCLUDED.crawl_order, coalesce(EXCLUDED.crawl_duration_ms, si.crawl_duration_ms))
    RETURNING si.issue_pk
)
SELECT (
           SELECT count(*)
           FROM target
       )::integer AS sessions,
       count(*) FILTER (WHERE e.issue_pk IS NULL)::integer AS linked,
       count(*) FILTER (WHERE e.issue_pk IS NOT NULL)::integer AS relinked
FROM written AS w
LEFT JOIN existing AS e
  ON e.issue_pk = w.issue_pk;
