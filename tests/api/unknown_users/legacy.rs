//! `security.reveal_unknown_users = true`: the legacy answers, nothing stored for them.

use otpgate::cli::BrandSettings;
use otpgate::dialects::capillary::tokens::{jwt_key, verify_token};
use serde_json::json;

use crate::both;
use crate::support::*;

async fn revealed_unknown_users_get_the_legacy_answers(b: Backend) {
    let app = spawn_with(b, |s| s.security.reveal_unknown_users = true).await;
    let user = app.vishnu().await;
    app.add_brand("DocDemo", BrandSettings::default()).await;

    let mut other_country = login_otp_request("Vishnu.kumar@syntel.com", "d");
    other_country["objCommonParameters"]["objUserInformation"]["CountryCode"] = json!("44");
    for request in [login_otp_request("nobody@nowhere.com", "d"), other_country] {
        let a = app.summit(request).await;
        assert_eq!(a.errors(), "No user is registered with these details.");
        assert_eq!(a.json()["OutputObject"], serde_json::Value::Null);
    }

    let v = app
        .post_json(
            "/customerservice/api/TwoFactor/CreateOtpForRemindPassword",
            &json!({"UserName": "nobody"}),
        )
        .await
        .json();
    assert_eq!(
        (v["Success"].clone(), v["Code"].clone()),
        (json!(false), json!(4004))
    );

    let token = |value: &str| {
        json!({"identifierType": "USERNAME", "identifierValue": value, "brand": "DocDemo",
               "deviceId": "dev-1"})
    };
    let v = app
        .post_json("/auth/v1/token/generate", &token("nobody"))
        .await
        .json();
    assert_eq!(
        v["status"],
        json!({"success": false, "code": 1515, "message": "User does not exist."})
    );
    let v = app
        .post_json("/auth/v1/token/generate", &token("vishnu"))
        .await
        .json();
    assert_eq!(
        (
            &v["user"]["appRegistered"],
            &v["user"]["userRegisteredForPassword"]
        ),
        (&json!(true), &json!(true))
    );
    let claims = verify_token(&jwt_key(&app.app), v["auth"]["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.uid, Some(user.id.to_string()));

    assert_eq!(app.count("challenges").await, 0);
    assert_eq!(app.count("send_limits").await, 0);
}

both!(revealed_unknown_users_get_the_legacy_answers);
