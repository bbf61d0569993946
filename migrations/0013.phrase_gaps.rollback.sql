-- Rollback of 0013 phrase gaps: restores 0002's search_vector exactly (its
-- expression, its comment, its index), by the same drop and add, which
-- rewrites ims.issues again. Ranks and rank bounds are those of 0013 (see its
-- header): nothing else changes.


-- Act as the owner, as the apply did.
SET LOCAL ROLE ims_owner;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60min';


ALTER TABLE ims.issues
    DROP COLUMN search_vector;

ALTER TABLE ims.issues
    ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'B')
        || setweight(to_tsvector('simple'::regconfig, COALESCE(title, '')), 'A')
        || setweight(to_tsvector('simple'::regconfig, COALESCE(description, '')), 'B')
    ) STORED;

COMMENT ON COLUMN ims.issues.search_vector IS
    'Generated: title (weight A) and description (weight B) in the english (stemmed) and simple (as typed) configurations. Not audited.';

CREATE INDEX issues_search_vector_idx
    ON ims.issues
    USING gin (search_vector);
