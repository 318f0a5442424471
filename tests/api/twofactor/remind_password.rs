//! CreateOtpForRemindPassword: a code for a directory user, by SMS only.

use serde_json::json;

use crate::both;
use crate::support::*;

async fn remind_password(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let v = app
        .tf("CreateOtpForRemindPassword", json!({"UserName": "vishnu"}))
        .await
        .json();
    let keys: Vec<&str> = member_names(&v);
    assert_eq!(
        keys,
        [
            "Success",
            "OtpIdReference",
            "ReferenceCode",
            "RemainingSeconds",
            "GsmNumber",
            "OtpCode",
            "Code",
            "UserType"
        ]
    );
    assert_eq!(
        (
            v["Success"].clone(),
            v["Code"].clone(),
            v["GsmNumber"].clone()
        ),
        (json!(true), json!(4001), json!("*********219"))
    );
    let reference = v["OtpIdReference"].as_str().unwrap();
    let code = app.code(reference, "sms").await;
    assert!(
        app.deliveries().iter().all(|m| m["channel"] == "sms"),
        "SMS only"
    );
    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": reference, "OtpCode": code, "IsReturnChangeRequestId": true}),
        )
        .await
        .json();
    assert_eq!(
        v["GsmNumber"], "*********219",
        "masked alike in both answers"
    );
    assert!(v["PasswordChangeRequestId"].is_string(), "{v}");
    // A login nobody has gets an answer of the same shape, and nothing is sent
    // (unknown_users.rs compares the two closely).
    let sent = app.deliveries().len();
    let v = app
        .tf("CreateOtpForRemindPassword", json!({"UserName": "nobody"}))
        .await
        .json();
    assert_eq!(member_names(&v), keys);
    assert_eq!(
        (v["Success"].clone(), v["Code"].clone()),
        (json!(true), json!(4001))
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.deliveries().len(), sent);
}

both!(remind_password);
