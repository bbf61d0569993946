-- Statements on ims.attachments: files attached to an issue, as downloaded by a crawl.
-- Shared, like the issue, and deleted with it. session_id is a plain reference with no
-- foreign key (SPEC §2/§3): writing any value succeeds the same way whether or not the
-- session exists or is visible, so a shared row never reveals another user's session.

-- name: get :one
-- The attachment with this id, or nothing.
SELECT attachment_id, issue_pk, session_id, filename, file_type, file_size, storage_path,
       checksum_sha256, downloaded_at
FROM ims.attachments
WHERE attachment_id = :attachment_id;

-- name: for_issue :many
-- An issue's attachments in the order they were stored.
SELECT attachment_id, issue_pk, session_id, filename, file_type, file_size, storage_path,
       checksum_sha256, downloaded_at
FROM ims.attachments
WHERE issue_pk = :issue_pk
ORDER BY attachment_id;

-- name: find :many
-- Attachments matching the caller's whitelisted filters, ordered, one page.
SELECT attachment_id, issue_pk, session_id, filename, file_type, file_size, storage_path,
       checksum_sha256, downloaded_at
FROM ims.attachments
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: create :one
-- Records one attachment of an issue; downloaded_at defaults to now() when NULL.
INSERT INTO ims.attachments (issue_pk, session_id, filename, file_type, file_size,
                             storage_path, checksum_sha256, downloaded_at)
VALUES (:issue_pk, :session_id, :filename, :file_type, :file_size, :storage_path,
        :checksum_sha256, coalesce(:downloaded_at::timestamptz, now()))
RETURNING attachment_id, issue_pk, session_id, filename, file_type, file_size,
          storage_path, checksum_sha256, downloaded_at;

-- name: update :one
-- Changes the fields present in :changes (a JSON object); fields it leaves out keep
-- their value. The attachment stays on its issue (issue_pk is not among them).
UPDATE ims.attachments AS a
SET (session_id, filename, file_type, file_size, storage_path, checksum_sha256,
     downloaded_at) = (
        SELECT n.session_id, n.filename, n.file_type, n.file_size, n.storage_path,
               n.checksum_sha256, n.downloaded_at
        FROM jsonb_populate_record(a, :changes) AS n
    )
WHERE a.attachment_id = :attachment_id
RETURNING a.attachment_id, a.issue_pk, a.session_id, a.filename, a.file_type, a.file_size,
          a.storage_path, a.checksum_sha256, a.downloaded_at;

-- name: delete :rowcount
-- Removes one attachment record (not the stored file).
DELETE FROM ims.attachments
WHERE attachment_id = :attachment_id;
