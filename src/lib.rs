//! touchpoint-tracker: where candidates meet an employer, and how their view
//! of it as a place to work shifts along the way.

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod metrics;
pub mod server;
pub mod startup;
pub mod telemetry;
