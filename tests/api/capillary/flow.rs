//! token/generate → otp/generate → otp/validate for every identifier type, on mobile
//! and web, in both request shapes; which user a token names.

use otpgate::cli::BrandSettings;
use serde_json::{Value, json};

use super::{Generated, body, claims, failed, route, status, with_otp};
use crate::both;
use crate::support::*;

async fn every_identifier_type_on_mobile_and_web(b: Backend) {
    let app = spawn(b).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
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
            // Before a code proves the caller holds the identifier, nothing tells
            // whether it is registered: not the answer, not the token.
            assert_eq!(
                v["user"],
                json!({"appRegistered": false, "sessionId": sid, "role": "VIEW",
                       "userRegisteredForPassword": false}),
                "{at}"
            );
            assert_eq!(v["auth"]["key"], Value::Null);
            let c = claims(&app, &v["auth"]["token"]);
            assert_eq!(
                (c.rol.as_str(), c.sub.as_str(), c.org.as_str()),
                ("VIEW", sid.as_str(), "DocDemo")
            );
            assert_eq!(c.uid, None, "{at}");
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
            assert_eq!(token.uid, registered.then(|| user.id.to_string()), "{at}");
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
    app.add_brand("Shell", BrandSettings::default()).await;
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

/// Two validations of one session at once: one wins, the other finds it closed.
async fn a_session_validates_once(b: Backend) {
    let app = spawn(b).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    let Generated { sid, req, code } = app
        .cap_generated(false, "DocDemo", ("MOBILE", "919999999993"), "sms")
        .await;
    let path = route(false, "otp/validate");
    let v = with_otp(req, code);
    let (a, b2) = tokio::join!(app.cap(&path, v.clone()), app.cap(&path, v));
    let mut codes = vec![status(&a).1, status(&b2).1];
    codes.sort();
    assert_eq!(codes[0], 200, "{} / {}", a.text, b2.text);
    assert!(matches!(codes[1], 1505 | 1537), "{codes:?}");
    assert!(app.cap_session_row(&sid).await.validated_at.is_some());
}

/// A MOBILE identifier names a directory user only as the user's whole international
/// number: the local part alone is another number (here +9876543219), whose holder
/// must not get a token naming the user.
async fn a_mobile_names_a_user_only_by_its_whole_number(b: Backend) {
    let app = spawn(b).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
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
        // Told after otp/validate only (below).
        assert_eq!(v["user"]["appRegistered"], false, "{value}: {}", a.text);
        assert_eq!(v["user"]["userRegisteredForPassword"], false, "{value}");
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

both!(
    every_identifier_type_on_mobile_and_web,
    the_older_shape_and_headers_are_accepted,
    a_session_validates_once,
    a_mobile_names_a_user_only_by_its_whole_number,
);
