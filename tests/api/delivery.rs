//! Delivery through real servers on loopback, started by the tests: an SMTP server
//! that keeps what it receives, and HTTP SMS endpoints that fail a given number of
//! times before they accept.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use diesel::prelude::*;
use otpgate::config::{
    DeliverySettings, HttpSmsSettings, OrgDelivery, ProviderSettings, Settings, SmtpSettings,
    TemplateSet,
};
use otpgate::core::otp::{Channel, Destination, IssueRequest, Policy, issue};
use otpgate::db::outbox::Listing;
use otpgate::db::schema::outbox as outbox_t;
use otpgate::delivery::wait_for_outcome;
use otpgate::startup::Gateway;
use otpgate::state::AppState;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::both;
use crate::helpers::*;

const VISHNU: &str = "Vishnu.kumar@syntel.com";
const VISHNU_MOBILE: &str = "+919876543219";

// ---------------------------------------------------------------- test servers

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
struct Mail {
    /// Whether the session was encrypted when the message came.
    tls: bool,
    auth: Option<String>,
    from: String,
    to: Vec<String>,
    data: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// How the SMTP server speaks: in clear, offering STARTTLS, or TLS from the first
/// byte (with the test certificate for localhost).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls,
    Tls,
}

fn tls_acceptor() -> tokio_native_tls::TlsAcceptor {
    let cert = fixture("tls/localhost.pem");
    let key = fixture("tls/localhost.key");
    let identity =
        tokio_native_tls::native_tls::Identity::from_pkcs8(cert.as_bytes(), key.as_bytes())
            .unwrap();
    tokio_native_tls::native_tls::TlsAcceptor::new(identity)
        .unwrap()
        .into()
}

/// A minimal SMTP server: EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP,
/// QUIT.
struct MailServer {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl MailServer {
    async fn start() -> MailServer {
        Self::start_with(Security::Plain).await
    }

    async fn start_with(security: Security) -> MailServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        let acceptor = tls_acceptor();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (kept, acceptor) = (kept.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let _ = match security {
                        Security::Tls => match acceptor.accept(stream).await {
                            Ok(tls) => smtp_session(tls, false, true, true, kept).await.map(drop),
                            Err(_) => Ok(()),
                        },
                        Security::Plain | Security::StartTls => {
                            let offer = security == Security::StartTls;
                            match smtp_session(stream, offer, false, true, kept.clone()).await {
                                Ok(Some(raw)) => match acceptor.accept(raw).await {
                                    Ok(tls) => {
                                        smtp_session(tls, false, true, false, kept).await.map(drop)
                                    }
                                    Err(_) => Ok(()),
                                },
                                other => other.map(drop),
                            }
                        }
                    };
                });
            }
        });
        MailServer { port, mails }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(Instant::now() < deadline, "{} mails, not {n}", mails.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One SMTP session; returns the connection when the client asked for STARTTLS, to
/// go on encrypted (without a new greeting: the client speaks first then).
async fn smtp_session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    offer_starttls: bool,
    tls: bool,
    greet: bool,
    kept: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<Option<S>> {
    let mut conn = BufReader::new(stream);
    if greet {
        conn.get_mut().write_all(b"220 mail.test ESMTP\r\n").await?;
    }
    let mut mail = Mail {
        tls,
        auth: None,
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let cmd = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let starttls = if offer_starttls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            format!("250-mail.test\r\n{starttls}250-AUTH PLAIN\r\n250 8BITMIME\r\n")
        } else if upper == "STARTTLS" && offer_starttls {
            conn.get_mut()
                .write_all(b"220 2.0.0 ready to start TLS\r\n")
                .await?;
            return Ok(Some(conn.into_inner()));
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 ok\r\n".into()
        } else if upper.starts_with("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(cmd[11..].trim())
                .unwrap_or_default();
            mail.auth = Some(String::from_utf8_lossy(&decoded).replace('\0', "|"));
            "235 2.7.0 authenticated\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = cmd[10..].trim().to_string();
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(cmd[8..].trim().to_string());
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            conn.get_mut().write_all(b"354 go ahead\r\n").await?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if conn.read_line(&mut line).await? == 0 {
                    return Ok(None);
                }
                let l = line.trim_end_matches(['\r', '\n']);
                if l == "." {
                    break;
                }
                data.push(l.strip_prefix('.').unwrap_or(l).to_string());
            }
            mail.data = data.join("\r\n");
            let n = {
                let mut all = kept.lock().unwrap();
                all.push(mail.clone());
                all.len()
            };
            format!("250 2.0.0 ok: queued as Q{n}\r\n")
        } else if upper == "RSET" {
            "250 ok\r\n".into()
        } else if upper == "QUIT" {
            conn.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(None);
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        conn.get_mut().write_all(reply.as_bytes()).await?;
    }
}

/// One request as the SMS endpoint received it.
#[derive(Debug, Clone)]
struct SmsRequest {
    method: String,
    query: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl SmsRequest {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct SmsState {
    /// Requests still to be refused (503, echoing what they were sent).
    failures_left: AtomicUsize,
    received: Mutex<Vec<SmsRequest>>,
}

/// An HTTP SMS API: answers 503 while it has failures left, then 201 with
/// `{"sid": "SM<n>", "status": "queued"}`.
#[derive(Clone)]
struct SmsEndpoint {
    url: String,
    state: Arc<SmsState>,
}

impl SmsEndpoint {
    async fn start(failures: usize) -> SmsEndpoint {
        use actix_web::{HttpRequest, HttpResponse, web};
        let state = Arc::new(SmsState {
            failures_left: AtomicUsize::new(failures),
            received: Mutex::new(Vec::new()),
        });
        let shared = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .default_service(web::to(
                    |req: HttpRequest, body: web::Bytes, state: web::Data<SmsState>| async move {
                        let request = SmsRequest {
                            method: req.method().to_string(),
                            query: req.query_string().to_string(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.to_string(), v.to_str().unwrap_or_default().to_string())
                                })
                                .collect(),
                            body: String::from_utf8_lossy(&body).to_string(),
                        };
                        let n = {
                            let mut all = state.received.lock().unwrap();
                            all.push(request.clone());
                            all.len()
                        };
                        let failing = state
                            .failures_left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                            .is_ok();
                        if failing {
                            HttpResponse::ServiceUnavailable()
                                .json(json!({"error": "try later", "request": request.body}))
                        } else {
                            HttpResponse::Created()
                                .json(json!({"sid": format!("SM{n}"), "status": "queued"}))
                        }
                    },
                ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        SmsEndpoint {
            url: format!("http://127.0.0.1:{port}/2010-04-01/Accounts/AC1/Messages.json"),
            state,
        }
    }

    fn received(&self) -> Vec<SmsRequest> {
        self.state.received.lock().unwrap().clone()
    }

    fn fail_next(&self, n: usize) {
        self.state.failures_left.store(n, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- settings

fn smtp(name: &str, port: u16) -> ProviderSettings {
    ProviderSettings::Smtp(SmtpSettings {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: Some(port),
        security: "none".into(),
        username: Some("otp-user".into()),
        password: Some("otp-pass".into()),
        from: "{app} <no-reply@otpgate.test>".into(),
        ca_file: None,
        hello_name: None,
        timeout_seconds: 5,
    })
}

/// An SMTP provider on localhost that speaks `security`, trusting the test CA when
/// `trusted`.
fn smtp_secure(name: &str, port: u16, security: &str, trusted: bool) -> ProviderSettings {
    let ProviderSettings::Smtp(mut m) = smtp(name, port) else {
        unreachable!()
    };
    m.host = "localhost".into();
    m.security = security.into();
    m.ca_file = trusted
        .then(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/ca.pem"));
    ProviderSettings::Smtp(m)
}

/// A generic JSON SMS API, as in the README.
fn json_sms(name: &str, endpoint: &SmsEndpoint) -> ProviderSettings {
    ProviderSettings::HttpSms(HttpSmsSettings {
        name: name.into(),
        url: endpoint.url.clone(),
        method: "POST".into(),
        headers: BTreeMap::from([
            ("Authorization".into(), "Bearer test-token".into()),
            ("Idempotency-Key".into(), "{id}".into()),
        ]),
        basic_auth: None,
        query: BTreeMap::new(),
        encoding: "json".into(),
        body: Some(json!({"to": "{to}", "text": "{text}", "from": "{sender}"})),
        sender: "OTPGTE".into(),
        success_status: vec![],
        success_field: Some("/status".into()),
        success_values: vec!["queued".into()],
        message_id_field: Some("/sid".into()),
        timeout_seconds: 5,
    })
}

/// Retries come quickly, and a provider that failed is skipped for a long time.
fn fast(d: &mut DeliverySettings) {
    d.max_attempts = 3;
    d.retry_base_ms = 10;
    d.provider_cooldown_seconds = 600;
}

// ---------------------------------------------------------------- reading the outbox

async fn messages(app: &AppState) -> Vec<Listing> {
    app.db
        .run(|c| {
            Ok(outbox_t::table
                .order(outbox_t::created_at)
                .select(Listing::as_select())
                .load(c)?)
        })
        .await
        .unwrap()
}

/// Waits until `done` holds for the outbox, and returns it.
async fn outbox_until(app: &AppState, done: impl Fn(&[Listing]) -> bool) -> Vec<Listing> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = messages(app).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "outbox never got there: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sms_of<'a>(rows: &'a [Listing], transaction_id: &str) -> &'a Listing {
    rows.iter()
        .find(|r| r.channel == "sms" && r.challenge_id.as_deref() == Some(transaction_id))
        .expect("an SMS for the transaction")
}

fn all_final(rows: &[Listing]) -> bool {
    !rows.is_empty()
        && rows
            .iter()
            .all(|r| matches!(r.state.as_str(), "sent" | "failed" | "cancelled"))
}

/// The code in an SMS as the endpoint received it.
fn code_in(r: &SmsRequest) -> String {
    first_digits(r.json()["text"].as_str().unwrap_or(""))
}

// ---------------------------------------------------------------- the tests

/// An e-mail goes through SMTP with authentication; the server receives From, To,
/// Subject, Message-ID and the code, which logs in. The organisation's From and
/// language are used; the SMS (to the file) is in the organisation's language.
async fn smtp_delivers_the_code_in_the_organisations_words(b: Backend) {
    let mail = MailServer::start().await;
    let app = spawn_with(b, |s| {
        s.delivery.providers = vec![smtp("mail", mail.port)];
        s.delivery.email = vec!["mail".into()];
        s.delivery.sms = vec!["file".into()];
        let mut org = OrgDelivery {
            app_name: Some("Syntel Desk".into()),
            default_language: Some("hi".into()),
            email_from: Some("{app} <otp@syntel.test>".into()),
            sms_sender: Some("SYNTEL".into()),
            ..Default::default()
        };
        org.templates.insert(
            "hi".into(),
            TemplateSet {
                sms: Some("{code} आपका {app} OTP है। {minutes} मिनट में समाप्त।".into()),
                ..Default::default()
            },
        );
        s.delivery.orgs.insert("1".into(), org);
    })
    .await;
    app.vishnu().await;
    let txn = app.login_otp(VISHNU, "d").await;

    let mails = mail.wait_for(1).await;
    let m = &mails[0];
    assert_eq!(m.auth.as_deref(), Some("|otp-user|otp-pass"));
    assert_eq!(m.from, "<otp@syntel.test>");
    assert_eq!(m.to, vec![format!("<{VISHNU}>")]);
    assert_eq!(
        m.header("From").as_deref(),
        Some("\"Syntel Desk\" <otp@syntel.test>")
    );
    assert_eq!(m.header("To").as_deref(), Some(VISHNU));
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("Your Syntel Desk one-time password")
    );
    assert!(m.header("Message-ID").is_some_and(|id| id.contains('@')));
    assert!(
        m.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let body = m.body();
    assert!(body.contains("It expires in 10 minutes."), "{body}");
    let code = first_digits(&body);
    assert_eq!(code.len(), 6);

    // The SMS in Hindi, with the same code.
    let sms = app.code(&txn, "sms").await;
    assert_eq!(sms, code);
    assert_eq!(app.deliveries()[0]["sender"], "SYNTEL");
    let text = app.deliveries()[0]["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        format!("{code} आपका Syntel Desk OTP है। 10 मिनट में समाप्त।")
    );

    let rows = outbox_until(&app.app, all_final).await;
    let email = rows.iter().find(|r| r.channel == "email").unwrap();
    assert_eq!(
        (
            email.state.as_str(),
            email.provider.as_deref(),
            email.provider_ref.as_deref()
        ),
        ("sent", Some("mail"), Some("2.0.0 ok: queued as Q1"))
    );
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
}

/// TLS from the first byte and STARTTLS, with a private CA. A certificate that is not
/// trusted, or a server that does not offer STARTTLS when it is required, gets
/// nothing (not even the credentials); the next provider sends the message.
async fn smtp_speaks_tls_and_starttls_and_refuses_what_is_not_safe(b: Backend) {
    let no_starttls = MailServer::start_with(Security::Plain).await;
    let wrapper = MailServer::start_with(Security::Tls).await;
    let starttls = MailServer::start_with(Security::StartTls).await;
    let (p, w) = (no_starttls.port, wrapper.port);
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.providers = vec![
            smtp_secure("plain-only", p, "starttls", true),
            smtp_secure("untrusted", w, "tls", false),
            smtp_secure("wrapper", w, "tls", true),
        ];
        s.delivery.email = vec!["plain-only".into(), "untrusted".into(), "wrapper".into()];
        s.otp.channels = vec!["email".into()];
    })
    .await;
    app.vishnu().await;
    let txn = app.login_otp(VISHNU, "d").await;
    let mails = wrapper.wait_for(1).await;
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth.as_deref(), Some("|otp-user|otp-pass"));
    assert!(no_starttls.mails().is_empty());
    let rows = outbox_until(&app.app, all_final).await;
    assert_eq!(
        (
            rows[0].state.as_str(),
            rows[0].attempts,
            rows[0].provider.as_deref()
        ),
        ("sent", 1, Some("wrapper"))
    );
    let code = first_digits(&mails[0].body());
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());

    let s = starttls.port;
    let app = spawn_with(b, move |st| {
        st.delivery.providers = vec![smtp_secure("submission", s, "starttls", true)];
        st.delivery.email = vec!["submission".into()];
        st.otp.channels = vec!["email".into()];
    })
    .await;
    app.vishnu().await;
    app.login_otp(VISHNU, "d").await;
    let mails = starttls.wait_for(1).await;
    assert!(mails[0].tls, "the message went after the upgrade");
    assert_eq!(mails[0].auth.as_deref(), Some("|otp-user|otp-pass"));

    // With only the unsafe ones, the message fails, and the error says why.
    let app = spawn_with(b, move |s| {
        s.delivery.max_attempts = 1;
        s.delivery.providers = vec![
            smtp_secure("plain-only", p, "starttls", true),
            smtp_secure("untrusted", w, "tls", false),
        ];
        s.delivery.email = vec!["plain-only".into(), "untrusted".into()];
        s.otp.channels = vec!["email".into()];
    })
    .await;
    app.vishnu().await;
    app.login_otp(VISHNU, "d").await;
    let rows = outbox_until(&app.app, all_final).await;
    let error = rows[0].last_error.clone().unwrap_or_default();
    assert_eq!(rows[0].state, "failed");
    assert!(
        error.starts_with("plain-only: SMTP localhost: ") && error.contains("STARTTLS"),
        "{error}"
    );
    assert!(
        error.contains("; untrusted: SMTP localhost: ") && error.contains("certificate"),
        "{error}"
    );
    assert!(no_starttls.mails().is_empty() && wrapper.mails().len() == 1);
}

/// A provider that fails twice: the message is retried with backoff and sent on the
/// third attempt, with the same idempotency key each time.
async fn http_sms_is_retried_until_the_provider_takes_it(b: Backend) {
    let gateway = SmsEndpoint::start(2).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.max_attempts = 5;
        s.delivery.provider_cooldown_seconds = 0;
        s.delivery.providers = vec![json_sms("gateway", &g)];
        s.delivery.sms = vec!["gateway".into()];
    })
    .await;
    app.vishnu().await;
    let txn = app.login_otp(VISHNU, "d").await;
    let rows = outbox_until(&app.app, |r| {
        r.iter().any(|m| m.channel == "sms" && m.state == "sent")
    })
    .await;
    let sms = sms_of(&rows, &txn);
    assert_eq!(sms.attempts, 3);
    assert_eq!(sms.provider.as_deref(), Some("gateway"));
    assert_eq!(sms.provider_ref.as_deref(), Some("SM3"));
    assert_eq!(sms.last_error, None);

    let got = gateway.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.headers["idempotency-key"], sms.id);
        assert_eq!(r.headers["authorization"], "Bearer test-token");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.json()["to"], VISHNU_MOBILE);
        assert_eq!(r.json()["from"], "OTPGTE");
    }
    let code = code_in(&got[2]);
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
}

/// The first provider fails: the second sends the message in the same attempt. The
/// failed one is then skipped while it cools down.
async fn a_failing_provider_hands_over_to_the_next_and_cools_down(b: Backend) {
    let broken = SmsEndpoint::start(usize::MAX).await;
    let backup = SmsEndpoint::start(0).await;
    let (x, y) = (broken.clone(), backup.clone());
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.providers = vec![json_sms("primary", &x), json_sms("backup", &y)];
        s.delivery.sms = vec!["primary".into(), "backup".into()];
    })
    .await;
    app.vishnu().await;
    let first = app.login_otp(VISHNU, "d").await;
    let rows = outbox_until(&app.app, |r| {
        r.iter().any(|m| m.channel == "sms" && m.state == "sent")
    })
    .await;
    let sms = sms_of(&rows, &first);
    assert_eq!((sms.attempts, sms.provider.as_deref()), (1, Some("backup")));

    let second = app.login_otp(VISHNU, "d").await;
    let rows = outbox_until(&app.app, |r| {
        r.iter()
            .filter(|m| m.channel == "sms" && m.state == "sent")
            .count()
            == 2
    })
    .await;
    assert_eq!(sms_of(&rows, &second).provider.as_deref(), Some("backup"));
    assert_eq!(
        broken.received().len(),
        1,
        "the failed provider is cooling down"
    );
    assert_eq!(backup.received().len(), 2);
    let code = code_in(&backup.received()[1]);
    assert!(app.login_app(&second, &code, "d").await.json()["User"].is_object());
}

/// After the last attempt the message is failed, with the provider's error kept,
/// masked and without the code. `otpgate outbox list` shows it; `otpgate outbox retry`
/// sends it once the provider is back.
async fn a_message_fails_after_the_last_attempt_and_an_operator_retries_it(b: Backend) {
    let gateway = SmsEndpoint::start(usize::MAX).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.providers = vec![json_sms("gateway", &g)];
        s.delivery.sms = vec!["gateway".into()];
    })
    .await;
    app.vishnu().await;
    let txn = app.login_otp(VISHNU, "d").await;
    let rows = outbox_until(&app.app, |r| r.iter().any(|m| m.state == "failed")).await;
    let sms = sms_of(&rows, &txn).clone();
    assert_eq!((sms.state.as_str(), sms.attempts), ("failed", 3));
    let error = sms.last_error.clone().unwrap();
    let code = code_in(&gateway.received()[0]);
    assert!(
        error.starts_with("gateway: 127.0.0.1 answered HTTP 503: {\"error\":\"try later\""),
        "{error}"
    );
    // The provider echoed the request: number and text are gone from what is kept.
    assert!(error.contains("*219"), "{error}");
    assert!(
        !error.contains("9876543") && !error.contains(&code),
        "{error}"
    );
    assert_eq!(gateway.received().len(), 3);

    let dir = tempfile::tempdir().unwrap();
    let url = app.app.settings.database_url.clone();
    let cli = |args: &[&str]| {
        let o = otpgate(&url, dir.path(), args);
        (o.status.success(), output_text(&o))
    };
    let (ok, listing) = tokio::task::block_in_place(|| cli(&["outbox", "list"]));
    assert!(ok, "{listing}");
    let line = listing
        .lines()
        .find(|l| l.starts_with(&sms.id))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.contains("failed")
            && line.contains(&otpgate::core::mask::phone(VISHNU_MOBILE))
            && line.contains("gateway: 127.0.0.1 answered HTTP 503"),
        "{line}"
    );
    assert!(listing.starts_with("ID "), "{listing}");
    assert!(
        !listing.contains("9876543") && !listing.contains("Vishnu.kumar"),
        "{listing}"
    );
    assert!(!listing.contains(&code), "{listing}");

    gateway.fail_next(0);
    let (ok, said) = tokio::task::block_in_place(|| cli(&["outbox", "retry", &sms.id]));
    assert!(ok, "{said}");
    assert!(said.contains("is queued again"), "{said}");
    let rows = outbox_until(&app.app, |r| r.iter().all(|m| m.state == "sent")).await;
    let sms = sms_of(&rows, &txn);
    assert_eq!(
        (sms.attempts, sms.provider.as_deref()),
        (1, Some("gateway"))
    );
    assert!(
        app.login_app(&txn, &code_in(&gateway.received()[3]), "d")
            .await
            .json()["User"]
            .is_object()
    );

    let (ok, said) = tokio::task::block_in_place(|| cli(&["outbox", "retry", &sms.id]));
    assert!(
        !ok && said.contains("is sent; only failed messages are retried"),
        "{said}"
    );
    let (ok, said) = tokio::task::block_in_place(|| cli(&["outbox", "list", "--state", "sent"]));
    assert!(
        ok && said.contains(&sms.id) && said.contains("SM4"),
        "{said}"
    );
}

/// A failed message can be retried while its code works; once the code is replaced
/// it cannot, and its sealed text is dropped.
async fn failed_messages_are_retried_only_while_their_code_works(b: Backend) {
    use otpgate::db::outbox::{Requeue, drop_dead_payloads, requeue_failed};
    let (app, _db, _dir) = open_app(b).await;
    let number = vec!["+15550003000".to_string()];
    let db = app.db.clone();
    let fail_all = move || {
        let db = db.clone();
        async move {
            db.run(|c| {
                diesel::update(outbox_t::table)
                    .set(outbox_t::state.eq("failed"))
                    .execute(c)?;
                Ok(())
            })
            .await
            .unwrap()
        }
    };
    let old = issue_codes(&app, &number).await.remove(0);
    fail_all().await;
    // A newer code for the same user: the old one stops working.
    let new = issue_codes(&app, &number).await.remove(0);
    fail_all().await;
    let (o, n) = (old.clone(), new.clone());
    let (old_after, new_after, payloads) = app
        .db
        .run(move |c| {
            let now = otpgate::db::now_ms();
            assert_eq!(drop_dead_payloads(c, now)?, 1);
            let payloads: Vec<(String, bool)> = outbox_t::table
                .select((outbox_t::id, outbox_t::payload.is_not_null()))
                .order(outbox_t::id)
                .load(c)?;
            Ok((
                requeue_failed(c, &o, now)?,
                requeue_failed(c, &n, now)?,
                payloads,
            ))
        })
        .await
        .unwrap();
    assert_eq!(old_after, Requeue::CodeGone);
    assert_eq!(new_after, Requeue::Requeued);
    let mut expected = vec![(old, false), (new.clone(), true)];
    expected.sort();
    assert_eq!(payloads, expected);
    let rows = messages(&app).await;
    let requeued = rows.iter().find(|r| r.id == new).unwrap();
    assert_eq!((requeued.state.as_str(), requeued.attempts), ("queued", 0));
}

/// Issues codes straight into the outbox of a database no dispatcher watches.
async fn issue_codes(app: &AppState, numbers: &[String]) -> Vec<String> {
    let (keys, templates, settings) = (
        app.keys.clone(),
        app.templates.clone(),
        app.settings.clone(),
    );
    let numbers = numbers.to_vec();
    app.db
        .run(move |c| {
            let mut ids = Vec::new();
            for (i, n) in numbers.iter().enumerate() {
                let issued = issue(
                    c,
                    &keys,
                    &templates,
                    IssueRequest {
                        subject: format!("user:{i}"),
                        purpose: "login",
                        user_id: None,
                        org_id: 1,
                        destinations: vec![Destination {
                            channel: Channel::Sms,
                            address: n.clone(),
                        }],
                        device_id: None,
                        language: None,
                        sms_template: None,
                        reveal_code: false,
                        policy: Policy::for_org(&settings, 1),
                        limit_scope: None,
                    },
                )?;
                ids.extend(issued.outbox_ids);
            }
            Ok(ids)
        })
        .await
        .unwrap()
}

/// A gateway process on an existing database.
async fn start_gateway(settings: Settings) -> (AppState, actix_web::dev::ServerHandle) {
    let app = tokio::task::spawn_blocking(move || AppState::new(settings))
        .await
        .unwrap()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = Gateway::build(app.clone(), listener, true).unwrap();
    let handle = gateway.handle();
    tokio::spawn(gateway.run());
    (app, handle)
}

/// Messages queued before a restart, and one claimed by a process that died while
/// sending it, are sent by the next process, each once.
async fn queued_messages_are_sent_after_a_restart(b: Backend) {
    let (before, _db, _dir) = open_app(b).await;
    let numbers: Vec<String> = (0..3).map(|i| format!("+1555000010{i}")).collect();
    let ids = issue_codes(&before, &numbers).await;
    // The last one was being sent by a process that died: its lease ran out.
    let dead = ids[2].clone();
    before
        .db
        .run(move |c| {
            diesel::update(outbox_t::table.find(&dead))
                .set((
                    outbox_t::state.eq("sending"),
                    outbox_t::claimed_by.eq("a-process-that-died"),
                    outbox_t::lease_until.eq(otpgate::db::now_ms() - 1),
                ))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        messages(&before)
            .await
            .iter()
            .map(|m| m.state.as_str())
            .collect::<Vec<_>>(),
        ["queued", "queued", "sending"]
    );

    let gateway = SmsEndpoint::start(0).await;
    let mut settings = (*before.settings).clone();
    settings.delivery.providers = vec![json_sms("gateway", &gateway)];
    settings.delivery.sms = vec!["gateway".into()];
    let (after, handle) = start_gateway(settings).await;
    let rows = outbox_until(&after, |r| r.iter().all(|m| m.state == "sent")).await;
    assert_eq!(rows.len(), 3);
    let mut keys: Vec<String> = gateway
        .received()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    keys.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(keys, expected, "each message sent once");
    let mut to: Vec<String> = gateway
        .received()
        .iter()
        .map(|r| r.json()["to"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, numbers);
    handle.stop(false).await;
}

/// Two dispatchers (two processes' worth: each its own pool) drain one outbox in
/// small batches; every message is sent exactly once.
async fn two_dispatchers_send_each_message_once(b: Backend) {
    let (first, _db, _dir) = open_app(b).await;
    let numbers: Vec<String> = (0..60).map(|i| format!("+15550002{i:03}")).collect();
    let ids = issue_codes(&first, &numbers).await;
    let gateway = SmsEndpoint::start(0).await;
    let mut settings = (*first.settings).clone();
    settings.delivery.providers = vec![json_sms("gateway", &gateway)];
    settings.delivery.sms = vec!["gateway".into()];
    settings.delivery.batch_size = 4;
    let (a, stop_a) = start_gateway(settings.clone()).await;
    let (_b, stop_b) = start_gateway(settings).await;
    let rows = outbox_until(&a, |r| r.iter().all(|m| m.state == "sent")).await;
    assert_eq!(rows.len(), 60);
    let mut keys: Vec<String> = gateway
        .received()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    keys.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(keys, expected, "each message sent exactly once");
    assert!(rows.iter().all(|r| r.attempts == 1));
    stop_a.stop(false).await;
    stop_b.stop(false).await;
}

/// What a synchronous request (IsSync) waits on: Ok once the messages are sent; the
/// failure, masked and without the code, when every provider fails; and the timeout.
async fn synchronous_sends_report_the_outcome(b: Backend) {
    // Every provider fails: an SMS gateway that refuses, another that is down, and
    // an SMTP server that is not there.
    let refusing = SmsEndpoint::start(usize::MAX).await;
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = refusing.clone();
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.max_attempts = 2;
        let mut down = json_sms("down", &r);
        if let ProviderSettings::HttpSms(h) = &mut down {
            h.url = format!("http://127.0.0.1:{closed_port}/send");
        }
        s.delivery.providers = vec![json_sms("refusing", &r), down, smtp("mail", closed_port)];
        s.delivery.sms = vec!["refusing".into(), "down".into()];
        s.delivery.email = vec!["mail".into()];
    })
    .await;
    app.vishnu().await;
    let txn = app.login_otp(VISHNU, "d").await;
    app.app.outbox_wake.notify_one();
    let rows = messages(&app.app).await;
    let sms = sms_of(&rows, &txn).id.clone();
    let email = rows
        .iter()
        .find(|r| r.channel == "email")
        .unwrap()
        .id
        .clone();
    let wait = Duration::from_secs(10);

    let e = wait_for_outcome(&app.app.db, std::slice::from_ref(&sms), wait)
        .await
        .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "the SMS message to {} could not be delivered after 2 attempts: refusing: 127.0.0.1 answered HTTP 503",
            otpgate::core::mask::phone(VISHNU_MOBILE)
        )),
        "{e}"
    );
    assert!(e.contains("; down: cannot connect to 127.0.0.1"), "{e}");
    let code = code_in(&refusing.received()[0]);
    assert!(!e.contains("9876543") && !e.contains(&code), "{e}");

    let e = wait_for_outcome(&app.app.db, &[email, sms], wait)
        .await
        .unwrap_err();
    assert!(
        e.contains("Vis*********@sy****.com")
            || e.contains(&otpgate::core::mask::phone(VISHNU_MOBILE)),
        "{e}"
    );
    assert!(!e.contains(VISHNU) && !e.contains(&code), "{e}");

    // Sent: Ok.
    let gateway = SmsEndpoint::start(0).await;
    let g = gateway.clone();
    let ok = spawn_with(b, move |s| {
        s.delivery.providers = vec![json_sms("gateway", &g)];
        s.delivery.sms = vec!["gateway".into()];
    })
    .await;
    ok.vishnu().await;
    let txn = ok.login_otp(VISHNU, "d").await;
    ok.app.outbox_wake.notify_one();
    let ids: Vec<String> = messages(&ok.app).await.into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(wait_for_outcome(&ok.app.db, &ids, wait).await, Ok(()));
    let code = code_in(&gateway.received()[0]);
    assert!(ok.login_app(&txn, &code, "d").await.json()["User"].is_object());

    // Still retrying when the wait ends: the answer says so.
    refusing.fail_next(usize::MAX);
    let r = refusing.clone();
    let slow = spawn_with(b, move |s| {
        s.delivery.max_attempts = 50;
        s.delivery.retry_base_ms = 60_000;
        s.delivery.providers = vec![json_sms("refusing", &r)];
        s.delivery.sms = vec!["refusing".into()];
        s.otp.channels = vec!["sms".into()];
    })
    .await;
    slow.vishnu().await;
    slow.login_otp(VISHNU, "d").await;
    let ids: Vec<String> = messages(&slow.app)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    let e = wait_for_outcome(&slow.app.db, &ids, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "the SMS message to {} was not delivered within 300 ms",
            otpgate::core::mask::phone(VISHNU_MOBILE)
        )),
        "{e}"
    );
}

/// A Twilio-style provider: form encoding, basic auth, success by status code only.
async fn form_encoded_sms_with_basic_auth(b: Backend) {
    let gateway = SmsEndpoint::start(0).await;
    let g = gateway.clone();
    let app = spawn_with(b, move |s| {
        let mut twilio = json_sms("twilio", &g);
        if let ProviderSettings::HttpSms(h) = &mut twilio {
            h.headers.clear();
            h.basic_auth = Some(otpgate::config::BasicAuth {
                username: "AC1".into(),
                password: "auth-token".into(),
            });
            h.encoding = "form".into();
            h.body = Some(json!({"To": "{to}", "From": "{sender}", "Body": "{text}"}));
            h.query = BTreeMap::from([("digits".into(), "{to_digits}".into())]);
            h.success_status = vec![201];
            h.success_field = None;
            h.sender = "+15005550006".into();
        }
        s.delivery.providers = vec![twilio];
        s.delivery.sms = vec!["twilio".into()];
    })
    .await;
    app.vishnu().await;
    let txn = app.login_otp(VISHNU, "d").await;
    outbox_until(&app.app, |r| {
        r.iter().any(|m| m.channel == "sms" && m.state == "sent")
    })
    .await;
    let r = &gateway.received()[0];
    assert_eq!(
        r.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("AC1:auth-token");
    assert_eq!(r.headers["authorization"], format!("Basic {basic}"));
    assert_eq!(r.query, "digits=919876543219");
    let form: BTreeMap<String, String> = url_form(&r.body);
    assert_eq!(form["To"], VISHNU_MOBILE);
    assert_eq!(form["From"], "+15005550006");
    let code = first_digits(&form["Body"]);
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
}

fn url_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

both!(
    smtp_delivers_the_code_in_the_organisations_words,
    smtp_speaks_tls_and_starttls_and_refuses_what_is_not_safe,
    http_sms_is_retried_until_the_provider_takes_it,
    a_failing_provider_hands_over_to_the_next_and_cools_down,
    a_message_fails_after_the_last_attempt_and_an_operator_retries_it,
    queued_messages_are_sent_after_a_restart,
    failed_messages_are_retried_only_while_their_code_works,
    two_dispatchers_send_each_message_once,
    synchronous_sends_report_the_outcome,
    form_encoded_sms_with_basic_auth,
);
