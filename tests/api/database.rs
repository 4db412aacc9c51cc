//! Connection settings reach the database.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use touchpoint_tracker::{config::DatabaseSettings, db};

use super::helpers::fresh_database;

#[tokio::test]
async fn statement_timeout_cancels_long_statements_on_postgres() {
    let database = fresh_database().await;
    if !database.url.starts_with("postgres") {
        eprintln!("not run: SQLite has no statement timeout");
        return;
    }
    let mut settings = DatabaseSettings::new(database.url.clone());
    settings.statement_timeout = Some(Duration::from_millis(300));
    let conn = db::connect(&settings).await.unwrap();

    let backend = conn.get_database_backend();
    let slow = conn
        .execute_raw(Statement::from_string(backend, "SELECT pg_sleep(2)"))
        .await;

    let err = slow.expect_err("the statement is cancelled");
    assert!(
        db::is_unavailable(&err),
        "a cancelled statement is a 503: {err}"
    );
    let quick = conn
        .execute_raw(Statement::from_string(backend, "SELECT 1"))
        .await;
    assert!(quick.is_ok(), "the connection stays usable");
}

#[tokio::test]
async fn sqlite_directories_are_created_on_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/dir/t.db", dir.path().display());

    let conn = db::connect(&DatabaseSettings::new(url)).await.unwrap();
    touchpoint_tracker::startup::migrate(&conn).await.unwrap();

    assert!(dir.path().join("nested/dir/t.db").exists());
}

/// The migration to tenant foreign keys (which rebuilds both tables on
/// SQLite) keeps every encounter and audit event with its id, and the id
/// counters: an id once given, even to a row since deleted, is not given
/// again. Afterwards the database itself refuses an encounter whose
/// candidate or touchpoint belongs to another organization, and the
/// deletion of a candidate or touchpoint that has encounters.
#[tokio::test]
async fn upgrading_to_tenant_foreign_keys_keeps_rows_and_ids_and_enforces_tenancy() {
    use chrono::{Duration as Days, Utc};
    use entity::enums::{Role, Source};
    use migration::MigratorTrait;
    use touchpoint_tracker::domain::{
        access::keys,
        encounters::ingest::{self, CandidateRef, EncounterInput, TouchpointRef},
        privacy::audit::{Actor, KeyActor},
    };
    const SETUP: Actor = Actor::System("test setup");

    let database = fresh_database().await;
    let conn = db::connect(&DatabaseSettings::new(database.url.clone()))
        .await
        .unwrap();
    let before = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261204_000002_tenant_foreign_keys")
        .expect("the migration is listed");
    migration::Migrator::up(&conn, Some(before as u32))
        .await
        .unwrap();

    let mut touchpoints = Vec::new();
    let mut people = Vec::new();
    for name in ["acme", "globex"] {
        let (org, touchpoint, candidate) = organization_with_one_of_each(&conn, name).await;
        touchpoints.push((org, touchpoint));
        people.push(candidate);
    }
    let (acme, acme_touchpoint) = touchpoints[0];
    let key = keys::create(&conn, &SETUP, acme, Role::Recruiter, "import", None)
        .await
        .unwrap();
    let recorder = KeyActor {
        key_id: key.key.id,
        key_name: "import".into(),
    };
    let inputs: Vec<EncounterInput> = (0..30)
        .map(|n| EncounterInput {
            candidate: if n % 2 == 0 {
                CandidateRef::Id(people[0])
            } else {
                CandidateRef::ExternalRef(format!("NEW-{n}"))
            },
            touchpoint: TouchpointRef::Id(acme_touchpoint),
            occurred_at: Utc::now() - Days::days(n),
            source: Source::CandidateSurvey,
            score: (n % 3 != 0).then_some((n % 11) as i32),
            note: (n % 4 == 0).then(|| format!("note {n}")),
        })
        .collect();
    // One request each, as a release before audit runs wrote them: a run
    // (a request's consecutive creations) needs the column this schema
    // does not have yet.
    for input in inputs {
        ingest::record_all(&conn, acme, &recorder, vec![input], None)
            .await
            .unwrap();
    }
    let backend = conn.get_database_backend();
    let run = |sql: &str| Statement::from_string(backend, sql.to_owned());
    conn.execute_raw(run(
        "DELETE FROM encounters WHERE id = (SELECT MAX(id) FROM encounters)",
    ))
    .await
    .unwrap();
    let snapshot = |conn: &sea_orm::DatabaseConnection| {
        let conn = conn.clone();
        async move {
            let rows = conn
                .query_all_raw(run(
                    "SELECT 'e' AS t, id, candidate_id AS a, COALESCE(score, -1) AS b, COALESCE(note, '') AS c \
                     FROM encounters UNION ALL \
                     SELECT 'a', id, resource_id, COALESCE(subject_candidate_id, -1), changed_fields \
                     FROM audit_events ORDER BY 1, 2",
                ))
                .await
                .unwrap();
            rows.iter()
                .map(|row| {
                    (
                        row.try_get::<String>("", "t").unwrap(),
                        row.try_get::<i64>("", "id").unwrap(),
                        row.try_get::<i64>("", "a").unwrap(),
                        row.try_get::<i64>("", "b").unwrap(),
                        row.try_get::<String>("", "c").unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let kept = snapshot(&conn).await;
    assert_eq!(kept.iter().filter(|row| row.0 == "e").count(), 29);
    let deleted_id = kept
        .iter()
        .filter(|row| row.0 == "e")
        .map(|row| row.1)
        .max()
        .unwrap()
        + 1;

    touchpoint_tracker::startup::migrate(&conn).await.unwrap();
    assert_eq!(snapshot(&conn).await, kept, "every row kept, with its id");

    let insert = |organization: i64, candidate: i64, touchpoint: i64| {
        format!(
            "INSERT INTO encounters (organization_id, candidate_id, touchpoint_id, occurred_at, \
             source, recorded_by_key_id, created_at, updated_at, change_seq) \
             VALUES ({organization}, {candidate}, {touchpoint}, '2026-01-01T00:00:00+00:00', \
             'other', {}, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 0)",
            key.key.id
        )
    };
    let (globex, globex_touchpoint) = touchpoints[1];
    for (what, sql) in [
        (
            "another organization's candidate",
            insert(acme, people[1], acme_touchpoint),
        ),
        (
            "another organization's touchpoint",
            insert(acme, people[0], globex_touchpoint),
        ),
        (
            "a candidate of no organization",
            insert(globex + 1, people[0], acme_touchpoint),
        ),
    ] {
        let refused = conn.execute_raw(run(&sql)).await;
        assert!(refused.is_err(), "the database refuses {what}");
    }
    conn.execute_raw(run(&insert(acme, people[0], acme_touchpoint)))
        .await
        .unwrap();
    let newest = conn
        .query_one_raw(run("SELECT MAX(id) AS id FROM encounters"))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "id")
        .unwrap();
    // PostgreSQL's sequence also spent ids on the refused rows.
    assert!(newest > deleted_id, "a deleted row's id is not given again");
    if backend == sea_orm::DbBackend::Sqlite {
        assert_eq!(newest, deleted_id + 1);
    }

    // Updates are held to the same rule, and a candidate or touchpoint that
    // has encounters cannot be deleted (on PostgreSQL these are triggers
    // since m20261205_000001, foreign keys before and on SQLite).
    for (what, sql) in [
        (
            "an encounter moved to another organization's touchpoint",
            format!(
                "UPDATE encounters SET touchpoint_id = {globex_touchpoint} WHERE id = {newest}"
            ),
        ),
        (
            "an encounter moved to another organization's candidate",
            format!(
                "UPDATE encounters SET candidate_id = {} WHERE id = {newest}",
                people[1]
            ),
        ),
        (
            "deleting a candidate with encounters",
            format!("DELETE FROM candidates WHERE id = {}", people[0]),
        ),
        (
            "deleting a touchpoint with encounters",
            format!("DELETE FROM touchpoints WHERE id = {acme_touchpoint}"),
        ),
    ] {
        let refused = conn.execute_raw(run(&sql)).await;
        assert!(refused.is_err(), "the database refuses {what}");
    }
    let allowed = [
        format!("UPDATE encounters SET score = 3 WHERE id = {newest}"),
        format!("DELETE FROM candidates WHERE id = {}", people[1]),
        format!("DELETE FROM touchpoints WHERE id = {globex_touchpoint}"),
    ];
    for sql in allowed {
        let done = conn.execute_raw(run(&sql)).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
    }
}

/// A candidate cannot be deleted out from under an encounter being
/// inserted: the delete waits for the inserting transaction and is then
/// refused. On PostgreSQL the reference check is a statement-level trigger
/// (`m20261205_000001`) and this holds only because it locks the candidate
/// `FOR KEY SHARE`, as the foreign key it replaced did; on SQLite the
/// write lock orders the two and the foreign key refuses.
#[tokio::test]
async fn deleting_a_candidate_waits_for_an_insert_naming_it_and_is_refused() {
    use sea_orm::TransactionTrait;

    let database = fresh_database().await;
    let conn = db::connect(&DatabaseSettings::new(database.url.clone()))
        .await
        .unwrap();
    touchpoint_tracker::startup::migrate(&conn).await.unwrap();
    let (org, touchpoint, candidate) = organization_with_one_of_each(&conn, "acme").await;
    let backend = conn.get_database_backend();
    let run = |sql: String| Statement::from_string(backend, sql);

    let inserting = conn.begin().await.unwrap();
    inserting
        .execute_raw(run(format!(
            "INSERT INTO encounters (organization_id, candidate_id, touchpoint_id, occurred_at, \
             source, recorded_by_key_id, created_at, updated_at, change_seq) \
             VALUES ({}, {}, {}, '2026-01-01T00:00:00+00:00', 'other', 1, \
             '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 0)",
            org, candidate, touchpoint
        )))
        .await
        .unwrap();
    let deleting = tokio::spawn({
        let conn = conn.clone();
        let delete = run(format!("DELETE FROM candidates WHERE id = {candidate}"));
        async move { conn.execute_raw(delete).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !deleting.is_finished(),
        "the delete waits for the transaction inserting an encounter that names the candidate"
    );
    inserting.commit().await.unwrap();
    let deleted = deleting.await.unwrap();
    assert!(
        deleted.is_err(),
        "the delete is refused once the insert committed"
    );

    let count = |table: &str| {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let conn = conn.clone();
        async move {
            conn.query_one_raw(Statement::from_string(backend, sql))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
        }
    };
    assert_eq!(count("candidates").await, 1, "the candidate is kept");
    assert_eq!(count("encounters").await, 1, "and so is its encounter");
}

/// A fresh PostgreSQL database, migrated, and a connection to it; `None`
/// on SQLite, saying on stderr why the test is not run there.
async fn fresh_postgres(
    not_run: &str,
) -> Option<(super::helpers::TestDatabase, sea_orm::DatabaseConnection)> {
    let database = fresh_database().await;
    if !database.url.starts_with("postgres") {
        eprintln!("not run: {not_run}");
        return None;
    }
    let conn = db::connect(&DatabaseSettings::new(database.url.clone()))
        .await
        .unwrap();
    touchpoint_tracker::startup::migrate(&conn).await.unwrap();
    Some((database, conn))
}

/// A new organization with a touchpoint and a candidate, made through the
/// domain as the service makes them: their ids.
async fn organization_with_one_of_each(
    conn: &sea_orm::DatabaseConnection,
    name: &str,
) -> (i64, i64, i64) {
    use entity::enums::{Channel, Kind, Stage};
    use touchpoint_tracker::domain::{candidates, catalog, organizations, privacy::audit::Actor};
    const SETUP: Actor = Actor::System("test setup");
    let org = organizations::create(conn, &SETUP, name, name)
        .await
        .unwrap();
    let touchpoint = catalog::create(
        conn,
        &SETUP,
        org.id,
        catalog::NewTouchpoint {
            name: "Careers site".into(),
            kind: Kind::EmployerCreated,
            channel: Channel::CareersSite,
            stage: Stage::Awareness,
            description: None,
        },
    )
    .await
    .unwrap();
    let candidate = candidates::create(
        conn,
        &SETUP,
        org.id,
        candidates::NewCandidate {
            external_ref: "ATS-1".into(),
            display_name: None,
            email: None,
            stage: Stage::Awareness,
        },
    )
    .await
    .unwrap();
    (org.id, touchpoint.id, candidate.id)
}

/// On PostgreSQL a candidate created by reference may be created by
/// another request between the batch's lookup and its insert (creating a
/// candidate does not take the encounter write lock): the batch then uses
/// that row, and records no creation of its own. (On SQLite the write lock
/// orders the two.)
#[tokio::test]
async fn a_batch_uses_a_candidate_created_under_it_by_reference() {
    use entity::enums::{Source, Stage};
    use touchpoint_tracker::db::store::WriterConnection;
    use touchpoint_tracker::domain::{
        candidates,
        encounters::{
            ingest::{self, CandidateRef, EncounterInput, Requests, TouchpointRef},
            write::EncounterAppend,
        },
        privacy::audit::{Actor, KeyActor},
    };
    let Some((_database, conn)) = fresh_postgres("on SQLite the write lock orders the two").await
    else {
        return;
    };
    let (org, touchpoint, known) = organization_with_one_of_each(&conn, "acme").await;
    let input = |candidate| EncounterInput {
        candidate,
        touchpoint: TouchpointRef::Id(touchpoint),
        occurred_at: chrono::Utc::now(),
        source: Source::CandidateSurvey,
        score: Some(7),
        note: None,
    };
    let recorder = KeyActor {
        key_id: 1,
        key_name: "import".into(),
    };
    let writer = WriterConnection::Pool(conn.clone());
    let write = EncounterAppend::begin_in(writer.begin_write().await.unwrap(), org)
        .await
        .unwrap();
    let inputs = vec![
        input(CandidateRef::ExternalRef("SURVEY-RACE".into())),
        input(CandidateRef::ExternalRef("SURVEY-NEW".into())),
        input(CandidateRef::Id(known)),
    ];
    let resolved: Vec<_> = ingest::resolve(write.txn(), org, inputs)
        .await
        .unwrap()
        .into_iter()
        .map(|item| (&recorder, item.unwrap()))
        .collect();
    // Another request creates the first reference and commits.
    let raced = candidates::create(
        &conn,
        &Actor::System("another request"),
        org,
        candidates::NewCandidate {
            external_ref: "SURVEY-RACE".into(),
            display_name: None,
            email: None,
            stage: Stage::Awareness,
        },
    )
    .await
    .unwrap();
    let recorded = ingest::insert(&write, resolved, Requests::One)
        .await
        .unwrap();
    write.commit().await.unwrap();

    assert_eq!(recorded.candidates_created, 1, "only SURVEY-NEW");
    let owners: Vec<i64> = recorded.encounters.iter().map(|e| e.candidate_id).collect();
    assert_eq!(owners[0], raced.id);
    assert!(owners[1] != raced.id && owners[1] != known);
    assert_eq!(owners[2], known);
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM audit_events WHERE resource_type = 'candidate' \
             AND action = 'create' AND actor_name = 'import'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap(),
        1,
        "the batch created one"
    );
}

/// On PostgreSQL an insert of many rows goes in with `COPY` (see
/// `db::postgres_txn`), each value in its column's binary form; a value it
/// does not send that way (bytes) sends the rows as `INSERT`s. Rows of
/// both kinds are stored as given, and their ids come back in insertion
/// order, each naming its own row. (Which way each went is not observed
/// here: the audit rows are the kind `COPY` takes, the bitmaps the kind it
/// leaves to `INSERT`.)
#[tokio::test]
async fn many_rows_of_any_column_types_go_in_and_their_ids_name_them() {
    use entity::{audit_event, touchpoint_reach};
    use sea_orm::EntityTrait;
    use touchpoint_tracker::db::store::{Executor, InsertRows, WriterConnection};
    let Some((_database, conn)) = fresh_postgres("COPY is PostgreSQL's").await else {
        return;
    };
    let (org, touchpoint, _) = organization_with_one_of_each(&conn, "acme").await;
    let now = touchpoint_tracker::domain::now();
    let writer = WriterConnection::Pool(conn.clone());
    let numbers: Vec<i64> = (0..100).map(|n| 1_000 + n * 7).collect();
    let insert = |rows: InsertRows| {
        let writer = writer.clone();
        async move {
            let txn = writer.begin_write().await.unwrap();
            let ids = txn.insert_rows(&rows, true).await.unwrap();
            txn.commit().await.unwrap();
            assert_eq!(ids.len(), 100);
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "in insertion order");
            ids
        }
    };

    // Every value has its column's binary form: `COPY`.
    use audit_event::Column as A;
    let mut rows = InsertRows::new(
        audit_event::Entity,
        [
            A::OrganizationId,
            A::OccurredAt,
            A::ActorKeyId,
            A::ActorName,
            A::ResourceType,
            A::ResourceId,
            A::Action,
            A::ChangedFields,
            A::SubjectCandidateId,
        ],
    );
    for n in &numbers {
        let subject = (n % 2 == 0).then_some(*n);
        rows.push([
            org.into(),
            now.into(),
            None::<i64>.into(),
            format!("tab\there {n}").into(),
            "encounter".into(),
            (*n).into(),
            "create".into(),
            "score,note".into(),
            subject.into(),
        ]);
    }
    for (id, n) in insert(rows).await.iter().zip(&numbers) {
        let stored = audit_event::Entity::find_by_id(*id)
            .one(&conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.resource_id, *n);
        assert_eq!(stored.actor_name, format!("tab\there {n}"));
        assert_eq!(stored.occurred_at, now);
        assert_eq!(stored.actor_key_id, None);
        assert_eq!(stored.subject_candidate_id, (n % 2 == 0).then_some(*n));
    }

    // Bytes are not sent that way: `INSERT`s.
    use touchpoint_reach::Column as R;
    let mut rows = InsertRows::new(
        touchpoint_reach::Entity,
        [
            R::OrganizationId,
            R::TouchpointId,
            R::Span,
            R::Period,
            R::Candidates,
            R::CreatedAt,
            R::UpdatedAt,
        ],
    );
    for n in &numbers {
        let bitmap = n.to_be_bytes().to_vec();
        rows.push([
            org.into(),
            touchpoint.into(),
            "day".into(),
            (*n as i32).into(),
            bitmap.into(),
            now.into(),
            now.into(),
        ]);
    }
    for (id, n) in insert(rows).await.iter().zip(&numbers) {
        let stored = touchpoint_reach::Entity::find_by_id(*id)
            .one(&conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.period, *n as i32);
        assert_eq!(stored.candidates, n.to_be_bytes().to_vec());
    }
}
