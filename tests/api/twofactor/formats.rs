//! The TwoFactor wire formats: the seed's sample written byte for byte, XML and form
//! bodies, and the operations as ServiceNames of the Summit envelope.

use otpgate::dialects::twofactor::dto::{CREATE_CODES, Dto};
use otpgate::dialects::twofactor::{to_json, to_xml};
use serde_json::{Value, json};

use super::{API, CUSTOMER, config, create};
use crate::both;
use crate::support::*;

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
    let order: Vec<&str> = member_names(&doc.value);
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

both!(xml_and_form_bodies, through_the_envelope);
