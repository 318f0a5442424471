//! otpgate's own API keys: `otpgate apikey create|list|revoke`, and `_ProxyDetails`
//! AuthType APIKEY with APIKey on ADM_GenerateOTP; `summit.password_auth = false`.

use diesel::prelude::*;
use otpgate::db::schema::{api_keys, users};
use otpgate::state::AppState;
use serde_json::{Value, json};

use crate::both;
use crate::schemas::validate;
use crate::support::*;

/// ADM_GenerateOTP's authenticated form with an API key, naming Vishnu.
fn with_key(auth_type: &str, key: &str) -> Value {
    json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
        "_ProxyDetails": {"SAASOrgID": "0", "LoginUID": 0, "RequestType": "mobile", "ProxyID": 0,
            "OrgID": "1", "TokenID": "", "ReturnType": "JSON", "AuthType": auth_type, "APIKey": key},
        "objUserInformation": {"DomainId": 1, "UserID": 836, "LoginUID": "1xxxx4", "UserName": "vishnu"}}})
}

fn xml_with_key(key: &str) -> String {
    format!(
        "<CommonWS_JsonObjCall><ServiceName>ADM_GenerateOTP</ServiceName><objCommonParameters><_ProxyDetails><AuthType>APIKey</AuthType><APIKey>{key}</APIKey><ReturnType>XML</ReturnType></_ProxyDetails><objUserInformation><UserID>836</UserID></objUserInformation></objCommonParameters></CommonWS_JsonObjCall>"
    )
}

fn soap_with_key(key: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><tem:CommonWS_JsonObjCall xmlns:tem=\"http://tempuri.org/\"><tem:ServiceName>ADM_GenerateOTP</tem:ServiceName><tem:objCommonParameters><tem:_ProxyDetails><tem:AuthType>apikey</tem:AuthType><tem:APIKey>{key}</tem:APIKey></tem:_ProxyDetails><tem:objUserInformation><tem:UserID>836</tem:UserID></tem:objUserInformation></tem:objCommonParameters></tem:CommonWS_JsonObjCall></soapenv:Body></soapenv:Envelope>"
    )
}

fn is_session_token(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A success of the authenticated form: no error, a session, the code sent.
async fn assert_sent(sink: &std::path::Path, a: &Answer) -> String {
    assert_eq!(a.status, 200, "{}", a.text);
    let v = a.json();
    assert_eq!(v["Errors"], "", "{}", a.text);
    assert!(is_session_token(&v["TokenID"]), "{}", a.text);
    let comm = &v["OutputObject"]["OTP_Communication"][0];
    assert_eq!(comm["AuthenticationType"], "password");
    assert_eq!(comm["Message"], "");
    let txn = transaction_id(&v);
    assert_eq!(sink_code(sink, &txn, Some("email")).await.len(), 6);
    v["TokenID"].as_str().unwrap_or_default().to_string()
}

/// A business refusal: HTTP 200, the envelope with `Errors`, no session.
fn assert_refused(a: &Answer, text: &str) {
    assert_eq!(a.status, 200, "{}", a.text);
    let v = a.json();
    assert_eq!(v["Errors"], text, "{}", a.text);
    assert_eq!(v["TokenID"], Value::Null);
    assert_eq!(v["OutputObject"], Value::Null);
}

async fn key_row(app: &AppState, id: i64) -> Option<(Option<i64>, Option<i64>)> {
    app.db
        .run(move |c| {
            Ok(api_keys::table
                .find(id)
                .select((api_keys::last_used_at, api_keys::expires_at))
                .first(c)
                .optional()?)
        })
        .await
        .unwrap()
}

/// Creates a key for `login` through the core, as `apikey create` does.
async fn create_key(app: &AppState, login: &str, expires_at: Option<i64>) -> (i64, String) {
    let login = login.to_string();
    app.db
        .run(move |c| {
            let k = otpgate::core::api_keys::create(c, &login, "test", expires_at)?;
            Ok((k.id, k.key))
        })
        .await
        .unwrap()
}

/// The whole life of a key as an operator and a client see it: created by the CLI,
/// used in JSON, XML and SOAP, listed, expired, revoked, and gone with its user.
async fn key_lifecycle_through_the_cli(b: Backend) {
    let db = TestDb::new(b);
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone();
    let run = |args: &[&str]| otpgate(&url, dir.path(), args);
    let o = run(&[
        "user",
        "add",
        "--user-id",
        "836",
        "--login-uid",
        "1xxxx4",
        "--user-name",
        "Vishnu Kumar",
        "--login-name",
        "vishnu",
        "--email",
        "Vishnu.kumar@syntel.com",
        "--mobile",
        "9876543219",
        "--country-code",
        "91",
    ]);
    assert!(o.status.success(), "{}", output_text(&o));

    let o = run(&["apikey", "create", "--user", "nobody"]);
    assert!(!o.status.success());
    assert!(
        output_text(&o).contains("no user has the login 'nobody'"),
        "{}",
        output_text(&o)
    );
    let o = run(&[
        "apikey",
        "create",
        "--user",
        "vishnu",
        "--expires",
        "2000-01-01",
    ]);
    assert!(
        !o.status.success() && output_text(&o).contains("that day is over"),
        "{}",
        output_text(&o)
    );

    // The key alone on standard output: 32 bytes in base64.
    let o = run(&[
        "apikey",
        "create",
        "--user",
        "VISHNU",
        "--name",
        "ci runner",
        "--days",
        "30",
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let key = String::from_utf8(o.stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(key.len(), 44, "{key}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("created API key 1 for vishnu"),
        "{}",
        output_text(&o)
    );
    let o = run(&[
        "apikey",
        "create",
        "--user",
        "1xxxx4",
        "--expires",
        "2999-12-31",
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let second = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert_ne!(key, second);

    let mut settings = test_settings(&url, dir.path());
    settings.delivery.file_path = dir.path().join("deliveries.jsonl");
    let sink = settings.delivery.file_path.clone();
    let gw = start_gateway(settings).await;
    let app = Client::new(gw.port);

    // Only the hash is stored.
    let stored: Vec<String> = gw
        .app
        .db
        .run(|c| Ok(api_keys::table.select(api_keys::key_hash).load(c)?))
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.contains(&otpgate::core::keys::sha256_hex(key.as_bytes())));
    assert!(!stored.iter().any(|h| h.contains(&key)));
    assert_eq!(key_row(&gw.app, 1).await.unwrap().0, None, "never used yet");

    // JSON, XML and SOAP, as the schemas describe them.
    for (schema, ct, body) in [
        (
            "summit/request.schema.json",
            "application/json",
            with_key("APIKEY", &key).to_string(),
        ),
        ("summit/envelope.xsd", "application/xml", xml_with_key(&key)),
    ] {
        validate(schema, ct, &body).unwrap_or_else(|e| panic!("{schema}: {e}\n{body}"));
    }
    let token = assert_sent(&sink, &app.summit(with_key("APIKEY", &key)).await).await;
    let with_token = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
        "_ProxyDetails": {"TokenID": token}, "objUserInformation": {"UserID": 836}}});
    let a = app.summit(with_token).await;
    assert_eq!(
        a.json()["TokenID"],
        token.as_str(),
        "the session works: {}",
        a.text
    );

    let a = app
        .post(ENDPOINT, "application/xml", xml_with_key(&key))
        .await;
    assert!(a.content_type.starts_with("application/xml"), "{}", a.text);
    let doc = a.xml();
    assert_eq!(doc.value["Errors"], "", "{}", a.text);
    assert!(is_session_token(&doc.value["TokenID"]), "{}", a.text);
    let txn = doc.value["OutputObject"]["OTP_Communication"][0]["TransactionID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sink_code(&sink, &txn, Some("sms")).await.len(), 6);

    let a = app
        .post(ENDPOINT, "text/xml; charset=utf-8", soap_with_key(&second))
        .await;
    assert!(a.text.starts_with("<s:Envelope"), "{}", a.text);
    let doc = a.xml();
    assert_eq!(doc.value["Errors"], "", "{}", a.text);
    assert!(is_session_token(&doc.value["TokenID"]), "{}", a.text);

    // Listed with its last use, never with the key.
    let o = run(&["apikey", "list", "--json"]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(!output_text(&o).contains(&key) && !output_text(&o).contains(&second));
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(
        (
            &listed[0]["id"],
            &listed[0]["user"],
            &listed[0]["name"],
            &listed[0]["state"]
        ),
        (
            &json!(1),
            &json!("vishnu"),
            &json!("ci runner"),
            &json!("live")
        )
    );
    assert!(listed[0]["last_used"].is_string(), "{listed}");
    assert!(listed[0]["created"].is_string() && listed[0]["expires"].is_string());
    assert_eq!(listed[1]["expires"], "3000-01-01 00:00:00Z");
    let o = run(&["apikey", "list", "--user", "vishnu"]);
    let table = output_text(&o);
    assert!(o.status.success(), "{table}");
    assert!(table.starts_with("ID  USER"), "{table}");
    assert!(
        table.contains("ci runner") && !table.contains(&key),
        "{table}"
    );
    let o = run(&["apikey", "list", "--user", "nobody"]);
    assert!(!o.status.success());

    // Expired.
    gw.app
        .db
        .run(|c| {
            diesel::update(api_keys::table.find(2))
                .set(api_keys::expires_at.eq(otpgate::db::now_ms() - 1))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    assert_refused(
        &app.summit(with_key("APIKEY", &second)).await,
        "The API key has expired.",
    );
    let o = run(&["apikey", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed[1]["state"], "expired");

    // Revoked.
    let o = run(&["apikey", "revoke", "1"]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert_refused(
        &app.summit(with_key("APIKEY", &key)).await,
        "Invalid API key.",
    );
    let o = run(&["apikey", "revoke", "1"]);
    assert!(
        !o.status.success() && output_text(&o).contains("already revoked"),
        "{}",
        output_text(&o)
    );
    let o = run(&["apikey", "revoke", "99"]);
    assert!(
        !o.status.success() && output_text(&o).contains("no API key has the id 99"),
        "{}",
        output_text(&o)
    );

    // Gone with the user.
    let o = run(&["apikey", "create", "--user", "vishnu"]);
    let third = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert_sent(&sink, &app.summit(with_key("APIKEY", &third)).await).await;
    let left: i64 = gw
        .app
        .db
        .run(|c| {
            diesel::delete(users::table.find(836)).execute(c)?;
            Ok(api_keys::table.count().get_result(c)?)
        })
        .await
        .unwrap();
    assert_eq!(left, 0, "the user's keys are deleted with the user");
    assert_refused(
        &app.summit(with_key("APIKEY", &third)).await,
        "Invalid API key.",
    );
    gw.handle.stop(false).await;
}

/// A client of a gateway started with `start_gateway`.
struct Client {
    base: String,
    client: reqwest::Client,
}

impl Client {
    fn new(port: u16) -> Client {
        Client {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, content_type: &str, body: String) -> Answer {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Answer {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            retry_after: None,
            request_id: None,
            text: resp.text().await.unwrap(),
        }
    }

    async fn summit(&self, body: Value) -> Answer {
        self.post(ENDPOINT, "application/json", body.to_string())
            .await
    }
}

/// AuthType APIKEY in any case; unknown keys, a missing APIKey, and another user's
/// details are refused; the last use is written at most once a minute.
async fn apikey_in_any_case(b: Backend) {
    let app = spawn_with(b, |s| s.otp.max_sends = 50).await;
    app.vishnu().await;
    let (id, key) = create_key(&app.app, "vishnu", None).await;
    for spelling in ["APIKEY", "APIKey", "apikey"] {
        assert_sent(&app.sink, &app.summit(with_key(spelling, &key)).await).await;
    }
    // A key with spaces around it is the same key.
    assert_sent(
        &app.sink,
        &app.summit(with_key("APIKEY", &format!(" {key} "))).await,
    )
    .await;

    assert_refused(
        &app.summit(with_key(
            "APIKEY",
            "P9DYAvNptCmTgmVLTllwuIUfAJGk83TiSftXIYR/fkQ=",
        ))
        .await,
        "Invalid API key.",
    );
    let mut missing = with_key("APIKEY", "");
    assert_refused(
        &app.summit(missing.clone()).await,
        "APIKey is required in _ProxyDetails.",
    );
    missing["objCommonParameters"]["_ProxyDetails"]
        .as_object_mut()
        .unwrap()
        .remove("APIKey");
    assert_refused(
        &app.summit(missing).await,
        "APIKey is required in _ProxyDetails.",
    );
    let mut other = with_key("APIKey", &key);
    other["objCommonParameters"]["objUserInformation"]["UserID"] = json!(837);
    assert_refused(
        &app.summit(other).await,
        "The user details do not match the authenticated user.",
    );

    // Used several times above, written once.
    let (first, _) = key_row(&app.app, id).await.unwrap();
    let first = first.expect("the use is recorded");
    assert_sent(&app.sink, &app.summit(with_key("APIKEY", &key)).await).await;
    assert_eq!(key_row(&app.app, id).await.unwrap().0, Some(first));
    // A minute later, written again.
    let earlier = first - 61_000;
    app.app
        .db
        .run(move |c| {
            diesel::update(api_keys::table.find(id))
                .set(api_keys::last_used_at.eq(earlier))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    assert_sent(&app.sink, &app.summit(with_key("APIKEY", &key)).await).await;
    let (now, _) = key_row(&app.app, id).await.unwrap();
    assert!(now.is_some_and(|t| t > earlier + 60_000), "{now:?}");

    // A key past its expiry.
    let (_, old) = create_key(&app.app, "vishnu", Some(otpgate::db::now_ms() + 300)).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_refused(
        &app.summit(with_key("APIKEY", &old)).await,
        "The API key has expired.",
    );
}

/// `summit.password_auth = false` refuses user names and passwords, in ADM_GenerateOTP
/// and LoginApp, before any password check; keys, sessions and login codes still work.
async fn password_auth_off(b: Backend) {
    const DISABLED: &str = "Username and password authentication is disabled. Use an API key.";
    let app = spawn_with(b, |s| s.summit.password_auth = false).await;
    app.vishnu().await;
    let form = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
        "_ProxyDetails": {"AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123"},
        "objUserInformation": {"UserID": 836}}});
    assert_refused(&app.summit(form).await, DISABLED);
    let login = json!({"ServiceName": "LoginApp", "objCommonParameters": {
        "_ProxyDetails": {"AuthType": "Form", "UserName": "vishnu", "Password": "Secret#123"}}});
    assert_refused(&app.summit(login).await, DISABLED);
    assert_eq!(
        app.count("audit_events").await,
        0,
        "no password was checked"
    );

    let (_, key) = create_key(&app.app, "vishnu", None).await;
    let token = assert_sent(&app.sink, &app.summit(with_key("APIKEY", &key)).await).await;
    let again = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
        "_ProxyDetails": {"TokenID": token}, "objUserInformation": {"UserID": 836}}});
    assert_eq!(app.summit(again).await.json()["Errors"], "");
    let txn = app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    let code = app.code(&txn, "email").await;
    let a = app.login_app(&txn, &code, "d").await;
    assert!(a.json()["User"].is_object(), "{}", a.text);

    // On by default.
    let app = spawn(b).await;
    app.vishnu().await;
    let form = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
        "_ProxyDetails": {"AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123"},
        "objUserInformation": {"UserID": 836}}});
    assert_sent(&app.sink, &app.summit(form).await).await;
}

both!(
    key_lifecycle_through_the_cli,
    apikey_in_any_case,
    password_auth_off
);
