-- Rollback of 0005 audit: drops the nine audit triggers, then their
-- function. Rows already in ims.audit_log are kept (the table belongs to
-- 0002).


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;


DROP TRIGGER crawl_sessions_audit_delete
    ON ims.crawl_sessions;


DROP TRIGGER crawl_sessions_audit_update
    ON ims.crawl_sessions;


DROP TRIGGER crawl_sessions_audit_insert
    ON ims.crawl_sessions;


DROP TRIGGER issues_audit_delete
    ON ims.issues;


DROP TRIGGER issues_audit_update
    ON ims.issues;


DROP TRIGGER issues_audit_insert
    ON ims.issues;


DROP TRIGGER users_audit_delete
    ON ims.users;


DROP TRIGGER users_audit_update
    ON ims.users;


DROP TRIGGER users_audit_insert
    ON ims.users;


-- No trigger uses it any more; its privileges go with it.
DROP FUNCTION ims.audit_changes();
