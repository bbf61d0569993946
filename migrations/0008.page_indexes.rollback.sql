-- Rollback of 0008 page indexes: drops the paging indexes it added; pages are
-- sorted again (every matching row read), as before.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;

SET LOCAL lock_timeout = '5s';


DROP INDEX ims.issues_product_updated_idx;
