//! The stored perception rollups (`perception_daily`, `touchpoint_reach`)
//! and [`EncounterWrite`], the transaction every change to encounters runs
//! in, which keeps the rollups equal to a recount of the encounters.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::{encounter, organization, perception_daily, perception_monthly, touchpoint_reach};
use roaring::RoaringTreemap;
use sea_orm::{
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    QueryTrait, Set,
};

use crate::db::store::{Executor, WriteTxn};
use crate::domain::{
    analytics::perception::{
        contribution, month_of, week_of, Contribution, Counters, EncounterPoint, RollupDelta,
    },
    DomainError, DomainResult,
};

/// The definition of the rollups. Raise it when what they hold changes:
/// every organization below it is rebuilt when the service starts.
pub const ROLLUP_VERSION: i32 = 1;

/// Rows per multi-row statement: far below both backends' bind limits.
const CHUNK: usize = 500;

/// A transaction that changes encounters. It opens as a write transaction on
/// SQLite and takes the organization's row lock on PostgreSQL, so writes to
/// one organization's encounters run one at a time: rollup
/// read-modify-writes never race, and `change_seq` values commit in order,
/// which the export's cursor relies on.
///
/// Call [`touch`](Self::touch) with a candidate's id before changing their
/// encounters; [`commit`](Self::commit) applies the difference between each
/// touched candidate's contribution before and after.
pub struct EncounterWrite {
    txn: WriteTxn,
    organization_id: i64,
    seq: i64,
    now: DateTime<Utc>,
    /// The touched candidates' encounters as they were when touched, plus,
    /// in [`Mode::Append`], the ones inserted since.
    points: HashMap<i64, Vec<EncounterPoint>>,
    before: HashMap<i64, Contribution>,
    mode: Mode,
}

/// How a write learns the touched candidates' encounters after its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// It reads them again at commit: any change is allowed.
    Reload,
    /// It only inserts, reporting each row to [`EncounterWrite::inserted`],
    /// so they are known without reading them again.
    Append,
}

impl EncounterWrite {
    /// A write that may change encounters in any way.
    pub async fn begin(db: &DatabaseConnection, organization_id: i64) -> DomainResult<Self> {
        let txn = WriteTxn::Pool(crate::domain::begin_write(db).await?);
        Self::open(txn, organization_id, Mode::Reload).await
    }

    /// A write that only inserts encounters, each reported to
    /// [`inserted`](Self::inserted), in a transaction already begun for
    /// writing (on the encounter writer's connection, or the pool's); it
    /// saves reading the touched candidates' encounters a second time.
    pub async fn append_in(txn: WriteTxn, organization_id: i64) -> DomainResult<Self> {
        Self::open(txn, organization_id, Mode::Append).await
    }

    async fn open(txn: WriteTxn, organization_id: i64, mode: Mode) -> DomainResult<Self> {
        let seq = next_change_seq(&txn, organization_id).await?;
        Ok(EncounterWrite {
            txn,
            organization_id,
            seq,
            now: crate::domain::now(),
            points: HashMap::new(),
            before: HashMap::new(),
            mode,
        })
    }

    /// Reports encounters this write inserted, for candidates it touched.
    pub fn inserted(&mut self, rows: &[encounter::Model]) {
        debug_assert_eq!(self.mode, Mode::Append, "inserted() needs append_in()");
        for row in rows {
            debug_assert!(
                self.before.contains_key(&row.candidate_id),
                "touch a candidate before inserting their encounters"
            );
            self.points
                .entry(row.candidate_id)
                .or_default()
                .push(EncounterPoint {
                    id: row.id,
                    touchpoint_id: row.touchpoint_id,
                    occurred_at: row.occurred_at,
                    score: row.score,
                });
        }
    }

    pub fn organization_id(&self) -> i64 {
        self.organization_id
    }

    /// The transaction, for the statements of the write path.
    pub fn txn(&self) -> &WriteTxn {
        &self.txn
    }

    /// The sea-orm transaction, for entity operations. Only a write on the
    /// pool has one; the encounter writer's own SQLite connection runs only
    /// the write path's statements.
    pub fn entities(&self) -> &DatabaseTransaction {
        self.txn
            .pool()
            .expect("entity operations run only in a write begun on the pool")
    }

    /// This transaction's position in the organization's change log.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// The time this transaction stamps on what it writes.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Records the current contribution of these candidates, once each.
    pub async fn touch(
        &mut self,
        candidate_ids: impl IntoIterator<Item = i64>,
    ) -> DomainResult<()> {
        let new: Vec<i64> = candidate_ids
            .into_iter()
            .filter(|id| !self.before.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut loaded = load_points(&self.txn, self.organization_id, &new).await?;
        for id in new {
            let points = loaded.remove(&id).unwrap_or_default();
            self.before.insert(id, contribution(&points));
            if self.mode == Mode::Append {
                self.points.insert(id, points);
            }
        }
        Ok(())
    }

    /// Brings the rollups up to date with the touched candidates and commits.
    pub async fn commit(self) -> DomainResult<()> {
        let after = match self.mode {
            Mode::Append => self
                .points
                .iter()
                .map(|(id, points)| (*id, contribution(points)))
                .collect(),
            Mode::Reload => {
                let ids: Vec<i64> = self.before.keys().copied().collect();
                load_contributions(&self.txn, self.organization_id, &ids).await?
            }
        };
        let empty = Contribution::default();
        let mut delta = RollupDelta::default();
        for (id, before) in &self.before {
            delta.record(*id, before, after.get(id).unwrap_or(&empty));
        }
        apply(&self.txn, self.organization_id, &delta, self.now).await?;
        self.txn.commit().await?;
        Ok(())
    }
}

/// Bumps the organization's change counter and returns the new value.
async fn next_change_seq(txn: &impl Executor, organization_id: i64) -> DomainResult<i64> {
    let bump = Query::update()
        .table(organization::Entity)
        .value(
            organization::Column::ChangeSeq,
            Expr::col(organization::Column::ChangeSeq).add(1),
        )
        .and_where(organization::Column::Id.eq(organization_id))
        .returning_col(organization::Column::ChangeSeq)
        .to_owned();
    let rows = txn.query(&bump).await?;
    let row = rows.first().ok_or(DomainError::NotFound {
        resource: "organization",
    })?;
    row.get(0)
}

/// The current contribution of each of these candidates that has encounters.
async fn load_contributions(
    db: &impl Executor,
    organization_id: i64,
    candidate_ids: &[i64],
) -> DomainResult<HashMap<i64, Contribution>> {
    Ok(load_points(db, organization_id, candidate_ids)
        .await?
        .into_iter()
        .map(|(id, points)| (id, contribution(&points)))
        .collect())
}

/// The encounters of each of these candidates that has any.
async fn load_points(
    db: &impl Executor,
    organization_id: i64,
    candidate_ids: &[i64],
) -> DomainResult<HashMap<i64, Vec<EncounterPoint>>> {
    let mut points: HashMap<i64, Vec<EncounterPoint>> = HashMap::new();
    for chunk in candidate_ids.chunks(CHUNK) {
        let select = encounter::Entity::find()
            .select_only()
            .columns([
                encounter::Column::CandidateId,
                encounter::Column::Id,
                encounter::Column::TouchpointId,
                encounter::Column::OccurredAt,
                encounter::Column::Score,
            ])
            .filter(encounter::Column::OrganizationId.eq(organization_id))
            .filter(encounter::Column::CandidateId.is_in(chunk.iter().copied()))
            .into_query();
        for row in db.query(&select).await? {
            points.entry(row.get(0)?).or_default().push(EncounterPoint {
                id: row.get(1)?,
                touchpoint_id: row.get(2)?,
                occurred_at: row.get(3)?,
                score: row.get(4)?,
            });
        }
    }
    Ok(points)
}

/// Writes a delta: counters are added in place (an upsert), reach bitmaps
/// are read, changed and written back (safe under the write's lock).
async fn apply(
    db: &impl Executor,
    organization_id: i64,
    delta: &RollupDelta,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let counters: Vec<_> = delta
        .counters
        .iter()
        .filter(|(_, change)| !change.is_zero())
        .collect();
    let daily: Vec<(Vec<sea_orm::Value>, &Counters)> = counters
        .iter()
        .map(|(key, change)| {
            let key = vec![
                organization_id.into(),
                key.touchpoint_id.into(),
                key.day.into(),
                week_of(key.day).into(),
                month_of(key.day).into(),
            ];
            (key, *change)
        })
        .collect();
    add_counters(
        db,
        "perception_daily",
        &["organization_id", "touchpoint_id", "day", "week", "month"],
        3,
        &daily,
        now,
    )
    .await?;

    // The monthly rows move by the sum of their days' changes.
    let mut by_month: BTreeMap<(i64, i32), Counters> = BTreeMap::new();
    for (key, change) in &counters {
        by_month
            .entry((key.touchpoint_id, month_of(key.day)))
            .or_default()
            .add(change, 1);
    }
    let monthly: Vec<(Vec<sea_orm::Value>, &Counters)> = by_month
        .iter()
        .map(|((touchpoint_id, month), change)| {
            let key = vec![
                organization_id.into(),
                (*touchpoint_id).into(),
                (*month).into(),
            ];
            (key, change)
        })
        .collect();
    add_counters(
        db,
        "perception_monthly",
        &["organization_id", "touchpoint_id", "month"],
        3,
        &monthly,
        now,
    )
    .await?;

    // Day and month bitmaps in one read and one write: each statement
    // costs a round trip to the database.
    let changes: Vec<_> = delta.reach.iter().collect();
    for chunk in changes.chunks(CHUNK) {
        let spans: BTreeSet<&str> = chunk.iter().map(|(k, _)| k.span.as_str()).collect();
        let periods: BTreeSet<i32> = chunk.iter().map(|(k, _)| k.period).collect();
        let touchpoints: BTreeSet<i64> = chunk.iter().map(|(k, _)| k.touchpoint_id).collect();
        // The filter is a cross product and may match rows of no key here;
        // the lookup below only takes the keys of the chunk.
        let select = touchpoint_reach::Entity::find()
            .select_only()
            .columns([
                touchpoint_reach::Column::Span,
                touchpoint_reach::Column::Period,
                touchpoint_reach::Column::TouchpointId,
                touchpoint_reach::Column::Candidates,
            ])
            .filter(touchpoint_reach::Column::OrganizationId.eq(organization_id))
            .filter(touchpoint_reach::Column::Span.is_in(spans))
            .filter(touchpoint_reach::Column::Period.is_in(periods))
            .filter(touchpoint_reach::Column::TouchpointId.is_in(touchpoints))
            .into_query();
        let mut stored: HashMap<(String, i32, i64), Vec<u8>> = HashMap::new();
        for row in db.query(&select).await? {
            stored.insert((row.get(0)?, row.get(1)?, row.get(2)?), row.get(3)?);
        }
        let mut rows = Vec::with_capacity(chunk.len());
        for (key, members) in chunk {
            let stored_key = (key.span.as_str().to_owned(), key.period, key.touchpoint_id);
            let mut bitmap = match stored.get(&stored_key) {
                Some(bytes) => decode_bitmap(bytes)?,
                None => RoaringTreemap::new(),
            };
            for (candidate_id, present) in members.iter() {
                let id = *candidate_id as u64;
                if *present {
                    bitmap.insert(id);
                } else {
                    bitmap.remove(id);
                }
            }
            rows.push(touchpoint_reach::ActiveModel {
                organization_id: Set(organization_id),
                touchpoint_id: Set(key.touchpoint_id),
                span: Set(key.span.as_str().to_owned()),
                period: Set(key.period),
                candidates: Set(encode_bitmap(&bitmap)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            });
        }
        let upsert = touchpoint_reach::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    touchpoint_reach::Column::OrganizationId,
                    touchpoint_reach::Column::Span,
                    touchpoint_reach::Column::Period,
                    touchpoint_reach::Column::TouchpointId,
                ])
                .update_columns([
                    touchpoint_reach::Column::Candidates,
                    touchpoint_reach::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .into_query();
        db.execute(&upsert).await?;
    }
    Ok(())
}

/// The counter columns shared by `perception_daily` and `perception_monthly`.
const COUNTER_COLUMNS: [&str; 8] = [
    "encounters",
    "scored",
    "score_sum",
    "promoters",
    "passives",
    "detractors",
    "attributed_sum",
    "attributions",
];

/// Adds changes to a counters table (`perception_daily` or
/// `perception_monthly`): each row is its leading `columns` values and a
/// change; the first `unique` columns are the row's unique key, and an
/// existing row gets the change added (an upsert).
async fn add_counters(
    db: &impl Executor,
    table: &str,
    columns: &[&str],
    unique: usize,
    rows: &[(Vec<sea_orm::Value>, &Counters)],
    now: DateTime<Utc>,
) -> DomainResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(Alias::new(table)).columns(
            columns
                .iter()
                .chain(COUNTER_COLUMNS.iter())
                .chain(["created_at", "updated_at"].iter())
                .map(|column| Alias::new(*column)),
        );
        for (leading, c) in chunk {
            let counters: [sea_orm::Value; 8] = [
                c.encounters.into(),
                c.scored.into(),
                c.score_sum.into(),
                c.promoters.into(),
                c.passives.into(),
                c.detractors.into(),
                c.attributed_sum.into(),
                c.attributions.into(),
            ];
            let values = leading
                .iter()
                .cloned()
                .chain(counters)
                .chain([now.into(), now.into()])
                .map(Expr::val);
            insert
                .values(values)
                .map_err(|err| DomainError::Database(sea_orm::DbErr::Custom(err.to_string())))?;
        }
        let mut upsert = OnConflict::columns(columns[..unique].iter().map(|c| Alias::new(*c)));
        for column in COUNTER_COLUMNS {
            upsert.value(
                Alias::new(column),
                Expr::col((Alias::new(table), Alias::new(column)))
                    .add(Expr::col((excluded(), Alias::new(column)))),
            );
        }
        upsert.update_column(Alias::new("updated_at"));
        insert.on_conflict(upsert);
        db.execute(&insert).await?;
    }
    Ok(())
}

/// The row an upsert proposed (`excluded` in both SQLite and PostgreSQL).
fn excluded() -> Alias {
    Alias::new("excluded")
}

pub fn decode_bitmap(bytes: &[u8]) -> DomainResult<RoaringTreemap> {
    RoaringTreemap::deserialize_from(bytes).map_err(|err| {
        DomainError::Database(sea_orm::DbErr::Custom(format!(
            "unreadable reach bitmap: {err}"
        )))
    })
}

fn encode_bitmap(bitmap: &RoaringTreemap) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    bitmap
        .serialize_into(&mut bytes)
        .expect("writing to a Vec cannot fail");
    bytes
}

/// Rebuilds one organization's rollups from its encounters, and marks them
/// as built with [`ROLLUP_VERSION`].
pub async fn rebuild(db: &DatabaseConnection, organization_id: i64) -> DomainResult<()> {
    let write = EncounterWrite::begin(db, organization_id).await?;
    perception_daily::Entity::delete_many()
        .filter(perception_daily::Column::OrganizationId.eq(organization_id))
        .exec(write.entities())
        .await?;
    perception_monthly::Entity::delete_many()
        .filter(perception_monthly::Column::OrganizationId.eq(organization_id))
        .exec(write.entities())
        .await?;
    touchpoint_reach::Entity::delete_many()
        .filter(touchpoint_reach::Column::OrganizationId.eq(organization_id))
        .exec(write.entities())
        .await?;
    let candidate_ids: Vec<i64> = encounter::Entity::find()
        .select_only()
        .column(encounter::Column::CandidateId)
        .distinct()
        .filter(encounter::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .all(write.entities())
        .await?;
    // With the rollups emptied, every candidate starts from nothing. A
    // chunk of candidates at a time keeps memory flat however many there are.
    let empty = Contribution::default();
    for chunk in candidate_ids.chunks(REBUILD_CHUNK) {
        let after = load_contributions(write.txn(), organization_id, chunk).await?;
        let mut delta = RollupDelta::default();
        for (id, contribution) in &after {
            delta.record(*id, &empty, contribution);
        }
        apply(write.txn(), organization_id, &delta, write.now()).await?;
    }
    organization::Entity::update_many()
        .col_expr(
            organization::Column::RollupVersion,
            Expr::value(ROLLUP_VERSION),
        )
        .filter(organization::Column::Id.eq(organization_id))
        .exec(write.entities())
        .await?;
    // Nothing was touched through `touch`: commit applies no further delta.
    write.commit().await
}

/// Candidates per step of a rebuild.
const REBUILD_CHUNK: usize = 1_000;

/// Rebuilds the rollups of every organization built with an older version.
pub async fn rebuild_outdated(db: &DatabaseConnection) -> DomainResult<()> {
    let outdated: Vec<(i64, String)> = organization::Entity::find()
        .select_only()
        .columns([organization::Column::Id, organization::Column::Slug])
        .filter(organization::Column::RollupVersion.lt(ROLLUP_VERSION))
        .into_tuple()
        .all(db)
        .await?;
    for (id, slug) in outdated {
        tracing::info!(organization = %slug, "rebuilding perception rollups");
        rebuild(db, id).await?;
    }
    Ok(())
}
