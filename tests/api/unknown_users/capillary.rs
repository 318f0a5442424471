//! Capillary token/generate, otp/generate and otp/validate for a USERNAME nobody has.

use otpgate::cli::BrandSettings;
use otpgate::core::brands;
use otpgate::db::challenges;
use otpgate::dialects::capillary::tokens::{jwt_key, verify_token};
use serde_json::{Value, json};

use super::{assert_alike, audited, nothing_sent_for};
use crate::both;
use crate::support::*;

fn request(value: &str, session: Option<&str>, otp: Option<&str>) -> Value {
    let mut v = json!({"identifierType": "USERNAME", "identifierValue": value,
                       "brand": "DocDemo", "deviceId": "dev-1"});
    if let Some(s) = session {
        v["sessionId"] = json!(s);
    }
    if let Some(o) = otp {
        v["otp"] = json!(o);
    }
    v
}

/// The id of the session's latest challenge.
async fn latest(app: &TestApp, session: &str) -> String {
    let subject = brands::subject(session);
    app.app
        .db
        .run(move |c| Ok(challenges::latest_capillary(c, &subject)?))
        .await
        .unwrap()
        .expect("a challenge")
        .id
}

async fn username_answers_alike(b: Backend) {
    let app = spawn(b).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    app.vishnu().await;
    let known = app
        .post_json("/auth/v1/token/generate", &request("vishnu", None, None))
        .await;
    let probe = app
        .post_json("/auth/v1/token/generate", &request("nobody", None, None))
        .await;
    assert_alike(&known, &probe, &["sessionId", "token"]);
    let (k, u) = (known.json(), probe.json());
    assert_eq!(
        u["user"],
        json!({"appRegistered": false, "sessionId": u["user"]["sessionId"], "role": "VIEW",
               "userRegisteredForPassword": false})
    );
    // The VIEW token names no user either.
    let key = jwt_key(&app.app);
    for v in [&k, &u] {
        let claims = verify_token(&key, v["auth"]["token"].as_str().unwrap()).unwrap();
        assert_eq!((claims.uid, claims.rol.as_str()), (None, "VIEW"));
    }
    let sid = |v: &Value| v["user"]["sessionId"].as_str().unwrap().to_string();
    let (ks, us) = (sid(&k), sid(&u));

    let kg = app
        .post_json("/auth/v1/otp/generate", &request("vishnu", Some(&ks), None))
        .await;
    let ug = app
        .post_json("/auth/v1/otp/generate", &request("nobody", Some(&us), None))
        .await;
    assert_eq!((kg.status, &kg.text), (ug.status, &ug.text));
    assert_eq!(
        kg.text,
        r#"{"status":{"success":true,"code":200,"message":"SUCCESS"}}"#
    );
    let (known_txn, decoy_txn) = (latest(&app, &ks).await, latest(&app, &us).await);
    let code = app.code(&known_txn, "sms").await;
    nothing_sent_for(&app, std::slice::from_ref(&decoy_txn)).await;
    assert_eq!(audited(&app, "otp.generate", "unknown_user").await, 1);

    // otp/validate: 1506 while retries are left, 1518 for the last, then the session
    // is closed (1505), for both.
    let mut codes = Vec::new();
    for _ in 0..6 {
        let bad = wrong(&code);
        let kv = app
            .post_json(
                "/auth/v1/otp/validate",
                &request("vishnu", Some(&ks), Some(&bad)),
            )
            .await;
        let uv = app
            .post_json(
                "/auth/v1/otp/validate",
                &request("nobody", Some(&us), Some(&bad)),
            )
            .await;
        assert_eq!((kv.status, &kv.text), (uv.status, &uv.text));
        codes.push(uv.json()["status"]["code"].as_i64().unwrap());
    }
    assert_eq!(codes, [1506, 1506, 1506, 1506, 1518, 1505]);
}

both!(username_answers_alike);
