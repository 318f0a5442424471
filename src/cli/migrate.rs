//! `otpgate migrate`: bring the database schema up to date.

use crate::config::Settings;
use crate::state::AppState;

pub(super) fn run(settings: Settings) -> Result<(), String> {
    // Opening the state applies pending migrations.
    let app = AppState::new(settings)?;
    println!("database is up to date ({})", app.db.backend());
    Ok(())
}
