//! The two units of work every change to encounters runs in. Both lock the
//! organization's writes (its row lock on PostgreSQL, the single write lock
//! on SQLite), so they run one at a time per organization: rollup
//! read-modify-writes never race, and `change_seq` values commit in order,
//! which the export's cursor relies on. Both bring the rollups up to date
//! with the candidates they touched before they commit.
//!
//! - [`EncounterWrite`]: may change encounters in any way (update, delete,
//!   erase, rebuild); on the pool, so its transaction also takes entity
//!   operations.
//! - [`EncounterAppend`]: only inserts encounters (create, batch, import),
//!   on the encounter writer's connection (see `db::store`), which runs
//!   statements but no entity operations. Each insert is reported to it, so
//!   it learns the candidates' encounters without reading them again.
//!
//! Call `touch` with a candidate's id before changing their encounters.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::{encounter, organization};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ColumnTrait, DatabaseConnection, DatabaseTransaction,
};

use crate::db::store::{Executor, WriteTxn};
use crate::domain::{
    analytics::{
        perception::{contribution, Contribution, EncounterPoint, RollupDelta},
        rollups,
    },
    DomainError, DomainResult,
};

/// What both units hold: the transaction, the organization, this write's
/// position in its change log, the time it stamps, and each touched
/// candidate's contribution to the rollups before the write. Both units
/// dereference to it for the accessors below.
pub struct Unit<T> {
    txn: T,
    organization_id: i64,
    seq: i64,
    now: DateTime<Utc>,
    before: HashMap<i64, Contribution>,
}

impl<T> Unit<T> {
    pub fn organization_id(&self) -> i64 {
        self.organization_id
    }

    /// This transaction's position in the organization's change log.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// The time this transaction stamps on what it writes.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

impl<T: Executor> Unit<T> {
    async fn open(txn: T, organization_id: i64) -> DomainResult<Self> {
        let seq = next_change_seq(&txn, organization_id).await?;
        Ok(Unit {
            txn,
            organization_id,
            seq,
            now: crate::domain::now(),
            before: HashMap::new(),
        })
    }

    /// The touched candidates not yet seen, read with their encounters.
    async fn load_new(
        &mut self,
        candidate_ids: impl IntoIterator<Item = i64>,
    ) -> DomainResult<HashMap<i64, Vec<EncounterPoint>>> {
        let new: Vec<i64> = candidate_ids
            .into_iter()
            .filter(|id| !self.before.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut loaded = rollups::load_points(&self.txn, self.organization_id, &new).await?;
        for &id in &new {
            let points = loaded.entry(id).or_default();
            self.before.insert(id, contribution(points));
        }
        Ok(loaded)
    }

    /// Applies the difference between each touched candidate's contribution
    /// before and `after` (a missing candidate contributes nothing).
    async fn apply(&self, after: &HashMap<i64, Contribution>) -> DomainResult<()> {
        let empty = Contribution::default();
        let mut delta = RollupDelta::default();
        for (id, before) in &self.before {
            delta.record(*id, before, after.get(id).unwrap_or(&empty));
        }
        rollups::apply(&self.txn, self.organization_id, &delta, self.now).await
    }
}

/// A transaction that may change encounters in any way, on the pool.
pub struct EncounterWrite {
    unit: Unit<DatabaseTransaction>,
}

impl std::ops::Deref for EncounterWrite {
    type Target = Unit<DatabaseTransaction>;

    fn deref(&self) -> &Self::Target {
        &self.unit
    }
}

impl EncounterWrite {
    pub async fn begin(db: &DatabaseConnection, organization_id: i64) -> DomainResult<Self> {
        let txn = crate::db::begin_write(db).await?;
        Ok(EncounterWrite {
            unit: Unit::open(txn, organization_id).await?,
        })
    }

    /// The transaction, for statements and entity operations.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.unit.txn
    }

    /// Records the current contribution of these candidates, once each.
    pub async fn touch(
        &mut self,
        candidate_ids: impl IntoIterator<Item = i64>,
    ) -> DomainResult<()> {
        self.unit.load_new(candidate_ids).await?;
        Ok(())
    }

    /// Reads the touched candidates' encounters again, brings the rollups
    /// up to date with them, and commits.
    pub async fn commit(self) -> DomainResult<()> {
        let unit = &self.unit;
        let ids: Vec<i64> = unit.before.keys().copied().collect();
        let after = rollups::load_contributions(&unit.txn, unit.organization_id, &ids).await?;
        unit.apply(&after).await?;
        Ok(self.unit.txn.commit().await?)
    }
}

/// A transaction that only inserts encounters, each reported to
/// [`inserted`](Self::inserted), on the encounter writer's connection or
/// the pool's.
pub struct EncounterAppend {
    unit: Unit<WriteTxn>,
    /// The touched candidates' encounters: as they were when touched, plus
    /// the ones inserted since.
    points: HashMap<i64, Vec<EncounterPoint>>,
}

impl std::ops::Deref for EncounterAppend {
    type Target = Unit<WriteTxn>;

    fn deref(&self) -> &Self::Target {
        &self.unit
    }
}

impl EncounterAppend {
    /// Opens the unit in `txn`, a transaction already begun for writing.
    pub async fn begin_in(txn: WriteTxn, organization_id: i64) -> DomainResult<Self> {
        Ok(EncounterAppend {
            unit: Unit::open(txn, organization_id).await?,
            points: HashMap::new(),
        })
    }

    /// The transaction, for the statements of the append path.
    pub fn txn(&self) -> &WriteTxn {
        &self.unit.txn
    }

    /// Records the current contribution of these candidates, once each.
    pub async fn touch(
        &mut self,
        candidate_ids: impl IntoIterator<Item = i64>,
    ) -> DomainResult<()> {
        let loaded = self.unit.load_new(candidate_ids).await?;
        self.points.extend(loaded);
        Ok(())
    }

    /// Reports encounters this write inserted, for candidates it touched.
    pub fn inserted(&mut self, rows: &[encounter::Model]) {
        for row in rows {
            debug_assert!(
                self.unit.before.contains_key(&row.candidate_id),
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
                    source: row.source,
                });
        }
    }

    /// Brings the rollups up to date with the inserted encounters and
    /// commits.
    pub async fn commit(self) -> DomainResult<()> {
        let after = self
            .points
            .iter()
            .map(|(id, points)| (*id, contribution(points)))
            .collect();
        self.unit.apply(&after).await?;
        Ok(self.unit.txn.commit().await?)
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
    Ok(row.get(organization::Column::ChangeSeq)?)
}
