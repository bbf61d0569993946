-- Rollback of 0007 issue crawls: folds the bookkeeping of ims.issue_crawls
-- back into ims.issues (so no crawl is lost), then drops what 0007 created and
-- restores the column comments of 0002.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';


DROP TRIGGER issues_forget_content_hash ON ims.issues;
DROP FUNCTION ims.forget_content_hash();

UPDATE ims.issues AS i
SET last_crawled_at = greatest(i.last_crawled_at, c.last_crawled_at),
    crawl_count = i.crawl_count + c.extra_crawls
FROM ims.issue_crawls AS c
WHERE c.issue_pk = i.issue_pk;

DROP VIEW ims.issues_with_crawls;
DROP TABLE ims.issue_crawls;

COMMENT ON COLUMN ims.issues.last_crawled_at IS
    'When a crawl last stored this issue; moves on every upsert.';
COMMENT ON COLUMN ims.issues.crawl_count IS
    'How many times crawls stored this issue; incremented on every upsert.';
