-- 0001 roles: the two cluster-wide roles every later migration relies on.
--
-- ims_owner owns every object in schema ims (the later files start with
-- SET LOCAL ROLE ims_owner, so ownership does not depend on who runs them).
-- ims_app is the runtime role: it gets exactly the privileges the
-- application needs (0003) and never bypasses row-level security.
--
-- This file runs as the connecting user (a superuser, or a role with
-- CREATEROLE when the roles are still missing). It is the only file that
-- does not switch to ims_owner: ims_owner cannot create roles.


-- Create ims_owner if missing. Roles are cluster-wide and several databases
-- (test databases, staging copies) are migrated against one cluster, so the
-- creation is idempotent, and a concurrent migration of another database that
-- creates the role first (duplicate_object / unique_violation on pg_authid)
-- is not an error. An existing role that is a superuser or bypasses RLS is
-- refused: the owner must never be a superuser (SPEC §3).
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT
        FROM pg_catalog.pg_roles
        WHERE rolname = 'ims_owner'
    ) THEN
        BEGIN
            CREATE ROLE ims_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
        END;
    END IF;
    IF EXISTS (
        SELECT
        FROM pg_catalog.pg_roles
        WHERE rolname = 'ims_owner'
          AND (rolsuper OR rolbypassrls)
    ) THEN
        RAISE EXCEPTION 'role ims_owner exists but is a superuser or has BYPASSRLS'
            USING HINT = 'ALTER ROLE ims_owner NOSUPERUSER NOBYPASSRLS, then migrate again.';
    END IF;
END
$$;


-- Create ims_app if missing, with the same idempotence and the same refusal:
-- a runtime role that is a superuser or has BYPASSRLS would see every row,
-- which defeats the point of the policies created in 0003.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT
        FROM pg_catalog.pg_roles
        WHERE rolname = 'ims_app'
    ) THEN
        BEGIN
            CREATE ROLE ims_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
        END;
    END IF;
    IF EXISTS (
        SELECT
        FROM pg_catalog.pg_roles
        WHERE rolname = 'ims_app'
          AND (rolsuper OR rolbypassrls)
    ) THEN
        RAISE EXCEPTION 'role ims_app exists but is a superuser or has BYPASSRLS'
            USING HINT = 'ALTER ROLE ims_app NOSUPERUSER NOBYPASSRLS, then migrate again.';
    END IF;
END
$$;


-- ims_owner needs CREATE on this database for two things done as ims_owner in
-- 0002: CREATE SCHEMA ims, and CREATE EXTENSION pg_trgm (a trusted extension
-- may be created by any role holding CREATE on the database). The grant is
-- per database (unlike the roles) and is revoked by the rollback. GRANT takes
-- no expression for the database name, hence the dynamic statement; %I quotes
-- the name. Skipped when ims_owner already holds the privilege (for example
-- when it owns the database), so a non-superuser member of ims_owner can
-- re-run this file on such a database.
DO $$
BEGIN
    IF NOT pg_catalog.has_database_privilege('ims_owner', pg_catalog.current_database(), 'CREATE') THEN
        EXECUTE pg_catalog.format(
            'GRANT CREATE ON DATABASE %I TO ims_owner',
            pg_catalog.current_database()
        );
    END IF;
END
$$;
