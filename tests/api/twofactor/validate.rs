//! CreateTwoFactorSmsOtp then ValidateTwoFactorSmsOtp (by reference, by OtpId with
//! its customer, again with IsReValidate), and ValidateTwoFactorSmsOtoByReferenceId.

use serde_json::{Value, json};

use super::{CUSTOMER, config, create};
use crate::both;
use crate::support::*;

async fn create_and_validate_in_json(b: Backend) {
    let app = spawn(b).await;
    config(&app, 3, |c| {
        c.sms_template = Some("Kodunuz: {code} (ref {reference})".into())
    })
    .await;
    let a = app
        .tf("CreateTwoFactorSmsOtp", create("+90 532 123 45 67", 3))
        .await;
    assert_eq!(a.status, 200);
    let v = a.json();
    let keys: Vec<&str> = member_names(&v);
    assert_eq!(
        keys,
        [
            "Id",
            "OtpIdReference",
            "ReferenceCode",
            "OtpCode",
            "RemainingExpirationSeconds",
            "GsmNumber",
            "ExceptionMessage",
            "Success",
            "Code"
        ]
    );
    assert_eq!(
        (
            v["Success"].clone(),
            v["Code"].clone(),
            v["ExceptionMessage"].clone()
        ),
        (json!(true), json!(4001), Value::Null)
    );
    assert_eq!(
        v["OtpCode"],
        Value::Null,
        "the configuration does not return codes"
    );
    assert_eq!(v["GsmNumber"], "*********567");
    assert!((178..=180).contains(&v["RemainingExpirationSeconds"].as_i64().unwrap()));
    let reference = v["OtpIdReference"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::try_parse(&reference).is_ok() && reference == reference.to_lowercase());
    let id = v["Id"].as_i64().unwrap();
    assert!(id > 0);
    let code = app.code(&reference, "sms").await;
    let sms = app
        .deliveries()
        .into_iter()
        .find(|m| m["transaction_id"] == reference.as_str())
        .unwrap();
    assert_eq!(
        sms["text"],
        format!(
            "Kodunuz: {code} (ref {})",
            v["ReferenceCode"].as_str().unwrap()
        )
    );
    assert_eq!(sms["destination"], "+90 532 123 45 67");

    let validate = |code: &str, extra: Value| {
        let mut body = json!({"UserId": CUSTOMER, "Email": "", "OtpId": id, "OtpIdReference": null, "OtpCode": code,
                              "IsReValidate": false, "IsReturnChangeRequestId": false});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        app.tf("ValidateTwoFactorSmsOtp", body)
    };
    let a = validate(&code, json!({"IsReturnChangeRequestId": true})).await;
    let v = a.json();
    let keys: Vec<&str> = member_names(&v);
    assert_eq!(
        keys,
        [
            "IsValid",
            "ExceptionMessage",
            "GsmNumber",
            "Code",
            "PasswordChangeRequestId",
            "UserType"
        ]
    );
    assert_eq!(
        (
            v["IsValid"].clone(),
            v["Code"].clone(),
            v["UserType"].clone()
        ),
        (json!(true), json!(6001), json!(0))
    );
    let change_id = v["PasswordChangeRequestId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::try_parse(&change_id).is_ok());
    // Validated once: again only with IsReValidate, and then the same change request.
    let v = validate(&code, json!({})).await.json();
    assert_eq!(
        (v["IsValid"].clone(), v["Code"].clone()),
        (json!(false), json!(6003))
    );
    assert_eq!(
        v["ExceptionMessage"],
        "The OTP has already been used. Please generate a new OTP."
    );
    let v = validate(
        &code,
        json!({"IsReValidate": true, "IsReturnChangeRequestId": true}),
    )
    .await
    .json();
    assert_eq!(
        (v["IsValid"].clone(), v["PasswordChangeRequestId"].clone()),
        (json!(true), json!(change_id))
    );
    let v = validate(&wrong(&code), json!({"IsReValidate": true}))
        .await
        .json();
    assert_eq!(
        (v["IsValid"].clone(), v["Code"].clone()),
        (json!(false), json!(6000))
    );
    // LoginApp does not see TwoFactor OTPs, nor TwoFactor the Summit ones.
    let a = app.login_app(&reference, &code, "").await;
    assert!(a.text.contains("Invalid TransactionID"), "{}", a.text);
    let login = app.vishnu_login_otp().await;
    let login_code = app.code(&login, "sms").await;
    let v = app.tf_validate(&login, &login_code).await;
    assert_eq!(v["Code"], 6005);
    // Another customer's UserId does not find it.
    let v = validate(
        &code,
        json!({"UserId": uuid::Uuid::new_v4().to_string(), "IsReValidate": true}),
    )
    .await
    .json();
    assert_eq!(v["Code"], 6005);
}

async fn by_reference_id(b: Backend) {
    let app = spawn(b).await;
    let (_, reference) = app.tf_create(create("905321234567", 0)).await;
    let ask = |user: &str| {
        app.tf("ValidateTwoFactorSmsOtoByReferenceId", json!({"UserId": user, "OtpIdReference": reference, "DeleteGsmFromOtherCustomers": true}))
    };
    let v = ask(CUSTOMER).await.json();
    assert_eq!(
        v,
        json!({"IsValid": false, "ExceptionMessage": "The OTP has not been validated.", "Code": 6008})
    );
    let code = app.code(&reference, "sms").await;
    let ok = app.tf_validate(&reference, &code).await;
    assert_eq!(ok["IsValid"], true);
    assert_eq!(
        ask(CUSTOMER).await.json(),
        json!({"IsValid": true, "ExceptionMessage": null, "Code": 6001})
    );
    let other = ask(&uuid::Uuid::new_v4().to_string()).await.json();
    assert_eq!(other["Code"], 6005);
}

/// Regressions: re-validation after the attempts ran out on the way, OTPs named by
/// OtpId only with their customer, requests that cannot loosen their configuration,
/// and one PasswordChangeRequestId for parallel re-validations.
async fn validation_edges(b: Backend) {
    let app = spawn(b).await;
    config(&app, 5, |c| c.max_sms_count = 1).await;
    let v = app
        .tf("CreateTwoFactorSmsOtp", create("905320000010", 0))
        .await
        .json();
    let (reference, id) = (
        v["OtpIdReference"].as_str().unwrap().to_string(),
        v["Id"].as_i64().unwrap(),
    );
    let code = app.code(&reference, "sms").await;
    for _ in 0..2 {
        let v = app.tf_validate(&reference, &wrong(&code)).await;
        assert_eq!(v["Code"], 6000);
    }
    let ok = app.tf_validate(&reference, &code).await;
    assert_eq!(ok["IsValid"], true, "{ok}");
    let again = json!({"OtpIdReference": reference, "OtpCode": code, "IsReValidate": true, "IsReturnChangeRequestId": true});
    let answers = futures_util::future::join_all(
        (0..8).map(|_| app.tf("ValidateTwoFactorSmsOtp", again.clone())),
    )
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| a.json())
        .inspect(|v| assert_eq!(v["IsValid"], true, "{v}"))
        .map(|v| v["PasswordChangeRequestId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");

    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpId": id, "OtpCode": "000000"}),
        )
        .await
        .json();
    assert_eq!(
        (v["Code"].clone(), v["ExceptionMessage"].clone()),
        (
            json!(6007),
            json!("UserId is required when the OTP is named by OtpId.")
        )
    );
    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": "12345", "OtpCode": "000000"}),
        )
        .await
        .json();
    assert_eq!(
        (v["Code"].clone(), v["ExceptionMessage"].clone()),
        (json!(6007), json!("OtpIdReference must be a GUID."))
    );
    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpId": id, "UserId": CUSTOMER, "OtpCode": code, "IsReValidate": true}),
        )
        .await
        .json();
    assert_eq!(v["IsValid"], true, "by OtpId with its customer: {v}");

    // Configuration 5 allows one SMS per window; asking for 50 does not lift it.
    let mut req = create("905320000011", 5);
    req["MaxSMSCount"] = json!(50);
    assert_eq!(
        app.tf("CreateTwoFactorSmsOtp", req.clone()).await.json()["Success"],
        true
    );
    assert_eq!(
        app.tf("CreateTwoFactorSmsOtp", req).await.json()["Code"],
        4000
    );
}

/// Each code gets a numeric Id of its own, larger than the one before.
async fn each_code_has_a_larger_id(b: Backend) {
    let app = spawn(b).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let v = app
            .tf(
                "CreateTwoFactorSmsOtp",
                create(&format!("90532000003{n}"), 0),
            )
            .await
            .json();
        ids.push(v["Id"].as_i64().unwrap_or_else(|| panic!("{v}")));
    }
    assert!(ids[0] > 0 && ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

both!(
    create_and_validate_in_json,
    by_reference_id,
    validation_edges,
    each_code_has_a_larger_id
);
