//! Forward-only schema migrations. Applied automatically when the service
//! starts, and runnable alone: `cargo run -p migration -- up|status|fresh`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_core_schema;
mod m20261123_000001_perception_rollups;
mod m20261124_000001_idempotency_keys;
mod m20261125_000001_candidate_erasure;
mod m20261126_000001_audit_events;
mod m20261126_000002_min_group_size;
mod m20261126_000003_api_key_expiry;
mod m20261127_000001_encounter_candidate_index;
mod m20261128_000001_rollup_spread;
mod m20261129_000001_candidate_surveys;
mod m20261130_000001_webhooks_and_alerts;
mod m20261201_000001_dashboard_sessions;
mod m20261202_000001_rollup_marks;
mod m20261203_000001_candidate_score_days;
mod m20261203_000002_candidate_points_index;
mod m20261204_000001_encounter_list_index;
mod m20261204_000002_tenant_foreign_keys;
mod m20261204_000003_change_log_index;
mod m20261205_000001_encounter_reference_checks;
mod m20261206_000001_rollup_steps;
mod m20261207_000001_audit_event_runs;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_core_schema::Migration),
            Box::new(m20261123_000001_perception_rollups::Migration),
            Box::new(m20261124_000001_idempotency_keys::Migration),
            Box::new(m20261125_000001_candidate_erasure::Migration),
            Box::new(m20261126_000001_audit_events::Migration),
            Box::new(m20261126_000002_min_group_size::Migration),
            Box::new(m20261126_000003_api_key_expiry::Migration),
            Box::new(m20261127_000001_encounter_candidate_index::Migration),
            Box::new(m20261128_000001_rollup_spread::Migration),
            Box::new(m20261129_000001_candidate_surveys::Migration),
            Box::new(m20261130_000001_webhooks_and_alerts::Migration),
            Box::new(m20261201_000001_dashboard_sessions::Migration),
            Box::new(m20261202_000001_rollup_marks::Migration),
            Box::new(m20261203_000001_candidate_score_days::Migration),
            Box::new(m20261203_000002_candidate_points_index::Migration),
            Box::new(m20261204_000001_encounter_list_index::Migration),
            Box::new(m20261204_000002_tenant_foreign_keys::Migration),
            Box::new(m20261204_000003_change_log_index::Migration),
            Box::new(m20261205_000001_encounter_reference_checks::Migration),
            Box::new(m20261206_000001_rollup_steps::Migration),
            Box::new(m20261207_000001_audit_event_runs::Migration),
        ]
    }
}
