-- Statements on ims.issue_comments: comments on an issue as crawled from the IMS.
-- Shared, like the issue: every context sees and writes every comment, and the
-- comments go with their issue when it is deleted (ON DELETE CASCADE).

-- name: get :one
-- The comment with this id, or nothing.
SELECT comment_id, issue_pk, author, content, commented_at, comment_order
FROM ims.issue_comments
WHERE comment_id = :comment_id;

-- name: for_issue :many
-- An issue's comments in display order: by position on the IMS page (comments
-- without one last), then by time, then in the order they were stored.
SELECT comment_id, issue_pk, author, content, commented_at, comment_order
FROM ims.issue_comments
WHERE issue_pk = :issue_pk
ORDER BY comment_order NULLS LAST, commented_at, comment_id;

-- name: find :many
-- Comments matching the caller's whitelisted filters, in the requested order, one page.
SELECT comment_id, issue_pk, author, content, commented_at, comment_order
FROM ims.issue_comments
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: create :one
-- Adds one comment to an issue; a missing issue is a foreign-key error.
INSERT INTO ims.issue_comments (issue_pk, author, content, commented_at, comment_order)
VALUES (:issue_pk, :author, :content, :commented_at, :comment_order)
RETURNING comment_id, issue_pk, author, content, commented_at, comment_order;

-- name: update :one
-- Changes the fields present in :changes (a JSON object); fields it leaves out keep
-- their value. The comment stays on its issue (issue_pk is not among them).
UPDATE ims.issue_comments AS c
SET (author, content, commented_at, comment_order) = (
        SELECT n.author, n.content, n.commented_at, n.comment_order
        FROM jsonb_populate_record(c, :changes) AS n
    )
WHERE c.comment_id = :comment_id
RETURNING c.comment_id, c.issue_pk, c.author, c.content, c.commented_at, c.comment_order;

-- name: delete :rowcount
-- Removes one comment.
DELETE FROM ims.issue_comments
WHERE comment_id = :comment_id;

-- name: add_many :rowcount
-- Adds every comment of :comments (a JSON array of objects with the fields of
-- NewIssueComment; absent keys are NULL) to one issue in a single statement, so a
-- crawl stores an issue's comments in one round trip and all or none of them are
-- written. WITH ORDINALITY keeps the array's order, so comment_id (the last
-- tie-breaker of for_issue) follows the order the caller gave.
INSERT INTO ims.issue_comments (issue_pk, author, content, commented_at, comment_order)
SELECT :issue_pk::bigint, c.author, c.content, c.commented_at, c.comment_order
FROM jsonb_populate_recordset(NULL::ims.issue_comments, :comments) WITH ORDINALITY AS c
ORDER BY c.ordinality;
