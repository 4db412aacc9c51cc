//! Alerts: the rules the service evaluates (a detractor's score, a
//! significant drop of a group's cNPS) and the alerts they raise.

pub mod drop;
pub mod lifecycle;
pub mod rules;
