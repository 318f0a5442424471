//! Every failure of the Capillary API answers its published code and message, in the
//! status shape, transport faults included.

use otpgate::cli::BrandSettings;
use serde_json::json;

use super::{body, failed, route, status, with_otp};
use crate::both;
use crate::support::*;

async fn every_failure_has_its_code(b: Backend) {
    // 1515 is answered only where the settings reveal unknown users.
    let app = spawn_with(b, |s| {
        s.max_body_bytes = 4096;
        s.security.reveal_unknown_users = true;
    })
    .await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    app.add_brand(
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

both!(every_failure_has_its_code);
