//! otpgate: a legacy-compatible OTP gateway. Dialects (legacy wire formats) around one
//! core that generates, delivers, stores and verifies one-time passwords.

pub mod app;
pub mod bench;
pub mod cipher;
pub mod commands;
pub mod config;
pub mod db;
pub mod delivery;
pub mod dialects;
pub mod error;
pub mod housekeeping;
pub mod keys;
pub mod mask;
pub mod otp;
pub mod replay;
pub mod schemas;
pub mod services;
pub mod sessions;
pub mod startup;
pub mod users;
