//! Integration tests: the real gateway on a temporary database per test, on SQLite
//! always and on PostgreSQL when OTPGATE_TEST_POSTGRES_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod layering;
mod support;

mod apikeys;
mod bad_input;
mod bench;
mod capillary;
mod cli;
mod concurrency;
mod database_faults;
mod delivery;
mod gateway;
mod generate;
mod lockout;
mod login_app;
mod metrics;
mod migrations;
mod operations;
mod record;
mod replay;
mod request_ids;
mod schemas;
mod seeds;
mod slow_clients;
mod storage;
mod throttle;
mod twofactor;
mod unknown_users;
mod wire;
