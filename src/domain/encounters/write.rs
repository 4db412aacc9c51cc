//! The two units of work every change to encounters runs in. Both lock the
//! organization's writes (its row lock on PostgreSQL, the single write lock
//! on SQLite), so they run one at a time per organization and `change_seq`
//! values commit in order, which the export's cursor and the rollups'
//! high-water mark rely on (see `analytics::projection`).
//!
//! - [`EncounterAppend`]: only inserts encounters (create, batch, import,
//!   a survey answer), on the encounter writer's connection (see
//!   `db::store`) or the pool's. It writes nothing derived: the projector
//!   applies the new encounters to the rollups after it commits.
//! - [`EncounterWrite`]: may change encounters in any way (update, delete,
//!   erase, rebuild); on the pool, so its transaction also takes entity
//!   operations. It first projects everything pending, under the
//!   projection lock, and brings the rollups up to date with the
//!   candidates it touched before it commits, moving the mark past itself.
//!   Call `touch` with a candidate's id before changing their encounters.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::organization;
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ColumnTrait, DatabaseConnection, DatabaseTransaction,
};

use crate::db::store::{Executor, WriteTxn};
use crate::domain::{
    analytics::{
        perception::{Contribution, RollupDelta},
        projection, rollups,
    },
    DomainError, DomainResult,
};

/// What both units hold: the transaction, the organization, this write's
/// position in its change log and the time it stamps. Both units
/// dereference to it for the accessors below.
pub struct Unit<T> {
    txn: T,
    organization_id: i64,
    seq: i64,
    now: DateTime<Utc>,
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
        })
    }
}

/// A transaction that may change encounters in any way, on the pool.
pub struct EncounterWrite {
    unit: Unit<DatabaseTransaction>,
    /// Each touched candidate's contribution to the rollups before the write.
    before: HashMap<i64, Contribution>,
}

impl std::ops::Deref for EncounterWrite {
    type Target = Unit<DatabaseTransaction>;

    fn deref(&self) -> &Self::Target {
        &self.unit
    }
}

impl EncounterWrite {
    /// Begins the write: the organization's projection lock, then its write
    /// lock, then everything recorded before it projected, so the rollups
    /// hold every encounter it may change. The projection lock comes first,
    /// so a write never waits for it while holding the organization's row,
    /// which every append and each projection step's foreign-key checks
    /// need: in the other order, concurrent retention runs on PostgreSQL
    /// once waited out the statement timeout.
    pub async fn begin(db: &DatabaseConnection, organization_id: i64) -> DomainResult<Self> {
        let txn = crate::db::begin_write(db).await?;
        let postgres = crate::db::is_postgres(&txn);
        projection::lock(&txn, postgres, organization_id, true).await?;
        let unit = Unit::open(txn, organization_id).await?;
        projection::project(&unit.txn, organization_id, unit.now).await?;
        Ok(EncounterWrite {
            unit,
            before: HashMap::new(),
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
        let new: Vec<i64> = candidate_ids
            .into_iter()
            .filter(|id| !self.before.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut loaded =
            rollups::load_contributions(&self.unit.txn, self.unit.organization_id, &new).await?;
        for id in new {
            let contribution = loaded.remove(&id).unwrap_or_default();
            self.before.insert(id, contribution);
        }
        Ok(())
    }

    /// Reads the touched candidates' encounters again, brings the rollups
    /// up to date with them, moves the mark past this write, and commits.
    pub async fn commit(self) -> DomainResult<()> {
        let unit = &self.unit;
        let ids: Vec<i64> = self.before.keys().copied().collect();
        let after = rollups::load_contributions(&unit.txn, unit.organization_id, &ids).await?;
        let empty = Contribution::default();
        let mut delta = RollupDelta::default();
        for (id, before) in &self.before {
            delta.record(*id, before, after.get(id).unwrap_or(&empty));
        }
        rollups::apply(&unit.txn, unit.organization_id, &delta, unit.now).await?;
        projection::set_mark(&unit.txn, unit.organization_id, unit.seq).await?;
        Ok(self.unit.txn.commit().await?)
    }
}

/// A transaction that only inserts encounters, on the encounter writer's
/// connection or the pool's. The rollups are the projector's.
pub struct EncounterAppend {
    unit: Unit<WriteTxn>,
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
        })
    }

    /// The transaction, for the statements of the append path.
    pub fn txn(&self) -> &WriteTxn {
        &self.unit.txn
    }

    pub async fn commit(self) -> DomainResult<()> {
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
