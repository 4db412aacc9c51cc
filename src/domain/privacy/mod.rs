//! Candidates' personal data: the audit trail, erasure, subject access and
//! retention.

pub mod audit;
pub mod erasure;
pub mod retention;
pub mod subject_access;
