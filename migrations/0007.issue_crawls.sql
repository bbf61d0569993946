-- 0007 issue crawls: the crawl bookkeeping of a re-crawl that changes nothing
-- is written to a narrow table instead of rewriting the wide issue row.
--
-- Why (issue 5, docs/BENCHMARKS.md): a re-crawl of 10^5 stored issues that
-- all came back unchanged took as long as a plain INSERT … ON CONFLICT DO
-- UPDATE of every row, because moving last_crawled_at/crawl_count on
-- ims.issues writes a new version of the wide row (~2 kB, no room on its page
-- for a HOT update), an entry in each of its eight indexes (three GIN), and
-- hands both versions to the audit trigger. Measured on 10^5 rows: 14.7 s for
-- that UPDATE, 0.19 s for the same bookkeeping on a narrow table.
--
-- ims.issue_crawls holds, per issue a bulk upsert has stored:
--   last_crawled_at  when a crawl last stored the issue;
--   extra_crawls     the crawls counted here, on top of ims.issues.crawl_count
--                    (adding is safe under concurrent crawlers: no one needs
--                    to know the total to count a crawl);
--   content_hash     a digest of the crawled item as last stored (computed by
--                    ims_repo), so that a re-crawl can recognise an unchanged
--                    item by its digest alone, without sending it.
-- ims.issues keeps its columns (SPEC §2): first_crawled_at, and
-- last_crawled_at/crawl_count as of the row's insert; from 0007 on, ims_repo's
-- upserts move the bookkeeping here only (whoever moves it in ims.issues, as
-- the code before 0007 did, is still counted). The current values are
--     last_crawled_at = greatest(i.last_crawled_at, c.last_crawled_at)
--     crawl_count     = i.crawl_count + COALESCE(c.extra_crawls, 0)
-- which the view ims.issues_with_crawls shows for every issue: ims_repo reads
-- issues through it, and so should a person reading the database.
--
-- A stored digest is trusted only while the issue row is the one it was stored
-- with: the statement-level trigger issues_forget_content_hash clears it when
-- anything (the layer, a DBA) updates the issue row.
-- depends: 0006.search


-- Create everything below as the owner (see 0002 for why SET LOCAL). The
-- trigger below takes a lock on ims.issues: wait at most 5 s for it rather
-- than queue every crawler behind a long transaction.
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';


-- Crawl bookkeeping per issue. Shared like ims.issues: no user_id, every row
-- may be read and written by the runtime role. Deleting an issue deletes its
-- bookkeeping.
CREATE TABLE ims.issue_crawls (
    issue_pk bigint NOT NULL,
    last_crawled_at timestamptz NOT NULL,
    extra_crawls integer NOT NULL DEFAULT 0,
    content_hash bytea,
    CONSTRAINT issue_crawls_pkey PRIMARY KEY (issue_pk),
    CONSTRAINT issue_crawls_issue_pk_fkey FOREIGN KEY (issue_pk)
        REFERENCES ims.issues (issue_pk) ON DELETE CASCADE,
    CONSTRAINT issue_crawls_extra_crawls_check CHECK (extra_crawls >= 0),
    CONSTRAINT issue_crawls_content_hash_check
        CHECK (octet_length(content_hash) BETWEEN 16 AND 64)
);

COMMENT ON TABLE ims.issue_crawls IS
    'Crawl bookkeeping of upserted issues, on top of ims.issues.last_crawled_at/crawl_count: see the view ims.issues_with_crawls.';
COMMENT ON COLUMN ims.issue_crawls.last_crawled_at IS
    'When a crawl last stored this issue; moves on every upsert.';
COMMENT ON COLUMN ims.issue_crawls.extra_crawls IS
    'Crawls of this issue counted here, on top of ims.issues.crawl_count.';
COMMENT ON COLUMN ims.issue_crawls.content_hash IS
    'Digest of the crawled item as last stored (ims_repo); NULL once anything else updated the issue row.';
COMMENT ON COLUMN ims.issues.last_crawled_at IS
    'When a crawl inserted this row; ims.issue_crawls.last_crawled_at, when present, is the current value (ims.issues_with_crawls).';
COMMENT ON COLUMN ims.issues.crawl_count IS
    'Crawls counted when this row was inserted; add ims.issue_crawls.extra_crawls for the current count (ims.issues_with_crawls).';


-- Every issue with its current crawl bookkeeping: the issue row (without the
-- generated search vector) and the narrow row, when there is one. The record
-- ims_repo.Issue reads this view. security_invoker: the reader's own
-- privileges and policies apply, as on the tables.
CREATE VIEW ims.issues_with_crawls
WITH (security_invoker = true)
AS
SELECT
    i.issue_pk,
    i.issue_id,
    i.title,
    i.description,
    i.product,
    i.module,
    i.version,
    i.status,
    i.priority,
    i.severity,
    i.reporter,
    i.assignee,
    i.issue_created_at,
    i.issue_updated_at,
    i.url,
    i.raw_data,
    i.first_crawled_at,
    greatest(i.last_crawled_at, c.last_crawled_at) AS last_crawled_at,
    i.crawl_count + COALESCE(c.extra_crawls, 0) AS crawl_count
FROM ims.issues AS i
LEFT JOIN ims.issue_crawls AS c
    ON c.issue_pk = i.issue_pk;

COMMENT ON VIEW ims.issues_with_crawls IS
    'ims.issues (without search_vector) with the current last_crawled_at and crawl_count (ims.issue_crawls over ims.issues).';


-- Row-level security as on ims.issues (0003): enabled and forced; the owner
-- and the runtime role see and write every row of this shared table.
ALTER TABLE ims.issue_crawls ENABLE ROW LEVEL SECURITY;
ALTER TABLE ims.issue_crawls FORCE ROW LEVEL SECURITY;

CREATE POLICY issue_crawls_owner_all
    ON ims.issue_crawls
    AS PERMISSIVE
    FOR ALL
    TO ims_owner
    USING (TRUE)
    WITH CHECK (TRUE);

CREATE POLICY issue_crawls_app_all
    ON ims.issue_crawls
    AS PERMISSIVE
    FOR ALL
    TO ims_app
    USING (TRUE)
    WITH CHECK (TRUE);

-- The runtime role writes bookkeeping as it upserts; rows go with their issue
-- (ON DELETE CASCADE), so no DELETE.
GRANT SELECT, INSERT, UPDATE
    ON TABLE ims.issue_crawls
    TO ims_app;

GRANT SELECT
    ON TABLE ims.issues_with_crawls
    TO ims_app;


-- Forget the digest of every issue row an UPDATE wrote, whoever ran it: the
-- digest described the row as a bulk upsert stored it. Per statement, with
-- the statement's new rows as a transition table (one call for a bulk
-- upsert, SPEC §3). Spared: rows whose bookkeeping this same statement wrote
-- (last_crawled_at = statement_timestamp()), which is how an upsert stores a
-- changed item's content and its new digest in one statement. SECURITY
-- DEFINER (fixed search_path), so a DBA's UPDATE of ims.issues clears digests
-- without a grant on ims.issue_crawls.
CREATE FUNCTION ims.forget_content_hash()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, ims
AS $$
BEGIN
    UPDATE ims.issue_crawls AS c
    SET content_hash = NULL
    FROM new_rows AS n
    WHERE c.issue_pk = n.issue_pk
      AND c.content_hash IS NOT NULL
      AND c.last_crawled_at <> pg_catalog.statement_timestamp();
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION ims.forget_content_hash() IS
    'Trigger of ims.issues: clears the digest in ims.issue_crawls of every issue row an UPDATE wrote (but those the same statement gave a new digest).';

REVOKE EXECUTE
    ON FUNCTION ims.forget_content_hash()
    FROM PUBLIC;

CREATE TRIGGER issues_forget_content_hash
    AFTER UPDATE
    ON ims.issues
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION ims.forget_content_hash();
