//! Known secrets sent through every dialect and body format are in none of the
//! recorded files, and the recordings are scenarios.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::both;

const API_KEY: &str = "apikey-7f3e9c1d5a";
const NOTE: &str = "note-5b8e2a9c";
const FORM_PASSWORD: &str = "XXXX@123";
const FORM_LOGIN: &str = "google@sum.com";
const EMAIL: &str = "Vishnu.kumar@syntel.com";
/// The user's number, as LoginApp answers it.
const USER_MOBILE: &str = "9876543219";
const GSM_JSON: &str = "905321234567";
const GSM_XML: &str = "905329871234";
const GSM_FORM: &str = "+905551112233";
const CAPILLARY_MOBILE: &str = "919876543219";

/// The text between `start` and the next `<` or `"` after it.
fn after(text: &str, start: &str) -> String {
    let i = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"));
    text[i + start.len()..]
        .chars()
        .take_while(|c| *c != '<' && *c != '"')
        .collect()
}

/// Waits for a message to `destination` of none of the transactions `not`, and
/// returns its code.
async fn code_to(r: &Recorder, destination: &str, not: &[String]) -> String {
    eventually(Duration::from_secs(10), || async {
        sink_messages(&r.sink)
            .iter()
            .find(|m| {
                m["destination"] == destination
                    && !not.iter().any(|t| m["transaction_id"] == t.as_str())
            })
            .map(|m| first_digits(m["text"].as_str().unwrap_or("")))
            .ok_or_else(|| format!("no message to {destination}"))
    })
    .await
}

async fn summit_json(r: &Recorder, body: Value) -> Value {
    let (status, text) = r
        .send(
            SUMMIT,
            &[
                ("content-type", "application/json"),
                ("x-api-key", API_KEY),
                ("authorization", "Bearer 0a1b2c3d4e5f"),
            ],
            body.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn no_secret_is_recorded(b: Backend) {
    let mut r = recorder(b, |s| {
        s.record.redact = vec!["customernote".into()];
        // Long codes: a short one could turn up by chance in a recorded number.
        s.orgs.get_mut("1").expect("org 1").length = Some(8);
    })
    .await;
    let mut secrets: Vec<String> = [
        API_KEY,
        NOTE,
        FORM_PASSWORD,
        FORM_LOGIN,
        EMAIL,
        USER_MOBILE,
        GSM_JSON,
        GSM_XML,
        GSM_FORM,
        "905551112233",
        "0a1b2c3d4e5f",
    ]
    .map(String::from)
    .to_vec();

    // Summit, JSON: a form login's generate (password, API key, a configured field),
    // then a generate on its TokenID.
    let user = json!({"DomainId":1,"UserID":967,"LoginUID":967,"UserName":"abcd"});
    let a = summit_json(
        &r,
        json!({"ServiceName":"ADM_GenerateOTP","objCommonParameters":{"_ProxyDetails":{
            "AuthType":"FORM","UserName":FORM_LOGIN,"Password":FORM_PASSWORD,"ReturnType":"JSON",
            "TokenID":"","ApiKey":API_KEY,"CustomerNote":NOTE},"objUserInformation":user}}),
    )
    .await;
    let token = a["TokenID"].as_str().expect("a TokenID").to_string();
    secrets.push(token.clone());
    let a = summit_json(
        &r,
        json!({"ServiceName":"ADM_GenerateOTP","objCommonParameters":{"_ProxyDetails":{
            "AuthType":"","TokenID":token,"ReturnType":"JSON"},"objUserInformation":user}}),
    )
    .await;
    assert_eq!(a["Errors"], "", "{a}");

    // Summit, JSON: an OTP login: generate by e-mail, LoginApp with the code.
    let a = summit_json(
        &r,
        json!({"ServiceName":"ADM_GenerateOTP","objCommonParameters":{"objUserInformation":{
            "AuthType":"LOGIN_OTP","CountryCode":"91","EncryptedEmailID":EMAIL,"DeviceId":"phone-1"}}}),
    )
    .await;
    let txn = a["OutputObject"]["OTP_Communication"][0]["TransactionID"]
        .as_str()
        .expect("a TransactionID")
        .to_string();
    let code = r.code(&txn).await;
    secrets.push(code.clone());
    let mut summit_txns = vec![txn.clone()];
    let a = summit_json(
        &r,
        json!({"ServiceName":"LoginApp","objCommonParameters":{"_ProxyDetails":{"ReturnType":"JSON",
            "Password":code,"RequestType":"mobile","AuthType":"OTP","UserName":"","TransactionID":txn,
            "DeviceId":"phone-1"}}}),
    )
    .await;
    let session = a["User"]["UserDetails"][0]["UserLicenseDetails"]["SessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("a SessionId: {a}"))
        .to_string();
    secrets.push(session);

    // Summit, XML: the form login's generate.
    let (status, text) = r
        .send(
            SUMMIT,
            &[("content-type", "application/xml")],
            format!(
                "<CommonWS_JsonObjCall><ServiceName>ADM_GenerateOTP</ServiceName><objCommonParameters><_ProxyDetails><Password>{FORM_PASSWORD}</Password><AuthType>FORM</AuthType><OrgID>1</OrgID><TokenID></TokenID><ReturnType>XML</ReturnType><UserName>{FORM_LOGIN}</UserName><CustomerNote>{NOTE}</CustomerNote></_ProxyDetails><objUserInformation><DomainId>1</DomainId><UserID>967</UserID><LoginUID>967</LoginUID><UserName>abcd</UserName></objUserInformation></objCommonParameters></CommonWS_JsonObjCall>"
            ),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    secrets.push(after(&text, "<TokenID>"));

    // Summit, SOAP: an OTP login.
    let soap = |inner: String| {
        format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><CommonWS_JsonObjCall xmlns=\"http://tempuri.org/\">{inner}</CommonWS_JsonObjCall></s:Body></s:Envelope>"
        )
    };
    let soap_headers = [
        ("content-type", "text/xml; charset=utf-8"),
        ("soapaction", "http://tempuri.org/CommonWS_JsonObjCall"),
    ];
    let (status, text) = r
        .send(
            SUMMIT,
            &soap_headers,
            soap(format!("<ServiceName>ADM_GenerateOTP</ServiceName><objCommonParameters><objUserInformation><AuthType>LOGIN_OTP</AuthType><CountryCode>91</CountryCode><EncryptedEmailID>{EMAIL}</EncryptedEmailID><DeviceId>phone-2</DeviceId></objUserInformation></objCommonParameters>")),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let txn = after(&text, "<TransactionID>");
    summit_txns.push(txn.clone());
    let code = r.code(&txn).await;
    secrets.push(code.clone());
    let (status, text) = r
        .send(
            SUMMIT,
            &soap_headers,
            soap(format!("<ServiceName>LoginApp</ServiceName><objCommonParameters><_ProxyDetails><ReturnType>XML</ReturnType><Password>{code}</Password><RequestType>mobile</RequestType><AuthType>OTP</AuthType><UserName></UserName><TransactionID>{txn}</TransactionID><DeviceId>phone-2</DeviceId></_ProxyDetails></objCommonParameters>")),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    secrets.push(after(&text, "<SessionId>"));

    // TwoFactor, JSON: create, validate with the code by OtpId.
    let a = r
        .json(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &json!({"UserId":CUSTOMER,"GsmNumber":GSM_JSON,"TwoFactorConfigurationId":3}),
        )
        .await;
    let code = r.code(a["OtpIdReference"].as_str().unwrap()).await;
    secrets.push(code.clone());
    let v = r
        .json(
            &format!("{TWOFACTOR}/ValidateTwoFactorSmsOtp"),
            &json!({"UserId":CUSTOMER,"OtpId":a["Id"],"OtpCode":code}),
        )
        .await;
    assert_eq!(v["IsValid"], true, "{v}");

    // TwoFactor, XML: create, validate by reference.
    let (status, text) = r
        .send(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &[("content-type", "application/xml")],
            format!("<CreateTwoFactorSmsOtpRequest><GsmNumber>{GSM_XML}</GsmNumber><TwoFactorConfigurationId>3</TwoFactorConfigurationId><UserId>{CUSTOMER}</UserId></CreateTwoFactorSmsOtpRequest>"),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let reference = after(&text, "<OtpIdReference>");
    let code = r.code(&reference).await;
    secrets.push(code.clone());
    let (status, text) = r
        .send(
            &format!("{TWOFACTOR}/ValidateTwoFactorSmsOtp"),
            &[("content-type", "application/xml")],
            format!("<ValidateTwoFactorSmsOtpRequest><OtpCode>{code}</OtpCode><OtpIdReference>{reference}</OtpIdReference><UserId>{CUSTOMER}</UserId></ValidateTwoFactorSmsOtpRequest>"),
        )
        .await;
    assert!(text.contains("<IsValid>true</IsValid>"), "{status}: {text}");

    // TwoFactor, form: create, validate by reference.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, text) = r
        .send(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &form,
            format!("UserId={CUSTOMER}&GsmNumber=%2B905551112233&TwoFactorConfigurationId=3&CustomerNote={NOTE}"),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let reference = after(&text, "OtpIdReference\":\"");
    let code = r.code(&reference).await;
    secrets.push(code.clone());
    let (status, text) = r
        .send(
            &format!("{TWOFACTOR}/ValidateTwoFactorSmsOtp"),
            &form,
            format!("UserId={CUSTOMER}&OtpIdReference={reference}&OtpCode={code}"),
        )
        .await;
    assert!(text.contains("\"IsValid\":true"), "{status}: {text}");

    // Capillary, JSON: token, session, code, validate.
    let cap = "/auth/v1";
    let id = json!({"identifierType":"MOBILE","identifierValue":CAPILLARY_MOBILE,"brand":"DocDemo","deviceId":"device-1"});
    let a = r.json(&format!("{cap}/token/generate"), &id).await;
    let sid = a["user"]["sessionId"]
        .as_str()
        .expect("a sessionId")
        .to_string();
    secrets.push(sid.clone());
    let mut with_session = id.clone();
    with_session["sessionId"] = json!(sid);
    let a = r.json(&format!("{cap}/otp/generate"), &with_session).await;
    assert_eq!(a["status"]["success"], true, "{a}");
    // The user's own number: the Summit logins' codes went to it too.
    let code = code_to(&r, &format!("+{CAPILLARY_MOBILE}"), &summit_txns).await;
    secrets.push(code.clone());
    with_session["otp"] = json!(code);
    let a = r.json(&format!("{cap}/otp/validate"), &with_session).await;
    assert_eq!(a["status"]["success"], true, "{a}");
    secrets.push(a["auth"]["token"].as_str().unwrap().to_string());
    secrets.push(a["auth"]["key"].as_str().unwrap().to_string());

    let files = r.stop().await;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // Summit: form login + TokenID generate, OTP login, XML generate, SOAP login;
    // TwoFactor: three; Capillary: one.
    assert_eq!(files.len(), 8, "{names:#?}");
    for dialect in ["-summit-", "-twofactor-", "-capillary-"] {
        assert!(names.iter().any(|n| n.contains(dialect)), "{names:#?}");
    }
    let parsed = scenarios(&files);
    assert!(parsed.iter().all(|s| !s.steps.is_empty()));
    let mut all = String::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lower = text.to_lowercase();
        for s in &secrets {
            assert!(!s.is_empty());
            assert!(
                !lower.contains(&s.to_lowercase()),
                "{s} is in {}:\n{text}",
                f.display()
            );
        }
        all.push_str(&text);
    }
    // What stands in their place.
    for placeholder in [
        "\"Password\":\"redacted\"",
        "<Password>redacted</Password>",
        "X-Api-Key = \"redacted\"",
        "Authorization = \"redacted\"",
        "\"CustomerNote\":\"redacted\"",
        "CustomerNote=redacted",
        "\"TokenID\":\"${tok}\"",
        "\"sessionId\":\"${sid}\"",
        "\"OtpCode\":\"${code}\"",
        "<OtpCode>${code}</OtpCode>",
        "OtpCode=${code}",
        "\"otp\":\"${code}\"",
        "<Password>${code}</Password>",
        "\"Password\":\"${code}\"",
        "@example.org",
    ] {
        assert!(all.contains(placeholder), "no {placeholder} in:\n{all}");
    }
    assert_eq!(r.stats.dropped(), 0);
}

both!(no_secret_is_recorded);
