//! A call made with otpgate's session reaches the legacy server with the upstream's
//! credentials instead; sessions otpgate does not know pass through, or are refused.

use otpgate::config::UnknownTokens;

use crate::both;
use serde_json::{Value, json};

use super::*;
use crate::support::legacy::LegacyServer;

const INVALID: &str = "The TokenID is invalid or has expired. Please log in again.";

async fn session(app: &TestApp) -> String {
    app.vishnu().await;
    let a = app
        .summit(
            json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123"}}}),
        )
        .await;
    a.json()["User"]["UserDetails"][0]["UserLicenseDetails"]["SessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {}", a.text))
        .to_string()
}

fn with_token(token: &str) -> String {
    format!(
        r#"{{"ServiceName":"IM_LogOrUpdateIncident","objCommonParameters":{{"_ProxyDetails":{{"TokenID":"{token}","AuthType":"FORM","LoginUID":0,"UserName":"","ProxyID":0,"ReturnType":"JSON"}},"objIncident":{{"Description":"Printer \u00e9 on fire","Priority":  3}}}}}}"#
    )
}

/// The part of a forwarded body outside `_ProxyDetails`, to compare with what was sent.
fn outside_proxy_details(body: &str) -> String {
    let start = body
        .find("{\"TokenID\"")
        .or_else(|| body.find("{\"AuthType\""))
        .unwrap();
    let end = start + body[start..].find('}').unwrap();
    format!("{}{}", &body[..start], &body[end..])
}

async fn a_session_is_exchanged_for_the_service_key(b: Backend) {
    let legacy = LegacyServer::start().await;
    let app = fronting(b, &legacy, |s| {
        s.upstream.summit.service_api_key = Some("service-key-XYZ".into());
    })
    .await;
    let token = session(&app).await;
    // Idle for a while: the forwarded call is activity of the session.
    let hash = otpgate::core::sessions::key(&token);
    let last_seen = |set: Option<i64>| {
        let hash = hash.clone();
        app.app.db.run(move |c| {
            use diesel::prelude::*;
            use otpgate::db::schema::sessions;
            if let Some(at) = set {
                diesel::update(sessions::table.find(&hash))
                    .set(sessions::last_seen_at.eq(at))
                    .execute(c)?;
            }
            Ok(sessions::table
                .find(&hash)
                .select(sessions::last_seen_at)
                .first::<i64>(c)?)
        })
    };
    let idle_since = otpgate::db::now_ms() - 30 * 60_000;
    last_seen(Some(idle_since)).await.unwrap();
    let sent = with_token(&token);
    let a = app
        .post(ENDPOINT, Some("application/json"), sent.clone())
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert!(last_seen(None).await.unwrap() > idle_since + 29 * 60_000);
    let got = legacy.only();
    let body = got.text();
    assert!(
        !body.to_lowercase().contains(&token.to_lowercase()),
        "{body}"
    );
    assert_eq!(
        got.json()["objCommonParameters"]["_ProxyDetails"],
        json!({"AuthType": "APIKEY", "LoginUID": "1xxxx4", "UserName": "Vishnu Kumar",
               "ProxyID": 0, "ReturnType": "JSON", "APIKey": "service-key-XYZ"})
    );
    assert_eq!(
        outside_proxy_details(&body),
        outside_proxy_details(&sent),
        "every other byte stays as sent"
    );
}

async fn a_users_own_upstream_key_comes_first(b: Backend) {
    let legacy = LegacyServer::start().await;
    let app = fronting(b, &legacy, |s| {
        s.upstream.summit.service_api_key = Some("service-key".into());
    })
    .await;
    let token = session(&app).await;
    let keys = app.app.keys.clone();
    app.app
        .db
        .run(move |c| otpgate::core::upstream_keys::set(c, &keys, "vishnu", Some("own-key-123")))
        .await
        .unwrap();
    app.post(ENDPOINT, Some("application/json"), with_token(&token))
        .await;
    assert_eq!(
        legacy.only().json()["objCommonParameters"]["_ProxyDetails"]["APIKey"],
        "own-key-123"
    );
    // Stored sealed, not in clear.
    let sealed: Vec<Vec<u8>> = app
        .app
        .db
        .run(|c| {
            use diesel::prelude::*;
            Ok(otpgate::db::schema::upstream_keys::table
                .select(otpgate::db::schema::upstream_keys::sealed)
                .load(c)?)
        })
        .await
        .unwrap();
    assert_eq!(sealed.len(), 1);
    assert!(!sealed[0].windows(11).any(|w| w == b"own-key-123"));
}

async fn xml_and_soap_sessions_are_exchanged_in_place(b: Backend) {
    let legacy = LegacyServer::start().await;
    let app = fronting(b, &legacy, |s| {
        s.upstream.summit.service_api_key = Some("svc&key".into());
    })
    .await;
    let token = session(&app).await;
    let xml = format!(
        "<Request><ServiceName>IM_GetIncident</ServiceName><objCommonParameters><_ProxyDetails><TokenID>{token}</TokenID><AuthType>FORM</AuthType><OrgID>1</OrgID></_ProxyDetails><Ticket>42</Ticket></objCommonParameters></Request>"
    );
    let soap = format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a:CommonWS_JsonObjCall xmlns:a="http://tempuri.org/"><a:ServiceName>IM_GetIncident</a:ServiceName><a:objCommonParameters><a:_ProxyDetails><a:TokenID>{token}</a:TokenID><a:ReturnType>XML</a:ReturnType></a:_ProxyDetails></a:objCommonParameters></a:CommonWS_JsonObjCall></s:Body></s:Envelope>"#
    );
    app.post(ENDPOINT, Some("application/xml"), xml).await;
    app.post(ENDPOINT, Some("text/xml"), soap).await;
    let got = legacy.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].text(),
        "<Request><ServiceName>IM_GetIncident</ServiceName><objCommonParameters><_ProxyDetails><AuthType>APIKEY</AuthType><APIKey>svc&amp;key</APIKey><LoginUID>1xxxx4</LoginUID><UserName>Vishnu Kumar</UserName><OrgID>1</OrgID></_ProxyDetails><Ticket>42</Ticket></objCommonParameters></Request>"
    );
    assert_eq!(
        got[1].text(),
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a:CommonWS_JsonObjCall xmlns:a="http://tempuri.org/"><a:ServiceName>IM_GetIncident</a:ServiceName><a:objCommonParameters><a:_ProxyDetails><a:AuthType>APIKEY</a:AuthType><a:APIKey>svc&amp;key</a:APIKey><a:LoginUID>1xxxx4</a:LoginUID><a:UserName>Vishnu Kumar</a:UserName><a:ReturnType>XML</a:ReturnType></a:_ProxyDetails></a:objCommonParameters></a:CommonWS_JsonObjCall></s:Body></s:Envelope>"#
    );
}

async fn dead_sessions_are_answered_here_and_never_forwarded(b: Backend) {
    let legacy = LegacyServer::start().await;
    let app = fronting(b, &legacy, |s| {
        s.upstream.summit.service_api_key = Some("k".into());
    })
    .await;
    // Shaped like otpgate's, but not one of its live sessions.
    let forged = "AB".repeat(32);
    let a = app
        .post(ENDPOINT, Some("application/json"), with_token(&forged))
        .await;
    assert_eq!((a.status, a.errors()), (200, INVALID.to_string()));
    // And in XML, the answer is XML.
    let xml = format!(
        "<Request><ServiceName>IM_X</ServiceName><objCommonParameters><_ProxyDetails><TokenID>{forged}</TokenID></_ProxyDetails></objCommonParameters></Request>"
    );
    let a = app.post(ENDPOINT, Some("application/xml"), xml).await;
    assert!(
        a.text.contains(INVALID) && a.text.starts_with("<CommonWS_JsonObjCallResult"),
        "{}",
        a.text
    );
    assert!(legacy.received().is_empty());
}

async fn legacy_sessions_pass_through_until_refused(b: Backend) {
    let legacy_token = "0F".repeat(144);
    for (mode, forwarded) in [
        (UnknownTokens::Forward, true),
        (UnknownTokens::Refuse, false),
    ] {
        let legacy = LegacyServer::start().await;
        let app = fronting(b, &legacy, |s| s.upstream.summit.unknown_tokens = mode).await;
        let sent = with_token(&legacy_token);
        let a = app
            .post(ENDPOINT, Some("application/json"), sent.clone())
            .await;
        if forwarded {
            assert_eq!(legacy.only().text(), sent, "unchanged");
        } else {
            assert_eq!(a.errors(), INVALID);
            assert!(legacy.received().is_empty());
        }
    }
}

async fn requests_with_their_own_api_key_go_through_unchanged(b: Backend) {
    let legacy = LegacyServer::start().await;
    let app = fronting(b, &legacy, |s| {
        s.upstream.summit.unknown_tokens = UnknownTokens::Refuse
    })
    .await;
    let sent = incident(r#","TokenID":"whatever""#);
    app.post(ENDPOINT, Some("application/json"), sent.clone())
        .await;
    assert_eq!(legacy.only().text(), sent);
}

async fn without_any_upstream_key_the_session_is_not_forwarded(b: Backend) {
    let legacy = LegacyServer::start().await;
    let app = fronting(b, &legacy, |_| {}).await;
    let token = session(&app).await;
    let a = app
        .post(ENDPOINT, Some("application/json"), with_token(&token))
        .await;
    assert_eq!(
        a.errors(),
        "This session cannot be used for services of the upstream server: no upstream API key is set for its user."
    );
    assert!(legacy.received().is_empty());
    let _: Value = a.json();
}

/// A password login routed to the legacy server goes as it came, even with an old
/// TokenID beside it; a session that cannot be taken out of the body is refused.
async fn password_logins_pass_and_ambiguous_sessions_stop(b: Backend) {
    let legacy = LegacyServer::start().await;
    let app = fronting(b, &legacy, |s| {
        s.upstream.summit.service_api_key = Some("k".into());
        s.upstream
            .summit
            .routes
            .insert("LoginApp:FORM".into(), otpgate::config::RouteTo::Upstream);
    })
    .await;
    let forged = "AB".repeat(32);
    let form = format!(
        r#"{{"ServiceName":"LoginApp","objCommonParameters":{{"_ProxyDetails":{{"AuthType":"FORM","UserName":"b","Password":"pw","TokenID":"{forged}"}}}}}}"#
    );
    let a = app
        .post(ENDPOINT, Some("application/json"), form.clone())
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert_eq!(legacy.only().text(), form);

    // Password logins go upstream here: the session comes from an OTP login.
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "email").await;
    let user = app.login_app(&txn, &code, "d").await.json();
    let token = user["User"]["UserDetails"][0]["UserLicenseDetails"]["SessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let twice = format!(
        r#"{{"ServiceName":"IM_X","objCommonParameters":{{"_ProxyDetails":{{"TokenID":"{token}"}},"_proxydetails":{{"TokenID":"{token}"}}}}}}"#
    );
    let xml_twice = format!(
        "<R><ServiceName>IM_X</ServiceName><objCommonParameters><_ProxyDetails><TokenID>{token}</TokenID><TokenID>{token}</TokenID></_ProxyDetails></objCommonParameters></R>"
    );
    let a = app.post(ENDPOINT, Some("application/json"), twice).await;
    assert_eq!(
        a.errors(),
        "The session in _ProxyDetails cannot be exchanged for the upstream server."
    );
    let a = app.post(ENDPOINT, Some("application/xml"), xml_twice).await;
    assert!(a.text.contains("cannot be exchanged"), "{}", a.text);
    assert_eq!(legacy.received().len(), 1, "neither went upstream");
}

both!(
    password_logins_pass_and_ambiguous_sessions_stop,
    a_session_is_exchanged_for_the_service_key,
    a_users_own_upstream_key_comes_first,
    xml_and_soap_sessions_are_exchanged_in_place,
    dead_sessions_are_answered_here_and_never_forwarded,
    legacy_sessions_pass_through_until_refused,
    requests_with_their_own_api_key_go_through_unchanged,
    without_any_upstream_key_the_session_is_not_forwarded,
);

/// `otpgate user set LOGIN --upstream-api-key-stdin` stores the key the exchange uses;
/// `--clear-upstream-api-key` brings the service key back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_and_clears_a_users_upstream_key() {
    let legacy = LegacyServer::start().await;
    let (dir, url) = scratch_sqlite("gw.db");
    let (ok, said) = run_otpgate(
        &url,
        dir.path(),
        &[
            "user",
            "add",
            "--login-uid",
            "77",
            "--user-name",
            "Ayse Y",
            "--login-name",
            "ayse",
            "--email",
            "ayse@example.com",
            "--password",
            "Secret#123",
        ],
    );
    assert!(ok, "{said}");
    let o = otpgate_with_stdin(
        &url,
        dir.path(),
        &["user", "set", "AYSE", "--upstream-api-key-stdin"],
        "ayse-own-key\n",
    );
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        !output_text(&o).contains("ayse-own-key"),
        "the key is never echoed"
    );
    let (ok, said) = run_otpgate(
        &url,
        dir.path(),
        &["user", "set", "nobody", "--clear-upstream-api-key"],
    );
    assert!(
        !ok && said.contains("no user has the login 'nobody'"),
        "{said}"
    );

    let mut s = test_settings(&url, dir.path());
    s.upstream.summit.url = Some(format!("{}{LEGACY_PATH}", legacy.base));
    s.upstream.summit.service_api_key = Some("service-key".into());
    let gw = start_gateway(s).await;
    let base = format!("http://127.0.0.1:{}", gw.port);
    let client = reqwest::Client::new();
    let call = |body: String| {
        client
            .post(format!("{base}{ENDPOINT}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let login = call(
        json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "FORM", "UserName": "ayse", "Password": "Secret#123"}}})
        .to_string(),
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    let token = login["User"]["UserDetails"][0]["UserLicenseDetails"]["SessionId"]
        .as_str()
        .unwrap()
        .to_string();
    call(with_token(&token)).await.unwrap();
    let proxy = |r: &crate::support::legacy::Received| {
        r.json()["objCommonParameters"]["_ProxyDetails"].clone()
    };
    let first = proxy(&legacy.received()[0]);
    assert_eq!(
        (first["APIKey"].clone(), first["LoginUID"].clone()),
        (json!("ayse-own-key"), json!(77))
    );

    let (ok, said) = run_otpgate(
        &url,
        dir.path(),
        &["user", "set", "77", "--clear-upstream-api-key"],
    );
    assert!(ok, "{said}");
    call(with_token(&token)).await.unwrap();
    assert_eq!(proxy(&legacy.received()[1])["APIKey"], "service-key");
    gw.handle.stop(false).await;
}
