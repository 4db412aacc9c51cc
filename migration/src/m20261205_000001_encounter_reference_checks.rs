//! On PostgreSQL, an encounter's references to its candidate and its
//! touchpoint are checked once per statement instead of once per row.
//!
//! A foreign key is a trigger per inserted row, each a locking lookup run
//! through the executor one at a time. For a batch of 5,000 encounters in
//! `psql` (fsync on) that was 109 to 120 ms of a 5,000-row `INSERT`, and 48
//! to 52 ms with the checks below, as good as no check at all.
//!
//! The checks keep what the two composite foreign keys of
//! `m20261204_000002_tenant_foreign_keys` promised:
//!
//! - an encounter's candidate and touchpoint exist and are of the
//!   encounter's organization, on insert and on update: a statement-level
//!   trigger reads the statement's new rows (a transition table), locks
//!   each distinct referenced row `FOR KEY SHARE` as the foreign key did,
//!   and raises `foreign_key_violation` when one is missing;
//! - a candidate or touchpoint with encounters cannot be deleted, or have
//!   its key changed (the keys' `RESTRICT`): a row trigger on the parents.
//!   Its lookup runs after the parent row is locked for the delete, so it
//!   waits for a transaction that inserted encounters naming the row, and
//!   (under `READ COMMITTED`, the service's isolation) sees them.
//!
//! The service never deletes candidates (erasure keeps an anonymous row) or
//! touchpoints (they are archived): the parents' side guards hand-written
//! SQL. SQLite keeps its foreign keys: there each check is an index lookup
//! inside the statement, and it has no statement-level triggers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = r#"
CREATE FUNCTION encounters_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    locked bigint;
BEGIN
    WITH refs AS (SELECT DISTINCT organization_id, candidate_id FROM new_encounters),
         found AS (SELECT c.id FROM candidates c
                   JOIN refs ON c.organization_id = refs.organization_id AND c.id = refs.candidate_id
                   FOR KEY SHARE OF c)
    SELECT (SELECT count(*) FROM refs), (SELECT count(*) FROM found) INTO wanted, locked;
    IF wanted <> locked THEN
        RAISE EXCEPTION 'an encounter names a candidate that is not of its organization'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'encounters',
                  CONSTRAINT = 'fk_encounters_organization_candidate';
    END IF;
    WITH refs AS (SELECT DISTINCT organization_id, touchpoint_id FROM new_encounters),
         found AS (SELECT t.id FROM touchpoints t
                   JOIN refs ON t.organization_id = refs.organization_id AND t.id = refs.touchpoint_id
                   FOR KEY SHARE OF t)
    SELECT (SELECT count(*) FROM refs), (SELECT count(*) FROM found) INTO wanted, locked;
    IF wanted <> locked THEN
        RAISE EXCEPTION 'an encounter names a touchpoint that is not of its organization'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'encounters',
                  CONSTRAINT = 'fk_encounters_organization_touchpoint';
    END IF;
    RETURN NULL;
END
$$;

-- A transition table allows one event per trigger: one for each.
CREATE TRIGGER encounters_references_on_insert AFTER INSERT ON encounters
    REFERENCING NEW TABLE AS new_encounters
    FOR EACH STATEMENT EXECUTE FUNCTION encounters_check_references();
CREATE TRIGGER encounters_references_on_update AFTER UPDATE ON encounters
    REFERENCING NEW TABLE AS new_encounters
    FOR EACH STATEMENT EXECUTE FUNCTION encounters_check_references();

CREATE FUNCTION encounter_parent_restrict() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.organization_id = OLD.organization_id AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'candidates' THEN
        SELECT EXISTS (SELECT 1 FROM encounters
                       WHERE organization_id = OLD.organization_id AND candidate_id = OLD.id)
            INTO referenced;
    ELSE
        SELECT EXISTS (SELECT 1 FROM encounters
                       WHERE organization_id = OLD.organization_id AND touchpoint_id = OLD.id)
            INTO referenced;
    END IF;
    IF referenced THEN
        RAISE EXCEPTION 'the % row % still has encounters', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER candidates_restrict_encounters BEFORE DELETE OR UPDATE OF organization_id, id
    ON candidates FOR EACH ROW EXECUTE FUNCTION encounter_parent_restrict();
CREATE TRIGGER touchpoints_restrict_encounters BEFORE DELETE OR UPDATE OF organization_id, id
    ON touchpoints FOR EACH ROW EXECUTE FUNCTION encounter_parent_restrict();

ALTER TABLE encounters
    DROP CONSTRAINT fk_encounters_organization_candidate,
    DROP CONSTRAINT fk_encounters_organization_touchpoint;
"#;

const POSTGRES_DOWN: &str = "
ALTER TABLE encounters
    ADD CONSTRAINT fk_encounters_organization_candidate FOREIGN KEY (organization_id, candidate_id)
        REFERENCES candidates (organization_id, id) ON DELETE RESTRICT,
    ADD CONSTRAINT fk_encounters_organization_touchpoint FOREIGN KEY (organization_id, touchpoint_id)
        REFERENCES touchpoints (organization_id, id) ON DELETE RESTRICT;
DROP TRIGGER candidates_restrict_encounters ON candidates;
DROP TRIGGER touchpoints_restrict_encounters ON touchpoints;
DROP FUNCTION encounter_parent_restrict();
DROP TRIGGER encounters_references_on_insert ON encounters;
DROP TRIGGER encounters_references_on_update ON encounters;
DROP FUNCTION encounters_check_references();
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(POSTGRES_UP)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(POSTGRES_DOWN)
                .await?;
        }
        Ok(())
    }
}
