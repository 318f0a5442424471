//! The engine, free of HTTP and of every legacy spelling: one-time passwords, users
//! and their passwords, sessions, keys and masking.

pub mod channel;
pub mod cipher;
pub mod housekeeping;
pub mod keys;
pub mod mask;
pub mod otp;
pub mod sessions;
pub mod users;
