//! The payload hash a brand may ask for: checked over the canonical body within its
//! window, and documented by the hashed sample.

use otpgate::cli::BrandSettings;
use otpgate::db::now_ms;
use otpgate::dialects::capillary::hash::payload_hash;
use serde_json::{Value, json};

use super::{HASH_KEY, body, failed, fixture_json, route, status, with_otp};
use crate::both;
use crate::support::*;

/// A request stamped `stamp` and signed with HASH_KEY, as a client of a brand that
/// asks for the hash sends it.
fn signed(mut v: Value, stamp: i64) -> Value {
    let key = hex::decode(HASH_KEY).unwrap();
    v["timeStamp"] = json!(stamp);
    v["hash"] = json!(payload_hash(&key, &v));
    v
}

async fn the_payload_hash_is_checked_when_the_brand_asks(b: Backend) {
    let app = spawn(b).await;
    app.add_brand(
        "Hashed",
        BrandSettings {
            hash_key: Some(HASH_KEY.into()),
            hash_window: Some(60),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "Hashed", "MOBILE", "919999999993")
        .await;
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
    app.set_brand(
        "hashed",
        BrandSettings {
            hash_key: Some("none".into()),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "Hashed", "MOBILE", "919999999993")
        .await;
    let mut req = body("MOBILE", "919999999993", "Hashed", &sid);
    req["hash"] = json!("bm90IGEgcmVhbCBoYXNo");
    assert_eq!(status(&app.cap(&generate, req).await).1, 200);
}

/// A timeStamp at the far end of the range is stale, not a fault.
async fn an_extreme_timestamp_is_stale(b: Backend) {
    let app = spawn(b).await;
    app.add_brand(
        "Hashed",
        BrandSettings {
            hash_key: Some(HASH_KEY.into()),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "Hashed", "MOBILE", "919999999993")
        .await;
    for stamp in [i64::MIN, i64::MAX, i64::MIN + 1] {
        let v = signed(body("MOBILE", "919999999993", "Hashed", &sid), stamp);
        let a = app.cap(&route(false, "otp/generate"), v).await;
        failed(&a, 5004);
    }
    assert!(app.deliveries().is_empty());
}

both!(
    the_payload_hash_is_checked_when_the_brand_asks,
    an_extreme_timestamp_is_stale,
);

/// The hashed sample request's hash is the documented HMAC of its canonical body.
#[test]
fn the_hashed_sample_is_signed_as_documented() {
    let req = fixture_json("hashed-otp-generate-request.json");
    assert_eq!(
        payload_hash(&hex::decode(HASH_KEY).unwrap(), &req),
        req["hash"].as_str().unwrap()
    );
}
