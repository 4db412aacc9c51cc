//! Webhooks: the events the service emits (written to an outbox in the
//! transaction of their change), the endpoints they go to, and their
//! delivery, signed as Standard Webhooks says, at least once, in order per
//! endpoint.

pub mod address;
pub mod delivery;
pub mod endpoints;
pub mod events;
pub mod signature;
