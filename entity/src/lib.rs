//! sea-orm entities of touchpoint-tracker. Nothing here knows about HTTP: the
//! API layer has its own request and response types with `From` conversions.

pub mod alert;
pub mod alert_rule;
pub mod anonymous_answer;
pub mod api_key;
pub mod audit_event;
pub mod candidate;
pub mod candidate_score_day;
pub mod dashboard_session;
pub mod encounter;
pub mod encounter_tombstone;
pub mod enums;
pub mod idempotency_key;
pub mod organization;
pub mod outbox_event;
pub mod perception_daily;
pub mod perception_monthly;
pub mod perception_source_daily;
pub mod perception_source_monthly;
pub mod rollup_mark;
pub mod rollup_step;
pub mod survey_email_queue;
pub mod survey_invitation;
pub mod touchpoint;
pub mod touchpoint_reach;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_redelivery;
