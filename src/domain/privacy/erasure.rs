//! Erasure of a candidate's personal data (GDPR Art. 17), by request or by
//! the retention policy.

use entity::{candidate, encounter, enums::AuditAction};
use sea_orm::{sea_query::Query, ActiveModelTrait, ColumnTrait, DatabaseConnection, Set};

use crate::db::store::Executor;
use crate::domain::{
    candidates,
    encounters::write::EncounterWrite,
    idempotency::{self, AnswerRedactor},
    privacy::audit::{self, Actor, Event},
    surveys::invitations,
    webhooks::{self, events::NewEvent},
    DomainResult,
};

/// The `external_ref` an erased candidate keeps. The column is `NOT NULL`
/// and unique per organization (see the migration that added `erased_at`
/// for why it stays so), so erasure puts a value there that names nobody
/// and can never collide with a client's: every client-given reference is
/// trimmed, so none starts with a space. No lookup by reference (a filter,
/// a batch item's `candidate_external_ref`) can ever match it, and the ATS
/// id the candidate had is free again: if the same person applies again,
/// they are a new candidate. The API shows it as `null`.
pub fn erased_external_ref(id: i64) -> String {
    format!(" erased {id}")
}

/// Erases a candidate's personal data, irreversibly, in one transaction:
/// `display_name`, `email` and `external_ref` (see [`erased_external_ref`]),
/// and the notes of all their encounters. Their open survey invitations
/// are revoked, and their queued invitation e-mails (address and link)
/// dropped. The encounters and their scores
/// stay, de-identified, so every report is the same before and after.
///
/// It runs as an [`EncounterWrite`]: one at a time with the organization's
/// other encounter writes (so none can add an encounter to the candidate
/// while it is being erased), and the encounters whose note it removes get
/// its `change_seq`, so the next incremental export carries them again,
/// without the note, and the copies downstream lose it too.
///
/// The answers stored for idempotency keys lose the candidate's personal
/// data too, as `redactor` (the API layer, which knows their schema) says.
///
/// The audit trail gets an `erase` event for the candidate and one for
/// each encounter that lost its note, naming the fields, not their values.
///
/// Erasing an erased candidate changes nothing and answers the same.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, candidate_id = id))]
pub async fn erase(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    redactor: &dyn AnswerRedactor,
) -> DomainResult<candidate::Model> {
    let write = EncounterWrite::begin(db, organization_id).await?;
    let current = candidates::get(write.txn(), organization_id, id).await?;
    if current.erased_at.is_some() {
        // Dropping the write rolls back its change_seq bump.
        return Ok(current);
    }
    let erased = erase_in(&write, actor, current, redactor).await?;
    write.commit().await?;
    Ok(erased)
}

/// Erases `current`, a candidate not yet erased, within `write` (see
/// [`erase`]), on behalf of `actor`; the caller commits.
pub(crate) async fn erase_in(
    write: &EncounterWrite,
    actor: &Actor,
    current: candidate::Model,
    redactor: &dyn AnswerRedactor,
) -> DomainResult<candidate::Model> {
    let (organization_id, id) = (current.organization_id, current.id);
    let now = write.now();
    let erasure = Event::candidate(id, AuditAction::Erase)
        .fields(["external_ref"])
        .field_if(current.display_name.is_some(), "display_name")
        .field_if(current.email.is_some(), "email")
        .fields(["erased_at"]);
    let mut active: candidate::ActiveModel = current.into();
    active.external_ref = Set(erased_external_ref(id));
    active.display_name = Set(None);
    active.email = Set(None);
    active.erased_at = Set(Some(now));
    active.updated_at = Set(now);
    let erased = active.update(write.txn()).await?;
    let remove_notes = Query::update()
        .table(encounter::Entity)
        .value(encounter::Column::Note, Option::<String>::None)
        .value(encounter::Column::ChangeSeq, write.seq())
        .value(encounter::Column::UpdatedAt, now)
        .and_where(encounter::Column::OrganizationId.eq(organization_id))
        .and_where(encounter::Column::CandidateId.eq(id))
        .and_where(encounter::Column::Note.is_not_null())
        .returning_col(encounter::Column::Id)
        .to_owned();
    let mut events = vec![erasure];
    for row in write.txn().query(&remove_notes).await? {
        let encounter_id = row.get(encounter::Column::Id)?;
        events.push(Event::encounter(encounter_id, id, AuditAction::Erase).fields(["note"]));
    }
    events[1..].sort_by_key(|event| event.resource_id);
    // Open survey links stop working, and no e-mail goes out to the address.
    for invitation_id in
        invitations::revoke_for_erasure(write.txn(), organization_id, id, now).await?
    {
        events.push(
            Event::survey_invitation(invitation_id, id, AuditAction::Revoke).fields(["revoked_at"]),
        );
    }
    audit::record_all(
        write.txn(),
        organization_id,
        now,
        events.into_iter().map(|event| (actor, event)),
    )
    .await?;
    idempotency::redact_candidate(write.txn(), organization_id, id, redactor).await?;
    // Downstream copies are told to erase too.
    let erased_event = NewEvent::candidate_erased(id, now);
    webhooks::events::record(write.txn(), organization_id, now, vec![erased_event]).await?;
    // No score changed, so the rollups are untouched.
    Ok(erased)
}
