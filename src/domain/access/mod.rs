//! Who may do what: API keys, and the roles and capabilities they carry.

pub mod auth;
pub mod key_cache;
pub mod keys;
pub mod secret;
pub mod sessions;
