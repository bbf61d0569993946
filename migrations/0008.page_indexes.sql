-- 0008 page indexes: the orders crawlers page by get an index each, so the
-- first page and every keyset page (find(after=…)) read only the rows they
-- return, in order, instead of fetching and sorting every matching row.
--
-- find(product=…, status_in=[…], order_by=["-issue_updated_at", "issue_pk"])
-- is the crawler's newest-first list. Before this index every page, first or
-- deep, read all of the product's open issues (a bitmap heap scan) and sorted
-- them. With it, a page is an index range: product = …, then
-- issue_updated_at DESC, issue_pk as the ORDER BY emits them, starting at the
-- keyset bound (issue_updated_at <= the last row's), 50 rows at a time.
--
-- Choices:
-- - status is left out: find filters it with status = ANY(…), and before
--   PostgreSQL 17 an array condition on a column ahead of the sort columns
--   makes the index scan lose its order (a sort again). Checking status on
--   the rows the range yields costs a few rows per page.
-- - DESC here means NULLS FIRST, as the ORDER BY the layer emits
--   (issue_updated_at DESC, PostgreSQL's default placement): issues without
--   an update time come first in that order, and in the index.
-- - The same index read backwards serves order_by=["issue_updated_at",
--   "-issue_pk"]; ascending time with ascending issue_pk needs its own index
--   (not added: no crawler pages that way yet).
--
-- Plain CREATE INDEX, not CONCURRENTLY: yoyo runs each migration in one
-- transaction, where CONCURRENTLY is refused. It takes a SHARE lock on
-- ims.issues for the build: reads go on, writes (crawls) wait, about 0.3 s per
-- 10^5 issues. lock_timeout makes the migration fail fast rather than queue
-- behind a long transaction (and stall every writer queued behind it). On a
-- large live table a DBA would first run, outside a transaction,
--   CREATE INDEX CONCURRENTLY issues_product_updated_idx
--       ON ims.issues (product, issue_updated_at DESC, issue_pk);
-- as ims_owner; this migration then finds it and skips the build (IF NOT
-- EXISTS). An index left INVALID by a failed concurrent build must be dropped
-- first.
-- depends: 0006.search


-- Create everything below as the owner (see 0002 for why SET LOCAL).
SET LOCAL ROLE ims_owner;

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';


-- The crawler's newest-first pages of one product (find with product=… and
-- order_by=["-issue_updated_at", "issue_pk"]), first and keyset pages alike.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS issues_product_updated_idx
    ON ims.issues (product, issue_updated_at DESC, issue_pk);

COMMENT ON INDEX ims.issues_product_updated_idx IS
    'Pages of one product, newest update first (NULLs first), issue_pk breaking ties: find(product=…, order_by=["-issue_updated_at", "issue_pk"]), first and keyset pages.';
