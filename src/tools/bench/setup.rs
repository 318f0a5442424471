//! Setting the benchmark up: the gateway's settings, its users, and the SMS listener
//! that hands each code to the virtual client whose number it is.

use super::*;

/// The digits of a hex string's characters, for numbers unique to a run.
pub(super) fn numeric(s: &str) -> String {
    s.bytes().map(|b| char::from(b'0' + b % 10)).collect()
}

/// The gateway's configuration: `base`, with the bench's address, database, log level
/// and SMS provider, one channel (SMS) and send limits that a load of this many cycles
/// per user does not reach. The limits are still checked on every request.
pub(super) fn gateway_settings(
    args: &BenchArgs,
    mut s: Settings,
    database_url: &str,
    sms: SocketAddr,
    dir: &std::path::Path,
) -> Result<Settings, String> {
    s.bind = free_loopback_addr(args.host)?.to_string();
    s.database_url = database_url.to_string();
    if let Some(n) = args.pool_size {
        s.pool_size = n;
    }
    if let Some(n) = args.workers {
        s.workers = n;
    }
    // The statements and transactions per cycle are read from /metrics.
    s.metrics.enabled = true;
    s.metrics.bind = None;
    s.metrics.token = None;
    s.log.level = "warn".into();
    s.log.format = "text".into();
    s.secrets.otp_key = Some(hex::encode(crate::core::keys::random_bytes::<32>()));
    s.secrets.previous_otp_keys.clear();
    s.secrets.key_file = dir.join("otpgate.key");
    s.otp.channels = vec!["sms".into()];
    // Every issue still counts the destination's sends within the window, which its
    // row keeps. A real destination has at most `max_sends` there; a bench client
    // sends dozens a second, so with the 15-minute window each row would hold
    // thousands of times. One second keeps it to dozens.
    s.otp.max_sends = 1_000_000_000;
    s.otp.send_window_seconds = 1;
    s.otp.resend_cooldown_seconds = 0;
    // Every request comes from this host: the buckets are kept (their cost is part of
    // what is measured) but never empty.
    let unlimited = crate::config::Rate::new(1_000_000_000, 1_000_000_000);
    for b in [
        &mut s.security.throttle.generate,
        &mut s.security.throttle.verify,
        &mut s.security.throttle.login,
    ] {
        b.per_address = unlimited;
        b.per_identifier = unlimited;
    }
    // Wrong passwords (the unknown phase's logins) are counted, never refused.
    s.login.max_failures = 1_000_000_000;
    s.login.global_failures = 1_000_000_000;
    s.orgs.clear();
    s.security.throttle.enabled = true;
    s.security.throttle.exempt.clear();
    s.field_cipher = Default::default();
    s.delivery.console = false;
    s.delivery.sms = vec!["bench".into()];
    s.delivery.email = vec!["file".into()];
    s.delivery.file_path = dir.join("deliveries.jsonl");
    s.delivery.sms_template = "{code} is your {app} code.".into();
    s.delivery.templates.clear();
    s.delivery.orgs.clear();
    // The forward phase's legacy server: the stub beside the SMS listener.
    s.upstream = Default::default();
    s.upstream.summit.url = Some(format!("http://{sms}{LEGACY_PATH}"));
    s.upstream.summit.max_in_flight = 4096;
    s.delivery.providers = vec![ProviderSettings::HttpSms(HttpSmsSettings {
        name: "bench".into(),
        url: format!("http://{sms}/sms"),
        method: "POST".into(),
        headers: Default::default(),
        basic_auth: None,
        query: Default::default(),
        encoding: "json".into(),
        body: Some(json!({"to": "{to_digits}", "text": "{text}", "id": "{id}"})),
        sender: "BENCH".into(),
        success_status: vec![],
        success_field: None,
        success_values: vec![],
        message_id_field: None,
        timeout_seconds: 10,
    })];
    s.validate()?;
    Ok(s)
}

/// Adds one user per client (no password: they log in by OTP) and the storm's user
/// (with one), through the library, before the gateway starts.
pub(super) fn provision(
    settings: Settings,
    run_id: &str,
    identities: &[Identity],
    storm_login: &str,
    storm_password: &str,
) -> Result<(), String> {
    let app = AppState::new(settings)?;
    let user = |n: usize, id: Option<&Identity>| NewUser {
        user_id: None,
        login_uid: format!("bench-{run_id}-{n}"),
        login_name: match id {
            Some(_) => None,
            None => Some(storm_login.to_string()),
        },
        user_name: format!("Bench Client {n}"),
        email: id.map_or(format!("{storm_login}@bench.example.com"), |i| {
            i.email.clone()
        }),
        mobile: id.map_or(String::new(), |i| i.mobile.clone()),
        country_code: "91".into(),
        password: match id {
            Some(_) => None,
            None => Some(storm_password.to_string()),
        },
        org_id: 1,
        org_name: "bench".into(),
        domain_id: 1,
        profile: Default::default(),
    };
    for (n, id) in identities.iter().enumerate() {
        add_user(&app, &user(n, Some(id)))?;
    }
    add_user(&app, &user(identities.len(), None))?;
    // The unknown phase's Capillary brand: SMS, as the rest of the bench.
    let mut brand = crate::db::capillary_brands::Brand::new(unknown::BRAND, crate::db::now_ms());
    brand.channels = "sms".into();
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    if crate::db::capillary_brands::find(&mut conn, unknown::BRAND)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        crate::db::capillary_brands::insert(&mut conn, &brand).map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(super) fn add_user(app: &AppState, new: &NewUser) -> Result<(), String> {
    let fields = crate::dialects::summit::user_document::profile_fields();
    crate::core::users::add(&app.db, &app.passwords, new, &fields).map(drop)
}

/// Where the stub legacy server answers, and what.
pub(super) const LEGACY_PATH: &str =
    "/legacy/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";
const LEGACY_ANSWER: &str = r#"{"Errors":"","Message":"","Output":"","TokenID":null,"OrgID":0,"OutputObject":{"IncidentID":4711},"OutputID":0,"Input":null}"#;

/// The SMS provider the gateway sends codes to, and the stub legacy server the
/// forward phase reaches through the gateway.
pub(super) fn sms_listener(
    host: IpAddr,
    port: u16,
    inbox: Inbox,
    stray: Arc<AtomicU64>,
) -> Result<(SocketAddr, actix_web::dev::ServerHandle), String> {
    use actix_web::{HttpResponse, web};
    let listener = std::net::TcpListener::bind((host, port))
        .map_err(|e| format!("the SMS listener cannot bind {host}:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = actix_web::HttpServer::new(move || {
        let (inbox, stray) = (inbox.clone(), stray.clone());
        actix_web::App::new()
            .route(
                LEGACY_PATH,
                // The body is read, as a real server does: actix closes a
                // connection whose request body was left unread.
                web::post().to(|_body: web::Bytes| async {
                    HttpResponse::Ok()
                        .content_type("application/json; charset=utf-8")
                        .body(LEGACY_ANSWER)
                }),
            )
            .route(
                "/sms",
                web::post().to(move |body: web::Json<Value>| {
                    let (inbox, stray) = (inbox.clone(), stray.clone());
                    async move {
                        let to = body["to"].as_str().unwrap_or_default();
                        let text = body["text"].as_str().unwrap_or_default().to_string();
                        let sender = inbox.lock().ok().and_then(|m| m.get(to).cloned());
                        match sender {
                            Some(tx) => {
                                let _ = tx.send(text);
                            }
                            None => {
                                stray.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        HttpResponse::Ok().json(json!({"status": "accepted"}))
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((addr, handle))
}
