//! Bad input answers the DTO with its code and a message saying what is wrong; bad
//! transport answers as ASP.NET Web API does.

use serde_json::{Value, json};

use super::{API, CUSTOMER, create};
use crate::both;
use crate::support::*;

async fn bad_input_answers_the_dto(b: Backend) {
    let app = spawn(b).await;
    let create_with = |f: &dyn Fn(&mut Value)| {
        let mut r = create("905321234567", 0);
        f(&mut r);
        r
    };
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            create_with(&|r| r["UserId"] = json!("not-a-guid")),
            4002,
            "UserId must be a GUID.",
        ),
        (
            create_with(&|r| r["UserId"] = json!("00000000-0000-0000-0000-000000000000")),
            4002,
            "UserId is required.",
        ),
        (
            create_with(&|r| r["MaxSMSCount"] = json!(-1)),
            4002,
            "MaxSMSCount must be between 0 and 1000.",
        ),
        (
            create_with(&|r| r["MaxSMSInterval"] = json!(100000)),
            4002,
            "MaxSMSInterval must be between 0 and 1440.",
        ),
        (
            create_with(&|r| r["OtpExpirationPeriod"] = json!("soon")),
            4002,
            "OtpExpirationPeriod in the request must be a whole number.",
        ),
        (
            create_with(&|r| r["TwoFactorConfigurationId"] = json!(99)),
            4003,
            "No configuration with this TwoFactorConfigurationId exists.",
        ),
        (
            create_with(&|r| r["IsSync"] = json!("perhaps")),
            4002,
            "IsSync in the request must be true or false.",
        ),
    ];
    for (body, code, message) in cases {
        let v = app.tf("CreateTwoFactorSmsOtp", body.clone()).await.json();
        assert_eq!(
            (
                v["Success"].clone(),
                v["Code"].clone(),
                v["ExceptionMessage"].clone()
            ),
            (json!(false), json!(code), json!(message)),
            "{body}"
        );
    }
    let v = app
        .tf("ValidateTwoFactorSmsOtp", json!({"OtpCode": "123456"}))
        .await
        .json();
    assert_eq!(
        (v["Code"].clone(), v["ExceptionMessage"].clone()),
        (json!(6007), json!("OtpIdReference or OtpId is required."))
    );
    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpId": 424242, "UserId": CUSTOMER, "OtpCode": "123456"}),
        )
        .await
        .json();
    assert_eq!(v["Code"], 6005);
    assert_eq!(
        v["ExceptionMessage"],
        "No OTP was found for this OtpIdReference or OtpId."
    );

    let a = app
        .post(
            &format!("{API}/CreateTwoFactorSmsOtp"),
            Some("application/json"),
            "{\"UserId\": ",
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json()["ExceptionMessage"],
        "The request body is not valid JSON."
    );
    assert_eq!(a.json()["Code"], 4002);
    let a = app
        .post(
            &format!("{API}/ValidateTwoFactorSmsOtp"),
            Some("application/xml"),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>",
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.text.contains("<Code>InvalidRequest</Code><ExceptionMessage>The XML request was refused: DTDs and entity declarations are not accepted.</ExceptionMessage>"), "{}", a.text);
    let a = app
        .post(
            &format!("{API}/CreateOtpForRemindPassword"),
            Some("application/json"),
            "",
        )
        .await;
    assert_eq!((a.status, a.json()["Code"].clone()), (400, json!(4002)));
    // An empty form is a form without fields: answered as `{}` is, HTTP 200 and the
    // missing member named, not as an unreadable body.
    for (action, code, message) in [
        ("CreateTwoFactorSmsOtp", 4002, json!("UserId is required.")),
        (
            "ValidateTwoFactorSmsOtp",
            6007,
            json!("OtpCode is required in the request."),
        ),
        (
            "ValidateTwoFactorSmsOtoByReferenceId",
            6007,
            json!("UserId is required."),
        ),
        ("CreateOtpForRemindPassword", 4002, Value::Null),
    ] {
        let path = format!("{API}/{action}");
        let empty_object = app.post(&path, Some("application/json"), "{}").await;
        let empty_form = app
            .post(&path, Some("application/x-www-form-urlencoded"), "")
            .await;
        assert_eq!(
            (empty_form.status, empty_form.text.as_str()),
            (empty_object.status, empty_object.text.as_str()),
            "{action}"
        );
        let v = empty_form.json();
        assert_eq!(
            (
                empty_form.status,
                v["Code"].clone(),
                v["ExceptionMessage"].clone()
            ),
            (200, json!(code), message),
            "{action}"
        );
    }
    let a = app
        .request(
            reqwest::Method::GET,
            &format!("{API}/CreateTwoFactorSmsOtp"),
            &[],
            String::new(),
        )
        .await;
    assert_eq!(
        (a.status, a.json()["Message"].clone()),
        (
            405,
            json!("The requested resource does not support http method 'GET'.")
        )
    );
    let a = app
        .post(
            &format!("{API}/DeleteEverything"),
            Some("application/json"),
            "{}",
        )
        .await;
    assert_eq!(a.status, 404);
    assert!(
        a.json()["Message"]
            .as_str()
            .unwrap()
            .starts_with("No HTTP resource was found that matches the request URI")
    );
    assert_eq!(app.count("challenges").await, 0);
}

both!(bad_input_answers_the_dto);
