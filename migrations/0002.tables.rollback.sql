-- Rollback of 0002 tables: drops the twelve tables, pg_trgm and schema ims.
--
-- No CASCADE anywhere: an object someone added to schema ims outside the
-- migrations makes this rollback fail loudly instead of being dropped
-- silently. Tables are dropped children first so every DROP succeeds without
-- CASCADE.


-- Act as the owner, as the apply did (a superuser could drop anyway; a
-- member of ims_owner needs the role switch to be the owner).
SET LOCAL ROLE ims_owner;


-- Audit log first: nothing references it.
DROP TABLE ims.audit_log;


-- Analytics: reference users only.
DROP TABLE ims.analytics_monthly;


DROP TABLE ims.analytics_daily;


-- Children of crawl_sessions and issues.
DROP TABLE ims.session_errors;


DROP TABLE ims.search_queries;


DROP TABLE ims.attachments;


DROP TABLE ims.issue_history;


DROP TABLE ims.issue_comments;


DROP TABLE ims.session_issues;


-- Parents.
DROP TABLE ims.issues;


DROP TABLE ims.crawl_sessions;


DROP TABLE ims.users;


-- The extension lives in schema ims (0002 refuses any other placement), so
-- it was created by this migration and goes with it.
DROP EXTENSION pg_trgm;


-- Empty by now.
DROP SCHEMA ims;
