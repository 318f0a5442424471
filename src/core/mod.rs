//! The engine, free of HTTP and of every legacy spelling: one-time passwords, users
//! and their passwords and logins, sessions, brands, the audit trail, keys and masking.

pub mod api_keys;
pub mod audit;
pub mod brands;
pub mod channel;
pub mod cipher;
pub mod housekeeping;
pub mod ids;
pub mod keys;
pub mod login;
pub mod mask;
pub mod otp;
pub mod request_id;
pub mod sessions;
pub mod throttle;
pub mod upstream_keys;
pub mod users;

/// Milliseconds since the epoch, the one clock of the gateway.
pub use crate::db::now_ms;
