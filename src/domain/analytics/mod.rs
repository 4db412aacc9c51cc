//! Perception analytics: the storage-free maths, the rollups every write
//! keeps equal to a recount, and the reports read from them.

mod affected;
pub mod perception;
pub mod projection;
pub mod projector;
pub mod rebuild;
pub mod reports;
pub mod rollups;
pub mod statistics;
