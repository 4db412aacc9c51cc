//! The integration suite: one binary, each test against a real service on a
//! fresh SQLite file, over HTTP.

mod audit;
mod authz;
mod candidates;
mod cli;
mod concurrency;
mod connections;
mod contract;
mod crash;
mod cursors;
mod database;
mod encounters;
mod erasure;
mod errors;
mod exports;
mod health;
mod helpers;
mod hostile_input;
mod ingest;
mod instances;
mod journey;
mod key_lifecycle;
mod limits;
mod observability;
mod openapi;
mod outage;
mod readme;
mod recount;
mod reports;
mod retention;
mod statistics;
mod subject_access;
mod suppression;
mod surveys;
mod touchpoints;
