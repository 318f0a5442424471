//! otpgate: a legacy-compatible OTP gateway. Dialects (legacy wire formats) around one
//! core that generates, delivers, stores and verifies one-time passwords.
//!
//! The layers, top to bottom (docs/architecture.md; `tests/api/layering.rs` holds the
//! allowed imports): cli → tools → startup → dialects → wire / services → state →
//! core → delivery → db → config / error.

pub mod cli;
pub mod config;
pub mod core;
pub mod db;
pub mod delivery;
pub mod dialects;
pub mod error;
pub mod metrics;
pub mod record;
pub mod schemas;
pub mod services;
pub mod startup;
pub mod state;
pub mod tools;
pub mod upstream;
pub mod wire;
