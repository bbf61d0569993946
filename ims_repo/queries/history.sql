-- Statements on ims.issue_history: field changes of an issue as the IMS reports them
-- (not this database's own audit, see audit.sql). Shared, like the issue, and deleted
-- with it (ON DELETE CASCADE). Rows are facts from the IMS, so there is no update.

-- name: get :one
-- The history entry with this id, or nothing.
SELECT history_id, issue_pk, changed_at, changed_by, field_name, old_value, new_value
FROM ims.issue_history
WHERE history_id = :history_id;

-- name: for_issue :many
-- An issue's field changes in time order (same-time changes in the order stored).
SELECT history_id, issue_pk, changed_at, changed_by, field_name, old_value, new_value
FROM ims.issue_history
WHERE issue_pk = :issue_pk
ORDER BY changed_at, history_id;

-- name: find :many
-- History entries matching the caller's whitelisted filters, ordered, one page.
SELECT history_id, issue_pk, changed_at, changed_by, field_name, old_value, new_value
FROM ims.issue_history
WHERE {filters}
ORDER BY {order_by}
LIMIT :limit
OFFSET :offset;

-- name: create :one
-- Records one field change of an issue; changed_at defaults to now() when NULL.
INSERT INTO ims.issue_history (issue_pk, changed_at, changed_by, field_name, old_value,
                               new_value)
VALUES (:issue_pk, coalesce(:changed_at::timestamptz, now()), :changed_by, :field_name,
        :old_value, :new_value)
RETURNING history_id, issue_pk, changed_at, changed_by, field_name, old_value, new_value;

-- name: delete :rowcount
-- Removes one history entry.
DELETE FROM ims.issue_history
WHERE history_id = :history_id;

-- name: add_many :rowcount
-- Records every change of :changes (a JSON array of objects with the fields of
-- NewIssueHistory; absent keys are NULL) for one issue in a single statement, all or
-- nothing; changed_at defaults to now() (the transaction's time) per entry. WITH
-- ORDINALITY keeps the array's order, so history_id breaks ties as the caller gave them.
INSERT INTO ims.issue_history (issue_pk, changed_at, changed_by, field_name, old_value,
                               new_value)
SELECT :issue_pk::bigint, coalesce(h.changed_at, now()), h.changed_by, h.field_name,
       h.old_value, h.new_value
FROM jsonb_populate_recordset(NULL::ims.issue_history, :changes) WITH ORDINALITY AS h
ORDER BY h.ordinality;
