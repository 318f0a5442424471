//! `otpgate serve [--demo]`: the gateway itself.

use super::user::add_user;
use crate::config::Settings;
use crate::core::users::NewUser;
use crate::db::users;
use crate::startup::Gateway;
use crate::state::AppState;

pub(super) fn run(mut settings: Settings, demo: bool) -> Result<(), String> {
    settings.delivery.console |= demo;
    if demo {
        // The README's examples send codes to the demo user in a row.
        settings.otp.resend_cooldown_seconds = 0;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(crate::startup::BLOCKING_THREADS)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let bind = settings.bind.clone();
        let file_sink = settings.delivery.file_path.clone();
        let uses_file = settings.delivery.uses_file();
        let app = AppState::new(settings)?;
        if demo {
            ensure_demo_user(&app)?;
        }
        let listener = std::net::TcpListener::bind(&bind).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
        let gateway = Gateway::build(app.clone(), listener, true).map_err(|e| format!("cannot start: {e}"))?;
        // Start-up lines keep the `otpgate` target that log filters and JSON log
        // consumers already know.
        tracing::info!(target: "otpgate", bind = %bind, database = app.db.backend(), "otpgate is listening");
        if uses_file {
            tracing::warn!(target: "otpgate", file = %file_sink.display(), "messages are delivered to the file transport: configure a real provider for production");
        }
        if demo {
            println!(
                "demo: user {} / password {} (mobile 9876543219, country code 91); no resend cool-down; codes are printed below and written to {}",
                DEMO_LOGIN,
                DEMO_PASSWORD,
                file_sink.display()
            );
        }
        gateway.run().await.map_err(|e| format!("server error: {e}"))
    })
}

pub const DEMO_LOGIN: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "demo-password";

/// Creates the demo user unless it exists.
pub fn ensure_demo_user(app: &AppState) -> Result<(), String> {
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    if users::find_by_login(&mut conn, DEMO_LOGIN)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    drop(conn);
    add_user(
        app,
        &NewUser {
            user_id: None,
            login_uid: "1".into(),
            login_name: Some(DEMO_LOGIN.into()),
            user_name: "Demo User".into(),
            email: DEMO_LOGIN.into(),
            mobile: "9876543219".into(),
            country_code: "91".into(),
            password: Some(DEMO_PASSWORD.into()),
            org_id: 1,
            org_name: "Demo".into(),
            domain_id: 1,
            profile: Default::default(),
        },
    )
    .map(|_| ())
}
