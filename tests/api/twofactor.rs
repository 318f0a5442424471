//! The TwoFactor dialect: every operation on its ASP.NET route (JSON, XML, form) and
//! through the Summit envelope, against the seed's samples.

use std::time::Duration;

use otpgate::db::twofactor_configs::{TwoFactorConfig, upsert};
use otpgate::dialects::twofactor::dto::{CREATE_CODES, Dto};
use otpgate::dialects::twofactor::{to_json, to_xml};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

const CUSTOMER: &str = "3698b76f-a5c0-4b04-b579-bc084019fb95";
const API: &str = "/customerservice/api/TwoFactor";

/// The seed's sample response, written by our encoders: the same bytes in JSON and,
/// but for the white space the help page put between elements, in XML.
#[test]
fn the_seed_sample_response_is_written_byte_for_byte() {
    let sample: Value =
        serde_json::from_str(&fixture("twofactor/seed-003-create-response.json")).unwrap();
    let dto = Dto {
        name: "CreateTwoFactorSmsOtpResponse",
        fields: sample.as_object().unwrap().clone(),
        codes: CREATE_CODES,
    };
    // The help page's JSON without its line breaks and the space after each colon.
    let want = fixture("twofactor/seed-003-create-response.json")
        .trim()
        .replace('\n', "")
        .replace("\": ", "\":");
    assert_eq!(to_json(&dto), want);
    let want = fixture("twofactor/seed-003-create-response.xml")
        .trim()
        .replace("> <", "><");
    assert_eq!(to_xml(&dto), want);
}

async fn config(app: &TestApp, id: i64, f: impl FnOnce(&mut TwoFactorConfig)) {
    let mut c = TwoFactorConfig {
        id,
        name: format!("config {id}"),
        code_length: 6,
        expiry_seconds: 180,
        max_attempts: 3,
        max_sms_count: 5,
        max_sms_interval_seconds: 900,
        return_code: false,
        sms_template: None,
        created_at: 0,
    };
    f(&mut c);
    c.check().unwrap();
    app.app
        .db
        .run(move |conn| Ok(upsert(conn, &c)?))
        .await
        .unwrap();
}

fn create(gsm: &str, config_id: i64) -> Value {
    json!({"UserId": CUSTOMER, "GsmNumber": gsm, "TwoFactorConfigurationId": config_id, "MaxSMSCount": 0,
           "MaxSMSInterval": 0, "OtpExpirationPeriod": 0, "IsSync": false, "Source": "web"})
}

impl TestApp {
    async fn tf(&self, op: &str, body: Value) -> Answer {
        self.post(
            &format!("{API}/{op}"),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }
}

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
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
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
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
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
    app.vishnu().await;
    let login = app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    let login_code = app.code(&login, "sms").await;
    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": login, "OtpCode": login_code}),
        )
        .await
        .json();
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

async fn xml_and_form_bodies(b: Backend) {
    let app = spawn(b).await;
    config(&app, 3, |c| c.return_code = true).await;
    // The seed's XML sample with a real number, members in another order, no namespace.
    let a = app
        .post(
            &format!("{API}/CreateTwoFactorSmsOtp"),
            Some("text/xml"),
            format!(
                "<CreateTwoFactorSmsOtpRequest><UserId>{}</UserId><TwoFactorConfigurationId>3</TwoFactorConfigurationId><GsmNumber>905321234567</GsmNumber><IsSync>false</IsSync></CreateTwoFactorSmsOtpRequest>",
                CUSTOMER.to_uppercase()
            ),
        )
        .await;
    assert!(a.content_type.starts_with("text/xml"), "{}", a.content_type);
    let prefix = "<CreateTwoFactorSmsOtpResponse xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"http://schemas.datacontract.org/2004/07/BusinessLayer.Dto.Response\"><Code>Success</Code><ExceptionMessage i:nil=\"true\" /><GsmNumber>*********567</GsmNumber><Id>";
    assert!(a.text.starts_with(prefix), "{}", a.text);
    let doc = a.xml();
    let order: Vec<&str> = doc
        .value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        order,
        [
            "Code",
            "ExceptionMessage",
            "GsmNumber",
            "Id",
            "OtpCode",
            "OtpIdReference",
            "ReferenceCode",
            "RemainingExpirationSeconds",
            "Success"
        ]
    );
    let code = doc.value["OtpCode"].as_str().unwrap().to_string();
    assert_eq!(
        code,
        app.code(doc.value["OtpIdReference"].as_str().unwrap(), "sms")
            .await,
        "returned as configured"
    );

    // The seed's XML sample verbatim, namespace and all: refused for its GsmNumber.
    let a = app
        .post(
            &format!("{API}/CreateTwoFactorSmsOtp"),
            Some("application/xml"),
            fixture("twofactor/seed-003-create-request.xml"),
        )
        .await;
    assert!(a.text.contains("<Code>InvalidRequest</Code><ExceptionMessage>GsmNumber must be a phone number of 6 to 15 digits.</ExceptionMessage><GsmNumber i:nil=\"true\" />"), "{}", a.text);

    // Form fields, validating by reference; Accept asks for XML.
    let reference = doc.value["OtpIdReference"].as_str().unwrap();
    let a = app
        .request(
            reqwest::Method::POST,
            &format!("{API}/ValidateTwoFactorSmsOtp"),
            &[
                ("content-type", Some("application/x-www-form-urlencoded")),
                ("accept", Some("application/xml")),
            ],
            format!("OtpIdReference={reference}&OtpCode={code}&IsReturnChangeRequestId=false"),
        )
        .await;
    assert!(
        a.text.starts_with("<ValidateTwoFactorSmsOtpResponse "),
        "{}",
        a.text
    );
    assert!(a.text.contains("<Code>Success</Code><ExceptionMessage i:nil=\"true\" /><GsmNumber>*********567</GsmNumber><IsValid>true</IsValid><PasswordChangeRequestId i:nil=\"true\" /><UserType>0</UserType>"), "{}", a.text);
}

async fn by_reference_id(b: Backend) {
    let app = spawn(b).await;
    let v = app
        .tf("CreateTwoFactorSmsOtp", create("905321234567", 0))
        .await
        .json();
    let reference = v["OtpIdReference"].as_str().unwrap().to_string();
    let ask = |user: &str| {
        app.tf("ValidateTwoFactorSmsOtoByReferenceId", json!({"UserId": user, "OtpIdReference": reference, "DeleteGsmFromOtherCustomers": true}))
    };
    let v = ask(CUSTOMER).await.json();
    assert_eq!(
        v,
        json!({"IsValid": false, "ExceptionMessage": "The OTP has not been validated.", "Code": 6008})
    );
    let code = app.code(&reference, "sms").await;
    let ok = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": reference, "OtpCode": code}),
        )
        .await
        .json();
    assert_eq!(ok["IsValid"], true);
    assert_eq!(
        ask(CUSTOMER).await.json(),
        json!({"IsValid": true, "ExceptionMessage": null, "Code": 6001})
    );
    let other = ask(&uuid::Uuid::new_v4().to_string()).await.json();
    assert_eq!(other["Code"], 6005);
}

async fn remind_password(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let v = app
        .tf("CreateOtpForRemindPassword", json!({"UserName": "vishnu"}))
        .await
        .json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
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
    let v = app
        .tf("CreateOtpForRemindPassword", json!({"UserName": "nobody"}))
        .await
        .json();
    assert_eq!(
        (v["Success"].clone(), v["Code"].clone()),
        (json!(false), json!(4004))
    );
    assert!(
        v.get("ExceptionMessage").is_none(),
        "the DTO has no ExceptionMessage member: {v}"
    );
}

async fn limits_expiry_and_lockout(b: Backend) {
    let app = spawn(b).await;
    config(&app, 7, |c| c.expiry_seconds = 1).await;
    // MaxSMSCount from the request: 2 per interval for this number.
    let mut req = create("905320000001", 0);
    req["MaxSMSCount"] = json!(2);
    req["MaxSMSInterval"] = json!(10);
    for _ in 0..2 {
        assert_eq!(
            app.tf("CreateTwoFactorSmsOtp", req.clone()).await.json()["Success"],
            true
        );
    }
    let a = app
        .request(
            reqwest::Method::POST,
            &format!("{API}/CreateTwoFactorSmsOtp"),
            &[
                ("content-type", Some("application/json")),
                ("accept", Some("text/xml")),
            ],
            req.to_string(),
        )
        .await;
    assert!(a.text.contains("<Code>MaxOtpRequestExceededCode</Code><ExceptionMessage>The OTP limit for this destination has been reached. Please try again in 900 seconds.</ExceptionMessage><GsmNumber>*********001</GsmNumber><Id>0</Id><OtpCode i:nil=\"true\" />"), "{}", a.text);
    assert!(a.text.contains("<Success>false</Success>"));

    // Expiry from the configuration (1 s).
    let v = app
        .tf("CreateTwoFactorSmsOtp", create("905320000002", 7))
        .await
        .json();
    let reference = v["OtpIdReference"].as_str().unwrap().to_string();
    let code = app.code(&reference, "sms").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": reference, "OtpCode": code}),
        )
        .await
        .json();
    assert_eq!(
        (v["Code"].clone(), v["ExceptionMessage"].clone()),
        (
            json!(6002),
            json!("The OTP has expired. Please generate a new OTP.")
        )
    );

    // Three wrong codes lock it.
    let v = app
        .tf("CreateTwoFactorSmsOtp", create("905320000003", 0))
        .await
        .json();
    let reference = v["OtpIdReference"].as_str().unwrap().to_string();
    let code = app.code(&reference, "sms").await;
    for _ in 0..3 {
        let v = app
            .tf(
                "ValidateTwoFactorSmsOtp",
                json!({"OtpIdReference": reference, "OtpCode": wrong(&code)}),
            )
            .await
            .json();
        assert_eq!(v["Code"], 6000);
    }
    let v = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": reference, "OtpCode": code}),
        )
        .await
        .json();
    assert_eq!(v["Code"], 6004);
}

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

/// The same operations as ServiceNames of the Summit envelope.
async fn through_the_envelope(b: Backend) {
    let app = spawn(b).await;
    let mut env = json!({"ServiceName": "CreateTwoFactorSmsOtp", "objCommonParameters": create("905321234567", 0)});
    let v = app.summit(env.clone()).await.json();
    assert_eq!(v["Errors"], "");
    let out = &v["OutputObject"];
    assert_eq!(
        (out["Success"].clone(), out["Code"].clone()),
        (json!(true), json!(4001))
    );
    let reference = out["OtpIdReference"].as_str().unwrap().to_string();
    let code = app.code(&reference, "sms").await;
    let v = app
        .summit(json!({"ServiceName": "validatetwofactorsmsotp", "objCommonParameters": {"OtpIdReference": reference, "OtpCode": wrong(&code)}}))
        .await
        .json();
    assert_eq!(v["Errors"], "Invalid OTP. 2 attempts are left.");
    assert_eq!(v["OutputObject"]["Code"], 6000);
    env["objCommonParameters"]["GsmNumber"] = json!("12");
    let v = app.summit(env).await.json();
    assert_eq!(
        v["Errors"],
        "GsmNumber must be a phone number of 6 to 15 digits."
    );
}

/// IsSync waits for the SMS to be handed over, and reports a failure to send.
async fn synchronous_send_reports_failure(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let not_a_file = dir.path().to_path_buf();
    let app = spawn_with(b, move |s| {
        s.delivery.file_path = not_a_file;
        s.delivery.max_attempts = 1;
    })
    .await;
    let mut req = create("905321234567", 0);
    req["IsSync"] = json!(true);
    let v = app.tf("CreateTwoFactorSmsOtp", req).await.json();
    assert_eq!(
        (v["Success"].clone(), v["Code"].clone()),
        (json!(false), json!(4005)),
        "{v}"
    );
    assert!(
        v["Id"].as_i64().unwrap() > 0 && v["OtpIdReference"].is_string(),
        "the OTP exists: {v}"
    );
    // The reason stays in the log: no provider names or server paths for the caller.
    assert_eq!(
        v["ExceptionMessage"],
        "The OTP could not be sent: no SMS provider accepted the message."
    );
}

both!(
    create_and_validate_in_json,
    xml_and_form_bodies,
    by_reference_id,
    remind_password,
    limits_expiry_and_lockout,
    bad_input_answers_the_dto,
    through_the_envelope,
    synchronous_send_reports_failure,
);

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
        let v = app
            .tf(
                "ValidateTwoFactorSmsOtp",
                json!({"OtpIdReference": reference, "OtpCode": wrong(&code)}),
            )
            .await
            .json();
        assert_eq!(v["Code"], 6000);
    }
    let ok = app
        .tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": reference, "OtpCode": code}),
        )
        .await
        .json();
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

both!(validation_edges);
