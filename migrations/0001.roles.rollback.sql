-- Rollback of 0001 roles.
--
-- The roles ims_owner and ims_app are deliberately NOT dropped. Roles are
-- cluster-wide: other databases on the same cluster (parallel test databases,
-- a staging copy) may still be migrated and own objects or hold privileges
-- through them, and DROP ROLE would fail there or break them. Leaving two
-- NOLOGIN roles behind is harmless; a DBA who retires the whole cluster's use
-- of ims can run DROP ROLE ims_app, ims_owner by hand once no database uses
-- them.
--
-- What this file does undo is the only per-database change of 0001: the
-- CREATE privilege on this database granted to ims_owner.
DO $$
BEGIN
    EXECUTE pg_catalog.format(
        'REVOKE CREATE ON DATABASE %I FROM ims_owner',
        pg_catalog.current_database()
    );
END
$$;
