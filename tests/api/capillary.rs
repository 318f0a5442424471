//! The Capillary auth API (/auth/v1): the seed's requests, the token → generate →
//! validate flow for every identifier type on mobile and web, every failure code,
//! the per-brand limits, session expiry and the payload hash.

use diesel::prelude::*;
use otpgate::cli::{BrandSettings, save_brand};
use otpgate::core::brands;
use otpgate::db::capillary_sessions::{self, CapSession};
use otpgate::db::schema::capillary_sessions as sessions_t;
use otpgate::db::{challenges, now_ms};
use otpgate::dialects::capillary::codes as cap;
use otpgate::dialects::capillary::hash::payload_hash;
use otpgate::dialects::capillary::tokens::{Claims, jwt_key, verify_token};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

const HASH_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

async fn brand(app: &TestApp, name: &str, settings: BrandSettings) {
    let a = app.app.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || save_brand(&a, &name, &settings, false))
        .await
        .unwrap()
        .expect("brand saved");
}

impl TestApp {
    async fn cap(&self, path: &str, body: Value) -> Answer {
        self.post(path, Some("application/json"), body.to_string())
            .await
    }

    /// token/generate on mobile (`web` false) or web; returns the sessionId.
    async fn cap_session(&self, web: bool, brand: &str, kind: &str, value: &str) -> String {
        let a = self
            .cap(
                &route(web, "token/generate"),
                json!({"identifierType": kind, "identifierValue": value, "brand": brand, "deviceId": "dev-1"}),
            )
            .await;
        let v = a.json();
        assert_eq!(v["status"]["success"], true, "{}", a.text);
        v["user"]["sessionId"].as_str().unwrap().to_string()
    }

    /// The code of a session's latest OTP, from the delivery sink.
    async fn cap_code(&self, session_id: &str, channel: &str) -> String {
        let subject = brands::subject(session_id);
        let id = self
            .app
            .db
            .run(move |c| {
                Ok(challenges::latest_for_subject(
                    c,
                    &subject,
                    brands::PURPOSE,
                )?)
            })
            .await
            .unwrap()
            .expect("an OTP was generated")
            .id;
        self.code(&id, channel).await
    }

    async fn cap_session_row(&self, id: &str) -> CapSession {
        let id = id.to_string();
        self.app
            .db
            .run(move |c| Ok(capillary_sessions::find(c, &id)?))
            .await
            .unwrap()
            .expect("session stored")
    }
}

fn route(web: bool, op: &str) -> String {
    if web {
        format!("/auth/v1/web/{op}")
    } else {
        format!("/auth/v1/{op}")
    }
}

fn body(kind: &str, value: &str, brand: &str, session: &str) -> Value {
    json!({"identifierType": kind, "identifierValue": value, "brand": brand, "deviceId": "dev-1", "sessionId": session})
}

fn with_otp(mut v: Value, otp: impl Into<Value>) -> Value {
    v["otp"] = otp.into();
    v
}

/// The status of an answer: (HTTP status, code, message), after checking the shape.
fn status(a: &Answer) -> (u16, i64, String) {
    let v = a.json();
    let s = &v["status"];
    assert!(
        s["success"].is_boolean() && s["code"].is_i64() && s["message"].is_string(),
        "not the status shape: {}",
        a.text
    );
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );
    (
        a.status,
        s["code"].as_i64().unwrap(),
        s["message"].as_str().unwrap().to_string(),
    )
}

fn failed(a: &Answer, code: i64) {
    let (http, got, message) = status(a);
    assert_eq!((http, got), (200, code), "{}", a.text);
    assert_eq!(a.json()["status"]["success"], false);
    assert_eq!(
        a.json().as_object().unwrap().len(),
        1,
        "a failure is the status alone: {}",
        a.text
    );
    assert!(!message.is_empty());
}

fn claims(app: &TestApp, token: &Value) -> Claims {
    verify_token(&jwt_key(&app.app), token.as_str().expect("a token"))
        .unwrap_or_else(|| panic!("not a valid token of ours: {token}"))
}

/// A curl command of the seed: its path, headers and body.
fn parse_curl(text: &str) -> (String, Vec<(String, String)>, String) {
    let quoted = |s: &str| -> String {
        let start = s.find('\'').unwrap() + 1;
        let end = s[start..].find('\'').unwrap() + start;
        s[start..end].to_string()
    };
    let url = quoted(&text[text.find("--location").unwrap()..]);
    let path = url["https://".len()..][url["https://".len()..].find('/').unwrap()..].to_string();
    let mut headers = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("--header") {
        let h = quoted(&rest[i..]);
        let (k, v) = h.split_once(": ").unwrap();
        headers.push((k.to_string(), v.to_string()));
        rest = &rest[i + 8..];
    }
    let data_at = text.find("--data").unwrap();
    (path, headers, quoted(&text[data_at..]))
}

/// The request bodies the scenarios send (fixtures/capillary/seed-002-*-request.json)
/// are the curl commands' --data, byte for byte.
#[test]
fn the_seed_request_bodies_are_the_curl_data_verbatim() {
    for kind in ["mobile", "web"] {
        let (_, _, data) = parse_curl(&fixture(&format!(
            "capillary/seed-002-otp-generate-{kind}.curl"
        )));
        assert_eq!(
            fixture(&format!(
                "capillary/seed-002-otp-generate-{kind}-request.json"
            )),
            data,
            "{kind}"
        );
    }
}

async fn seed_request(app: &TestApp, file: &str) -> Answer {
    let (path, headers, data) = parse_curl(&fixture(file));
    let headers: Vec<(&str, Option<&str>)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    app.request(reqwest::Method::POST, &path, &headers, data)
        .await
}

async fn insert_session(app: &TestApp, s: CapSession) {
    app.app
        .db
        .run(move |c| Ok(capillary_sessions::insert(c, &s)?))
        .await
        .unwrap();
}

fn seeded_session(
    id: &str,
    web: bool,
    kind: &str,
    value: &str,
    device: Option<&str>,
) -> CapSession {
    CapSession {
        id: id.into(),
        brand_key: "docdemo".into(),
        web,
        identifier_type: kind.into(),
        identifier_value: value.into(),
        device_id: device.map(str::to_string),
        user_id: None,
        created_at: now_ms(),
        expires_at: now_ms() + 900_000,
        validated_at: None,
    }
}

/// The seed's two curl requests, verbatim, against the sessions they name.
async fn the_seed_requests_are_answered(b: Backend) {
    let app = spawn(b).await;
    brand(&app, "DocDemo", BrandSettings::default()).await;
    let mobile = "P-7df5e433-17bb-4f02-9ce0-7420ba69c7b4";
    insert_session(
        &app,
        seeded_session(mobile, false, "MOBILE", "919999999993", Some("123456785")),
    )
    .await;
    let a = seed_request(&app, "capillary/seed-002-otp-generate-mobile.curl").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.text,
        fixture("capillary/seed-002-otp-generate-response.json").trim()
    );
    let code = app.cap_code(mobile, "sms").await;
    assert_eq!(code.len(), 6);
    let sent = app.deliveries();
    assert_eq!(sent[0]["destination"], "+919999999993");

    // The seed's web sample carries the address as the documentation page obfuscated
    // it ("[email protected]"): not an e-mail address, so invalid details.
    let web = "P-e766af2a-f676-489e-9b24-8571f7af057b";
    insert_session(
        &app,
        seeded_session(web, true, "EMAIL", "[email protected]", None),
    )
    .await;
    let a = seed_request(&app, "capillary/seed-002-otp-generate-web.curl").await;
    failed(&a, 1519);
    assert_eq!(
        status(&a).2,
        "Invalid details passed. identifierValue must be an e-mail address."
    );
}

async fn every_identifier_type_on_mobile_and_web(b: Backend) {
    let app = spawn(b).await;
    brand(&app, "DocDemo", BrandSettings::default()).await;
    let user = app.vishnu().await;
    let cases = [
        ("MOBILE", "919876543219", "sms", true),
        ("mobile", "+91 99999 00001", "sms", false),
        ("EMAIL", "Vishnu.Kumar@syntel.com", "email", true),
        ("Email", "someone@example.org", "email", false),
        ("USERNAME", "vishnu", "email", true),
    ];
    for web in [false, true] {
        for (kind, value, channel, registered) in cases {
            let at = format!("{kind} {value} web={web}");
            let a = app
                .cap(
                    &route(web, "token/generate"),
                    json!({"identifierType": kind, "identifierValue": value, "brand": "docdemo", "deviceId": "dev-1"}),
                )
                .await;
            let v = a.json();
            assert_eq!(
                v["status"],
                json!({"success": true, "code": 200, "message": "SUCCESS"}),
                "{at}: {}",
                a.text
            );
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["status", "auth", "user"], "{at}");
            let sid = v["user"]["sessionId"].as_str().unwrap().to_string();
            assert!(
                sid.starts_with("P-") && uuid::Uuid::parse_str(&sid[2..]).is_ok(),
                "{sid}"
            );
            assert_eq!(
                v["user"],
                json!({"appRegistered": registered, "sessionId": sid, "role": "VIEW",
                       "userRegisteredForPassword": registered}),
                "{at}"
            );
            assert_eq!(v["auth"]["key"], Value::Null);
            let c = claims(&app, &v["auth"]["token"]);
            assert_eq!(
                (c.rol.as_str(), c.sub.as_str(), c.org.as_str()),
                ("VIEW", sid.as_str(), "DocDemo")
            );
            assert_eq!(c.uid, registered.then(|| user.id.to_string()), "{at}");
            assert_eq!(c.dev.as_deref(), (!web).then_some("dev-1"));
            assert!(c.exp - c.iat == 900);

            let req = body(kind, value, "DOCDEMO", &sid);
            let a = app.cap(&route(web, "otp/generate"), req.clone()).await;
            assert_eq!(
                a.text, r#"{"status":{"success":true,"code":200,"message":"SUCCESS"}}"#,
                "{at}"
            );
            let code = app.cap_code(&sid, channel).await;
            if kind == "USERNAME" {
                // Both of the user's addresses get the code.
                assert_eq!(app.cap_code(&sid, "sms").await, code);
            }

            let a = app
                .cap(
                    &route(web, "otp/validate"),
                    with_otp(req.clone(), code.clone()),
                )
                .await;
            let v = a.json();
            assert_eq!(v["status"]["success"], true, "{at}: {}", a.text);
            let token = claims(&app, &v["auth"]["token"]);
            assert_eq!(token.rol, "USER");
            assert_eq!(token.exp - token.iat, 900);
            if web {
                assert_eq!(v["auth"]["key"], Value::Null, "{at}");
                assert_eq!(v["user"], Value::Null, "{at}");
            } else {
                let key = claims(&app, &v["auth"]["key"]);
                assert_eq!((key.rol.as_str(), key.exp - key.iat), ("AUTH", 3600));
                assert_eq!(
                    v["user"],
                    json!({"appRegistered": registered, "sessionId": null, "role": "USER",
                           "userRegisteredForPassword": registered}),
                    "{at}"
                );
            }
            // The session is spent: neither its code nor a new one work any more.
            failed(
                &app.cap(&route(web, "otp/validate"), with_otp(req.clone(), code))
                    .await,
                1505,
            );
            failed(&app.cap(&route(web, "otp/generate"), req).await, 1505);
        }
    }
}

/// The older request shape and the cap_* headers, and an otp sent as a number.
async fn the_older_shape_and_headers_are_accepted(b: Backend) {
    let app = spawn(b).await;
    brand(&app, "Shell", BrandSettings::default()).await;
    let sid = app
        .cap_session(false, "shell", "MOBILE", "628123456789")
        .await;
    let a = app
        .cap(
            "/gw/auth/v1/otp/generate",
            json!({"brand": "Shell", "deviceId": "dev-1", "mobile_temp": "+62 812-3456-789",
                   "sessionId": sid, "hash": "ignored when the brand has no hash key", "otp": null}),
        )
        .await;
    assert_eq!(status(&a).1, 200, "{}", a.text);
    let code = app.cap_code(&sid, "sms").await;
    let a = app
        .request(
            reqwest::Method::POST,
            "/AUTH/V1/otp/validate",
            &[
                ("content-type", Some("application/json; charset=UTF-8")),
                ("cap_brand", Some("SHELL")),
                ("cap_device_id", Some("dev-1")),
            ],
            json!({"mobileTemp": "628123456789", "sessionId": sid, "otp": code.parse::<i64>().unwrap()})
                .to_string(),
        )
        .await;
    assert_eq!(status(&a).1, 200, "{}", a.text);
    assert_eq!(a.json()["user"]["role"], "USER");
}

async fn every_failure_has_its_code(b: Backend) {
    let app = spawn_with(b, |s| s.max_body_bytes = 4096).await;
    brand(&app, "DocDemo", BrandSettings::default()).await;
    brand(
        &app,
        "MailOnly",
        BrandSettings {
            channels: Some("email".into()),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "DocDemo", "MOBILE", "919999999993")
        .await;
    let good = body("MOBILE", "919999999993", "DocDemo", &sid);
    let generate = route(false, "otp/generate");
    let val = route(false, "otp/validate");

    // 1537: nothing generated yet.
    failed(&app.cap(&val, with_otp(good.clone(), "123456")).await, 1537);
    // 1505: unknown session, and a web session on the mobile route.
    failed(
        &app.cap(
            &generate,
            body("MOBILE", "919999999993", "DocDemo", "P-nope"),
        )
        .await,
        1505,
    );
    let web_sid = app
        .cap_session(true, "DocDemo", "MOBILE", "919999999993")
        .await;
    failed(
        &app.cap(
            &generate,
            body("MOBILE", "919999999993", "DocDemo", &web_sid),
        )
        .await,
        1505,
    );
    // 1507 / 1508 / 1509 / 1541: mismatches with the session.
    failed(
        &app.cap(&generate, body("MOBILE", "919999999994", "DocDemo", &sid))
            .await,
        1507,
    );
    let mut other_device = good.clone();
    other_device["deviceId"] = json!("dev-2");
    failed(&app.cap(&generate, other_device).await, 1508);
    failed(
        &app.cap(&generate, body("MOBILE", "919999999993", "MailOnly", &sid))
            .await,
        1509,
    );
    failed(
        &app.cap(&generate, body("EMAIL", "a@example.com", "DocDemo", &sid))
            .await,
        1541,
    );
    let email_sid = app
        .cap_session(false, "DocDemo", "EMAIL", "a@example.com")
        .await;
    failed(
        &app.cap(
            &generate,
            body("EMAIL", "b@example.com", "DocDemo", &email_sid),
        )
        .await,
        1541,
    );
    // 1546: an identifierType that is none of the three.
    let a = app
        .cap(&generate, body("EXTERNALID", "x", "DocDemo", &sid))
        .await;
    failed(&a, 1546);
    assert_eq!(status(&a).2, "Invalid identifierType passed.");
    // 1515: a USERNAME nobody has.
    failed(
        &app.cap(
            &route(false, "token/generate"),
            body("USERNAME", "nobody", "DocDemo", ""),
        )
        .await,
        1515,
    );
    // 1540: a brand that sends e-mail only, asked to text a mobile number.
    let mail_sid = app
        .cap_session(false, "MailOnly", "MOBILE", "919999999993")
        .await;
    failed(
        &app.cap(
            &generate,
            body("MOBILE", "919999999993", "MailOnly", &mail_sid),
        )
        .await,
        1540,
    );

    // 1506: a wrong code, with the published message clients compare against.
    app.cap(&generate, good.clone()).await;
    let code = app.cap_code(&sid, "sms").await;
    let a = app.cap(&val, with_otp(good.clone(), wrong(&code))).await;
    failed(&a, 1506);
    assert_eq!(status(&a).2, "Invalid OTP.");
    // A code that a newer one replaced is a wrong code. The new code may by chance be
    // the same digits: generate again until it differs (twice, all but surely).
    let mut differs = false;
    for _ in 0..3 {
        let a = app.cap(&generate, good.clone()).await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
        if app.cap_code(&sid, "sms").await != code {
            differs = true;
            break;
        }
    }
    assert!(differs, "three new codes were all the old one");
    failed(&app.cap(&val, with_otp(good.clone(), code)).await, 1506);

    // 1519: invalid details of every kind, each saying what is wrong.
    for (req, reason) in [
        (
            json!({"identifierType": "MOBILE", "identifierValue": "919999999993", "deviceId": "d"}),
            "brand is required.",
        ),
        (
            json!({"identifierType": "MOBILE", "identifierValue": "919999999993", "brand": "Nope", "deviceId": "d"}),
            "The brand 'Nope' is not configured.",
        ),
        (
            json!({"identifierType": "MOBILE", "brand": "DocDemo", "deviceId": "d"}),
            "identifierValue is required.",
        ),
        (
            json!({"identifierType": "MOBILE", "identifierValue": "12", "brand": "DocDemo", "deviceId": "d"}),
            "identifierValue must be a mobile number of 6 to 15 digits.",
        ),
        (
            json!({"identifierType": ["MOBILE"], "identifierValue": "919999999993", "brand": "DocDemo", "deviceId": "d"}),
            "identifierType in the request must be a text value.",
        ),
        (
            json!({"identifierValue": "919999999993", "brand": "DocDemo", "deviceId": "d"}),
            "identifierType is required with identifierValue.",
        ),
        (
            json!({"identifierType": "MOBILE", "identifierValue": "919999999993", "brand": "DocDemo"}),
            "deviceId is required by the mobile API.",
        ),
    ] {
        let a = app.cap(&route(false, "token/generate"), req).await;
        failed(&a, 1519);
        assert_eq!(status(&a).2, format!("Invalid details passed. {reason}"));
    }
    let a = app.cap(&generate, json!({"identifierType": "MOBILE", "identifierValue": "919999999993", "brand": "DocDemo", "deviceId": "dev-1"})).await;
    assert_eq!(
        status(&a).2,
        "Invalid details passed. sessionId is required."
    );
    let a = app.cap(&val, good.clone()).await;
    assert_eq!(status(&a).2, "Invalid details passed. otp is required.");

    // Malformed and unreadable bodies: HTTP 400, same shape.
    for text in ["{\"brand\": ", "[1, 2]", "", "<xml/>"] {
        let a = app.post(&generate, Some("application/json"), text).await;
        let (http, code, _) = status(&a);
        assert_eq!((http, code), (400, 1519), "{text}: {}", a.text);
    }
    // Transport faults keep the shape, with the HTTP status as the code.
    let a = app.cap("/auth/v1/password/validate", json!({})).await;
    assert_eq!(status(&a).0, 404);
    assert_eq!(status(&a).1, 404);
    let a = app
        .request(reqwest::Method::GET, &generate, &[], String::new())
        .await;
    assert_eq!((status(&a).0, status(&a).1), (405, 405));
    let a = app
        .post(
            &generate,
            Some("application/json"),
            format!("{{\"x\":\"{}\"}}", "a".repeat(5000)),
        )
        .await;
    assert_eq!((status(&a).0, status(&a).1), (413, 413));
}

async fn retries_are_limited_per_brand(b: Backend) {
    let app = spawn(b).await;
    brand(&app, "DocDemo", BrandSettings::default()).await;
    brand(
        &app,
        "Strict",
        BrandSettings {
            max_otp_retries: Some(2),
            ..Default::default()
        },
    )
    .await;
    // Default: 5 retries. Four wrong codes are each "Invalid OTP."; the fifth uses up
    // the retries, and then even the right code is refused.
    let sid = app
        .cap_session(false, "DocDemo", "MOBILE", "919999999993")
        .await;
    let req = body("MOBILE", "919999999993", "DocDemo", &sid);
    app.cap(&route(false, "otp/generate"), req.clone()).await;
    let code = app.cap_code(&sid, "sms").await;
    for _ in 0..4 {
        failed(
            &app.cap(
                &route(false, "otp/validate"),
                with_otp(req.clone(), wrong(&code)),
            )
            .await,
            1506,
        );
    }
    let a = app
        .cap(
            &route(false, "otp/validate"),
            with_otp(req.clone(), wrong(&code)),
        )
        .await;
    failed(&a, 1518);
    assert_eq!(
        status(&a).2,
        "Reached the maximum allowed OTP retry attempts, Authenticate form the start."
    );
    // The session is closed: even the right code is refused.
    failed(
        &app.cap(&route(false, "otp/validate"), with_otp(req.clone(), code))
            .await,
        1505,
    );

    let sid = app
        .cap_session(true, "Strict", "EMAIL", "x@example.com")
        .await;
    let req = body("EMAIL", "x@example.com", "Strict", &sid);
    app.cap(&route(true, "otp/generate"), req.clone()).await;
    let code = app.cap_code(&sid, "email").await;
    failed(
        &app.cap(
            &route(true, "otp/validate"),
            with_otp(req.clone(), wrong(&code)),
        )
        .await,
        1506,
    );
    failed(
        &app.cap(
            &route(true, "otp/validate"),
            with_otp(req.clone(), wrong(&code)),
        )
        .await,
        1518,
    );
    failed(
        &app.cap(&route(true, "otp/validate"), with_otp(req, code))
            .await,
        1505,
    );
}

async fn otp_limits_are_per_brand(b: Backend) {
    let app = spawn(b).await;
    brand(
        &app,
        "Limited",
        BrandSettings {
            otp_max_count: Some("2".into()),
            otp_timeout: Some("10".into()),
            ..Default::default()
        },
    )
    .await;
    brand(&app, "Open", BrandSettings::default()).await;
    // One number, two brands: each brand counts its own sends.
    let number = "919000000001";
    let generate = route(false, "otp/generate");
    let open_sid = app.cap_session(false, "Open", "MOBILE", number).await;
    let open = body("MOBILE", number, "Open", &open_sid);
    for _ in 0..4 {
        assert_eq!(status(&app.cap(&generate, open.clone()).await).1, 200);
    }
    let sid = app.cap_session(false, "Limited", "MOBILE", number).await;
    let req = body("MOBILE", number, "Limited", &sid);
    for _ in 0..2 {
        let a = app.cap(&generate, req.clone()).await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
    }
    let a = app.cap(&generate, req).await;
    failed(&a, 1534);
    assert_eq!(
        status(&a).2,
        "Reached the maximum number of OTPs allowed per customer."
    );
    // No limit of its own (null): the gateway's, 5 sends per 15 minutes, still holds,
    // and the other brand's sends did not count against it.
    let a = app.cap(&generate, open.clone()).await;
    assert_eq!(status(&a).1, 200, "{}", a.text);
    failed(&app.cap(&generate, open.clone()).await, 1534);

    // `otpgate brand set` changes a brand's limit: the 5 sends made before still count.
    let a = app.app.clone();
    tokio::task::spawn_blocking(move || {
        save_brand(
            &a,
            "OPEN",
            &BrandSettings {
                otp_max_count: Some("7".into()),
                otp_timeout: Some("60".into()),
                ..Default::default()
            },
            true,
        )
    })
    .await
    .unwrap()
    .unwrap();
    for _ in 0..2 {
        let a = app.cap(&generate, open.clone()).await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
    }
    failed(&app.cap(&generate, open).await, 1534);
}

async fn sessions_expire(b: Backend) {
    let app = spawn(b).await;
    brand(
        &app,
        "DocDemo",
        BrandSettings {
            session_validity: Some(20),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "DocDemo", "MOBILE", "919999999993")
        .await;
    let s = app.cap_session_row(&sid).await;
    assert_eq!(s.expires_at - s.created_at, 20 * 60_000);
    let req = body("MOBILE", "919999999993", "DocDemo", &sid);
    app.cap(&route(false, "otp/generate"), req.clone()).await;
    let first = app.cap_code(&sid, "sms").await;
    // A code past its validity: generate again.
    let subject = brands::subject(&sid);
    app.app
        .db
        .run(move |c| {
            use otpgate::db::schema::challenges as ch;
            diesel::update(ch::table.filter(ch::subject.eq(subject)))
                .set(ch::expires_at.eq(now_ms() - 1))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    failed(
        &app.cap(&route(false, "otp/validate"), with_otp(req.clone(), first))
            .await,
        1537,
    );
    app.cap(&route(false, "otp/generate"), req.clone()).await;
    let code = app.cap_code(&sid, "sms").await;
    // The session's validity runs out.
    let id = sid.clone();
    app.app
        .db
        .run(move |c| {
            diesel::update(sessions_t::table.find(id))
                .set(sessions_t::expires_at.eq(now_ms() - 1))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    failed(
        &app.cap(&route(false, "otp/validate"), with_otp(req.clone(), code))
            .await,
        1505,
    );
    failed(&app.cap(&route(false, "otp/generate"), req).await, 1505);
}

async fn the_payload_hash_is_checked_when_the_brand_asks(b: Backend) {
    let app = spawn(b).await;
    brand(
        &app,
        "Hashed",
        BrandSettings {
            hash_key: Some(HASH_KEY.into()),
            hash_window: Some(60),
            ..Default::default()
        },
    )
    .await;
    let key = hex::decode(HASH_KEY).unwrap();
    let sid = app
        .cap_session(false, "Hashed", "MOBILE", "919999999993")
        .await;
    let signed = |mut v: Value, stamp: i64| {
        v["timeStamp"] = json!(stamp);
        v["hash"] = json!(payload_hash(&key, &v));
        v
    };
    let req = body("MOBILE", "919999999993", "Hashed", &sid);
    let generate = route(false, "otp/generate");
    // Without a hash, with a stale one, with one over other content: 5004.
    let a = app.cap(&generate, req.clone()).await;
    failed(&a, 5004);
    assert_eq!(status(&a).2, "Response tampered");
    failed(
        &app.cap(&generate, signed(req.clone(), now_ms() - 61_000))
            .await,
        5004,
    );
    let mut tampered = signed(req.clone(), now_ms());
    tampered["identifierValue"] = json!("919999999994");
    failed(&app.cap(&generate, tampered).await, 5004);
    assert!(app.deliveries().is_empty());
    // Fresh and right: the OTP goes out; validate is checked the same way.
    assert_eq!(
        status(&app.cap(&generate, signed(req.clone(), now_ms())).await).1,
        200
    );
    let code = app.cap_code(&sid, "sms").await;
    let val = with_otp(req, code);
    failed(
        &app.cap(&route(false, "otp/validate"), val.clone()).await,
        5004,
    );
    let a = app
        .cap(&route(false, "otp/validate"), signed(val, now_ms()))
        .await;
    assert_eq!(status(&a).1, 200, "{}", a.text);

    // Turned off: a hash is accepted and ignored.
    let a = app.app.clone();
    tokio::task::spawn_blocking(move || {
        save_brand(
            &a,
            "hashed",
            &BrandSettings {
                hash_key: Some("none".into()),
                ..Default::default()
            },
            true,
        )
    })
    .await
    .unwrap()
    .unwrap();
    let sid = app
        .cap_session(false, "Hashed", "MOBILE", "919999999993")
        .await;
    let mut req = body("MOBILE", "919999999993", "Hashed", &sid);
    req["hash"] = json!("bm90IGEgcmVhbCBoYXNo");
    assert_eq!(status(&app.cap(&generate, req).await).1, 200);
}

/// Two validations of one session at once: one wins, the other finds it closed.
async fn a_session_validates_once(b: Backend) {
    let app = spawn(b).await;
    brand(&app, "DocDemo", BrandSettings::default()).await;
    let sid = app
        .cap_session(false, "DocDemo", "MOBILE", "919999999993")
        .await;
    let req = body("MOBILE", "919999999993", "DocDemo", &sid);
    app.cap(&route(false, "otp/generate"), req.clone()).await;
    let code = app.cap_code(&sid, "sms").await;
    let path = route(false, "otp/validate");
    let v = with_otp(req, code);
    let (a, b2) = tokio::join!(app.cap(&path, v.clone()), app.cap(&path, v));
    let mut codes = vec![status(&a).1, status(&b2).1];
    codes.sort();
    assert_eq!(codes[0], 200, "{} / {}", a.text, b2.text);
    assert!(matches!(codes[1], 1505 | 1537), "{codes:?}");
    assert!(app.cap_session_row(&sid).await.validated_at.is_some());
}

both!(
    the_seed_requests_are_answered,
    every_identifier_type_on_mobile_and_web,
    the_older_shape_and_headers_are_accepted,
    every_failure_has_its_code,
    retries_are_limited_per_brand,
    otp_limits_are_per_brand,
    sessions_expire,
    the_payload_hash_is_checked_when_the_brand_asks,
    a_session_validates_once,
);

/// `otpgate brand add|set|list`, as an operator runs them.
#[test]
fn brands_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let run = |args: &[&str]| {
        let o = otpgate(&url, dir.path(), args);
        (o.status.success(), output_text(&o))
    };
    let (ok, t) = run(&[
        "brand",
        "add",
        "DocDemo",
        "--otp-max-count",
        "3",
        "--otp-timeout",
        "10",
    ]);
    assert!(ok, "{t}");
    assert!(t.contains("brand DocDemo added"), "{t}");
    let (ok, t) = run(&["brand", "add", "docdemo"]);
    assert!(!ok && t.contains("brand 'docdemo' exists"), "{t}");
    let (ok, t) = run(&[
        "brand",
        "add",
        "Zero",
        "--otp-max-count",
        "0",
        "--otp-timeout",
        "5",
    ]);
    assert!(
        !ok && t.contains("maximum OTP count per customer cannot be 0 (it has to be >= 1)"),
        "{t}"
    );
    let (ok, t) = run(&["brand", "add", "Half", "--otp-max-count", "3"]);
    assert!(
        !ok && t.contains("give otp max count and otp timeout together"),
        "{t}"
    );
    let (ok, t) = run(&["brand", "set", "Nobody", "--max-otp-retries", "3"]);
    assert!(!ok && t.contains("no brand 'Nobody'"), "{t}");
    let (ok, t) = run(&[
        "brand",
        "set",
        "DOCDEMO",
        "--max-otp-retries",
        "3",
        "--channels",
        "email",
        "--hash-key",
        HASH_KEY,
        "--session-validity",
        "20",
    ]);
    assert!(ok, "{t}");
    let (ok, t) = run(&["brand", "list"]);
    assert!(ok, "{t}");
    let line = t
        .lines()
        .find(|l| l.starts_with("DocDemo"))
        .expect("listed");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "DocDemo", "0", "3/10min", "3", "6", "15", "20", "15", "60", "email", "on,", "300s"
        ]
    );
    assert!(!t.contains(HASH_KEY), "the hash key is not shown");
    let (ok, t) = run(&[
        "brand",
        "set",
        "DocDemo",
        "--otp-max-count",
        "none",
        "--otp-timeout",
        "none",
        "--hash-key",
        "none",
    ]);
    assert!(ok, "{t}");
    let (_, t) = run(&["brand", "list"]);
    let line = t
        .lines()
        .find(|l| l.starts_with("DocDemo"))
        .expect("listed");
    assert!(line.contains(" none ") && line.ends_with("off"), "{line}");
}

/// Checks a value against one of schemas/capillary/.
fn conforms(schema: &str, v: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/capillary")
        .join(schema);
    let schema_json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{schema}: {e}"));
    if let Err(e) = jsonschema::meta::validate(&schema_json) {
        panic!("{schema} violates its meta-schema: {e}");
    }
    let validator = jsonschema::validator_for(&schema_json)
        .unwrap_or_else(|e| panic!("{schema} is not a valid schema: {e}"));
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{v} against {schema}: {errors:?}");
}

/// Every sample of fixtures/capillary/ conforms to its schema, and the claims of its
/// tokens to TokenClaims.
#[test]
fn the_fixtures_conform_to_the_schemas() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/capillary");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let stem = stem
            .trim_start_matches("web-")
            .trim_start_matches("legacy-");
        let stem = stem.trim_start_matches("hashed-");
        let schema = match stem {
            s if s.starts_with("error-") => "ErrorResponse.schema.json",
            "seed-002-otp-generate-response" => "OtpGenerateResponse.schema.json",
            "seed-002-otp-generate-mobile-request" | "seed-002-otp-generate-web-request" => {
                "OtpGenerateRequest.schema.json"
            }
            "token-generate-request" => "TokenGenerateRequest.schema.json",
            "token-generate-response" => "TokenGenerateResponse.schema.json",
            "otp-generate-request" => "OtpGenerateRequest.schema.json",
            "otp-generate-response" => "OtpGenerateResponse.schema.json",
            "otp-validate-request" => "OtpValidateRequest.schema.json",
            "otp-validate-response" => "OtpValidateResponse.schema.json",
            other => panic!("no schema for fixture {other}"),
        };
        let v = fixture_json(&name);
        conforms(schema, &v);
        for token in [&v["auth"]["token"], &v["auth"]["key"]] {
            if let Some(t) = token.as_str() {
                let payload = t.split('.').nth(1).unwrap();
                let claims: Value = serde_json::from_slice(
                    &base64::Engine::decode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        payload,
                    )
                    .unwrap(),
                )
                .unwrap();
                conforms("TokenClaims.schema.json", &claims);
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked}");
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("capillary/{name}"))).expect("fixture is JSON")
}

/// Tokens and sessionIds differ on every run: compared as placeholders.
fn redacted(mut v: Value) -> Value {
    for key in ["token", "key"] {
        if v["auth"][key].is_string() {
            v["auth"][key] = json!("[jwt]");
        }
    }
    if v["user"]["sessionId"].is_string() {
        v["user"]["sessionId"] = json!("[sessionId]");
    }
    v
}

/// The sample requests of fixtures/capillary/, sent as they are (but for the live
/// sessionId and code), get the sample responses.
async fn the_fixtures_are_what_the_gateway_answers(b: Backend) {
    let app = spawn(b).await;
    brand(&app, "DocDemo", BrandSettings::default()).await;
    app.vishnu().await;
    for (web, prefix, channel) in [(false, "", "sms"), (true, "web-", "email")] {
        let a = app
            .cap(
                &route(web, "token/generate"),
                fixture_json(&format!("{prefix}token-generate-request.json")),
            )
            .await;
        assert_eq!(
            redacted(a.json()),
            redacted(fixture_json(&format!(
                "{prefix}token-generate-response.json"
            ))),
            "{}",
            a.text
        );
        conforms("TokenGenerateResponse.schema.json", &a.json());
        let claims = serde_json::to_value(claims(&app, &a.json()["auth"]["token"])).unwrap();
        conforms("TokenClaims.schema.json", &claims);
        let sid = a.json()["user"]["sessionId"].as_str().unwrap().to_string();
        let mut req = fixture_json(&format!("{prefix}otp-generate-request.json"));
        req["sessionId"] = json!(sid);
        let a = app.cap(&route(web, "otp/generate"), req).await;
        assert_eq!(a.json(), fixture_json("otp-generate-response.json"));
        let code = app.cap_code(&sid, channel).await;
        let mut req = fixture_json(&format!("{prefix}otp-validate-request.json"));
        req["sessionId"] = json!(sid);
        req["otp"] = if req["otp"].is_number() {
            json!(code.parse::<i64>().unwrap())
        } else {
            json!(code)
        };
        let a = app.cap(&route(web, "otp/validate"), req).await;
        assert_eq!(
            redacted(a.json()),
            redacted(fixture_json(&format!("{prefix}otp-validate-response.json"))),
            "{}",
            a.text
        );
        conforms("OtpValidateResponse.schema.json", &a.json());
    }
    // The older shape.
    let sid = app
        .cap_session(false, "DocDemo", "MOBILE", "919876543219")
        .await;
    let mut req = fixture_json("legacy-otp-generate-request.json");
    req["sessionId"] = json!(sid);
    req["deviceId"] = json!("dev-1");
    let a = app.cap(&route(false, "otp/generate"), req).await;
    assert_eq!(a.json(), fixture_json("otp-generate-response.json"));

    // Error samples the gateway answers live.
    let mut no_session = fixture_json("otp-generate-request.json");
    no_session.as_object_mut().unwrap().remove("sessionId");
    for (path, body, file) in [
        (
            route(false, "otp/generate"),
            no_session.to_string(),
            "error-1519-response.json",
        ),
        (
            route(false, "otp/generate"),
            "{".to_string(),
            "error-1519-malformed-json-response.json",
        ),
        (
            "/auth/v1/otp/resend".to_string(),
            "{}".to_string(),
            "error-404-response.json",
        ),
        (
            route(false, "otp/generate"),
            format!("{{\"x\":\"{}\"}}", "a".repeat(70_000)),
            "error-413-response.json",
        ),
    ] {
        let a = app.post(&path, Some("application/json"), body).await;
        assert_eq!(
            a.text,
            fixture(&format!("capillary/{file}")).trim(),
            "{file}"
        );
    }
    let a = app
        .request(
            reqwest::Method::PUT,
            &route(true, "otp/validate"),
            &[],
            String::new(),
        )
        .await;
    assert_eq!(a.text, fixture("capillary/error-405-response.json").trim());
}

/// Every published code's sample is what the gateway writes for it.
#[test]
fn the_error_samples_carry_the_published_messages() {
    for (code, _) in cap::CODES.iter().filter(|(c, _)| *c != 1519) {
        let want = fixture(&format!("capillary/error-{code}-response.json"));
        assert_eq!(
            cap::Failure::of(*code).body().to_string(),
            want.trim(),
            "{code}"
        );
    }
}

/// The hashed sample request's hash is the documented HMAC of its canonical body.
#[test]
fn the_hashed_sample_is_signed_as_documented() {
    let req = fixture_json("hashed-otp-generate-request.json");
    assert_eq!(
        payload_hash(&hex::decode(HASH_KEY).unwrap(), &req),
        req["hash"].as_str().unwrap()
    );
}

both!(the_fixtures_are_what_the_gateway_answers);

/// A MOBILE identifier names a directory user only as the user's whole international
/// number: the local part alone is another number (here +9876543219), whose holder
/// must not get a token naming the user.
async fn a_mobile_names_a_user_only_by_its_whole_number(b: Backend) {
    let app = spawn(b).await;
    brand(&app, "DocDemo", BrandSettings::default()).await;
    let user = app.vishnu().await;
    let cases = [
        ("9876543219", false, "+9876543219"),
        ("+9876543219", false, "+9876543219"),
        ("919876543219", true, "+919876543219"),
        ("+91 98765 43219", true, "+919876543219"),
    ];
    for (value, registered, sent_to) in cases {
        let a = app
            .cap(
                &route(false, "token/generate"),
                json!({"identifierType": "MOBILE", "identifierValue": value, "brand": "DocDemo", "deviceId": "dev-1"}),
            )
            .await;
        let v = a.json();
        assert_eq!(
            v["user"]["appRegistered"], registered,
            "{value}: {}",
            a.text
        );
        assert_eq!(
            v["user"]["userRegisteredForPassword"], registered,
            "{value}"
        );
        let sid = v["user"]["sessionId"].as_str().unwrap().to_string();
        let req = body("MOBILE", value, "DocDemo", &sid);
        let a = app.cap(&route(false, "otp/generate"), req.clone()).await;
        assert_eq!(status(&a).1, 200, "{value}: {}", a.text);
        let code = app.cap_code(&sid, "sms").await;
        assert_eq!(
            app.deliveries().last().unwrap()["destination"],
            sent_to,
            "{value}"
        );
        let a = app
            .cap(&route(false, "otp/validate"), with_otp(req, code))
            .await;
        let v = a.json();
        assert_eq!(status(&a).1, 200, "{value}: {}", a.text);
        let expected_uid = registered.then(|| user.id.to_string());
        assert_eq!(
            claims(&app, &v["auth"]["token"]).uid,
            expected_uid,
            "{value}"
        );
        assert_eq!(v["user"]["appRegistered"], registered, "{value}");
    }
}

/// The retries used up close the session: it gives no new code with fresh retries;
/// the client starts again with token/generate.
async fn used_up_retries_close_the_session(b: Backend) {
    let app = spawn(b).await;
    brand(
        &app,
        "Strict",
        BrandSettings {
            max_otp_retries: Some(1),
            ..Default::default()
        },
    )
    .await;
    for web in [false, true] {
        let sid = app
            .cap_session(web, "Strict", "MOBILE", "919999999993")
            .await;
        let req = body("MOBILE", "919999999993", "Strict", &sid);
        app.cap(&route(web, "otp/generate"), req.clone()).await;
        let code = app.cap_code(&sid, "sms").await;
        failed(
            &app.cap(
                &route(web, "otp/validate"),
                with_otp(req.clone(), wrong(&code)),
            )
            .await,
            1518,
        );
        let before = app.deliveries().len();
        failed(
            &app.cap(&route(web, "otp/generate"), req.clone()).await,
            1505,
        );
        assert_eq!(app.deliveries().len(), before, "no new code went out");
        failed(
            &app.cap(&route(web, "otp/validate"), with_otp(req, code))
                .await,
            1505,
        );
        // A new session works.
        let sid = app
            .cap_session(web, "Strict", "MOBILE", "919999999993")
            .await;
        let req = body("MOBILE", "919999999993", "Strict", &sid);
        app.cap(&route(web, "otp/generate"), req.clone()).await;
        let code = app.cap_code(&sid, "sms").await;
        let a = app
            .cap(&route(web, "otp/validate"), with_otp(req, code))
            .await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
    }
}

/// Sends count for a brand's whole otpTimeOut, even when it is longer than any window
/// of the gateway's own policies: housekeeping keeps them.
async fn housekeeping_keeps_sends_for_a_brands_window(b: Backend) {
    let app = spawn(b).await;
    brand(
        &app,
        "Weekly",
        BrandSettings {
            otp_max_count: Some("1".into()),
            otp_timeout: Some("10080".into()),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "Weekly", "MOBILE", "919000000005")
        .await;
    let req = body("MOBILE", "919000000005", "Weekly", &sid);
    assert_eq!(
        status(&app.cap(&route(false, "otp/generate"), req.clone()).await).1,
        200
    );
    // Three days on, the send still counts: housekeeping run then must keep it.
    let settings = app.app.settings.clone();
    let later = now_ms() + 3 * 86_400_000;
    app.app
        .db
        .run(move |c| otpgate::core::housekeeping::run(c, &settings, later))
        .await
        .unwrap();
    // (The session ran out meanwhile; a new one is the same brand and number.)
    let sid = app
        .cap_session(false, "Weekly", "MOBILE", "919000000005")
        .await;
    let req = body("MOBILE", "919000000005", "Weekly", &sid);
    failed(&app.cap(&route(false, "otp/generate"), req).await, 1534);
}

/// A timeStamp at the far end of the range is stale, not a fault.
async fn an_extreme_timestamp_is_stale(b: Backend) {
    let app = spawn(b).await;
    brand(
        &app,
        "Hashed",
        BrandSettings {
            hash_key: Some(HASH_KEY.into()),
            ..Default::default()
        },
    )
    .await;
    let key = hex::decode(HASH_KEY).unwrap();
    let sid = app
        .cap_session(false, "Hashed", "MOBILE", "919999999993")
        .await;
    for stamp in [i64::MIN, i64::MAX, i64::MIN + 1] {
        let mut v = body("MOBILE", "919999999993", "Hashed", &sid);
        v["timeStamp"] = json!(stamp);
        v["hash"] = json!(payload_hash(&key, &v));
        let a = app.cap(&route(false, "otp/generate"), v).await;
        failed(&a, 5004);
    }
    assert!(app.deliveries().is_empty());
}

both!(
    a_mobile_names_a_user_only_by_its_whole_number,
    used_up_retries_close_the_session,
    housekeeping_keeps_sends_for_a_brands_window,
    an_extreme_timestamp_is_stale,
);

/// A session's latest OTP (what otp/validate checks) is found through an index, not by
/// reading every challenge.
async fn the_latest_otp_of_a_session_is_found_by_index(b: Backend) {
    use diesel::sql_types::Text;
    use otpgate::db::DbConnection;

    #[derive(QueryableByName)]
    struct SqlitePlan {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    #[derive(QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let app = spawn(b).await;
    let query = "SELECT id FROM challenges WHERE subject = 'capillary:P-x' \
                 AND purpose = 'capillary' \
                 ORDER BY created_at DESC, (superseded_at IS NULL) DESC LIMIT 1";
    let plan: Vec<String> = app
        .app
        .db
        .run(move |c| {
            Ok(match c {
                DbConnection::Sqlite(c) => diesel::sql_query(format!("EXPLAIN QUERY PLAN {query}"))
                    .load::<SqlitePlan>(c)?
                    .into_iter()
                    .map(|p| p.detail)
                    .collect(),
                // With a table this small PostgreSQL would rather read it all; what
                // matters is that it can use an index.
                DbConnection::Pg(c) => c.transaction(|c| {
                    diesel::sql_query("SET LOCAL enable_seqscan = off").execute(c)?;
                    diesel::sql_query(format!("EXPLAIN {query}"))
                        .load::<PgPlan>(c)
                        .map(|v| v.into_iter().map(|p| p.line).collect())
                })?,
            })
        })
        .await
        .unwrap();
    assert!(
        plan.iter().any(|l| l.contains("challenges_subject_latest")),
        "{plan:#?}"
    );
}

both!(the_latest_otp_of_a_session_is_found_by_index);
