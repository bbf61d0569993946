-- Rollback of 0004 functions: drops the four functions (their privileges go
-- with them), dependents first.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;


-- Calls ims.analytics_figures.
DROP FUNCTION ims.refresh_analytics(date);


DROP FUNCTION ims.analytics_figures(date, date);


DROP FUNCTION ims.search_issues(text, text, integer);


DROP FUNCTION ims.get_user_stats(bigint);
