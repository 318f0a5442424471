//! A generate and the requests that use its id land in one scenario, the code read
//! from the sink; the recorded directory replays against a fresh otpgate.

use serde_json::json;

use super::*;
use crate::both;
use crate::support::environment::prepared;

async fn otpgate_replay(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .arg("replay")
        .args(args)
        .env_remove("OTPGATE_CONFIG")
        .output()
        .await
        .expect("otpgate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// TwoFactor generates and their validates (JSON by OtpId; XML by reference, a wrong
/// code first) are recorded as two scenarios that `otpgate replay` passes against
/// another otpgate.
async fn twofactor_chains_replay_against_a_fresh_gateway(b: Backend) {
    let mut r = recorder(b, |_| {}).await;
    let a = r
        .json(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &json!({"UserId":CUSTOMER,"GsmNumber":"905321234567","TwoFactorConfigurationId":3,"Source":"web"}),
        )
        .await;
    let code = r.code(a["OtpIdReference"].as_str().unwrap()).await;
    let v = r
        .json(
            &format!("{TWOFACTOR}/ValidateTwoFactorSmsOtp"),
            &json!({"UserId":CUSTOMER,"OtpId":a["Id"],"OtpCode":code,"IsReturnChangeRequestId":true}),
        )
        .await;
    assert_eq!(v["IsValid"], true, "{v}");

    let xml = [("content-type", "application/xml")];
    let (_, text) = r
        .send(
            &format!("{TWOFACTOR}/CreateTwoFactorSmsOtp"),
            &xml,
            format!("<CreateTwoFactorSmsOtpRequest><GsmNumber>+90 532 987 12 34</GsmNumber><TwoFactorConfigurationId>3</TwoFactorConfigurationId><UserId>{CUSTOMER}</UserId></CreateTwoFactorSmsOtpRequest>"),
        )
        .await;
    let reference: String = text
        .split("<OtpIdReference>")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"))
        .chars()
        .take(36)
        .collect();
    let code = r.code(&reference).await;
    let validate = |code: &str| {
        format!(
            "<ValidateTwoFactorSmsOtpRequest><OtpCode>{code}</OtpCode><OtpIdReference>{reference}</OtpIdReference><UserId>{CUSTOMER}</UserId></ValidateTwoFactorSmsOtpRequest>"
        )
    };
    let (_, text) = r
        .send(
            &format!("{TWOFACTOR}/ValidateTwoFactorSmsOtp"),
            &xml,
            validate(&wrong(&code)),
        )
        .await;
    assert!(text.contains("<IsValid>false</IsValid>"), "{text}");
    let (_, text) = r
        .send(
            &format!("{TWOFACTOR}/ValidateTwoFactorSmsOtp"),
            &xml,
            validate(&code),
        )
        .await;
    assert!(text.contains("<IsValid>true</IsValid>"), "{text}");

    let files = r.stop().await;
    assert_eq!(files.len(), 2, "{files:?}");
    let s = scenarios(&files);
    let json_one = &s[0];
    assert_eq!(json_one.steps.len(), 2, "{:?}", json_one.steps);
    let sink = &json_one.steps[0].sink;
    assert_eq!(sink.len(), 1);
    assert_eq!(sink[0].capture, "code");
    assert_eq!(sink[0].transaction.as_deref(), Some("${ref}"));
    let answer = json_one.steps[0].response.body.as_deref().unwrap();
    assert!(
        answer.contains(r#""Id":{{id:digits}},"OtpIdReference":"{{ref:uuid}}""#),
        "{answer}"
    );
    let body = json_one.steps[1].request.body.as_deref().unwrap();
    assert!(
        body.contains(r#""OtpId":${id},"OtpCode":"${code}""#),
        "{body}"
    );
    let xml_one = &s[1];
    assert_eq!(xml_one.steps.len(), 3);
    let wrong_body = xml_one.steps[1].request.body.as_deref().unwrap();
    assert!(
        wrong_body.contains("<OtpCode>000000</OtpCode><OtpIdReference>${ref}</OtpIdReference>"),
        "{wrong_body}"
    );
    let right_body = xml_one.steps[2].request.body.as_deref().unwrap();
    assert!(
        right_body.contains("<OtpCode>${code}</OtpCode>"),
        "{right_body}"
    );
    // The number keeps its formatting, not its digits.
    let create = xml_one.steps[0].request.body.as_deref().unwrap();
    assert!(
        create.contains("<GsmNumber>+90 ") && !create.contains("987 12 34"),
        "{create}"
    );

    let fresh = prepared(b).await;
    let (ok, out) = otpgate_replay(&[
        "--target".as_ref(),
        fresh.base.as_str().as_ref(),
        "--sink".as_ref(),
        fresh.sink.as_os_str(),
        r.dir.as_os_str(),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
}

both!(twofactor_chains_replay_against_a_fresh_gateway);

/// A Summit OTP login chains on the TransactionID (the LoginApp's Password is the
/// code), a form login's generate on its TokenID, Capillary's otp routes on the
/// sessionId with the code taken by destination.
async fn summit_and_capillary_chains(b: Backend) {
    let mut r = recorder(b, |s| s.orgs.get_mut("1").expect("org 1").length = Some(8)).await;
    let a = r
        .json(
            SUMMIT,
            &json!({"ServiceName":"ADM_GenerateOTP","objCommonParameters":{"objUserInformation":{
                "AuthType":"LOGIN_OTP","CountryCode":"91","EncryptedEmailID":"Vishnu.kumar@syntel.com","DeviceId":"d"}}}),
        )
        .await;
    let txn = a["OutputObject"]["OTP_Communication"][0]["TransactionID"]
        .as_str()
        .unwrap()
        .to_string();
    let code = r.code(&txn).await;
    let login = |password: &str| {
        json!({"ServiceName":"LoginApp","objCommonParameters":{"_ProxyDetails":{"ReturnType":"JSON",
            "Password":password,"RequestType":"mobile","AuthType":"OTP","UserName":"","TransactionID":txn,"DeviceId":"d"}}})
    };
    let failed = r.json(SUMMIT, &login(&wrong(&code))).await;
    assert_ne!(failed["Errors"], "", "{failed}");
    let ok = r.json(SUMMIT, &login(&code)).await;
    assert!(ok["User"].is_object(), "{ok}");

    let cap = "/auth/v1";
    let id = json!({"identifierType":"EMAIL","identifierValue":"Vishnu.kumar@syntel.com","brand":"DocDemo","deviceId":"d"});
    let a = r.json(&format!("{cap}/token/generate"), &id).await;
    let mut with_session = id.clone();
    with_session["sessionId"] = a["user"]["sessionId"].clone();
    r.json(&format!("{cap}/otp/generate"), &with_session).await;

    let files = r.stop().await;
    assert_eq!(files.len(), 2, "{files:?}");
    let s = scenarios(&files);
    let (summit, capillary) = if files[0].to_string_lossy().contains("-summit-") {
        (&s[0], &s[1])
    } else {
        (&s[1], &s[0])
    };
    assert_eq!(summit.steps.len(), 3);
    assert_eq!(
        summit.steps[0].sink[0].transaction.as_deref(),
        Some("${txn}")
    );
    let answer = summit.steps[0].response.body.as_deref().unwrap();
    assert!(
        answer.contains(r#""TransactionID":"{{txn:uuid}}""#),
        "{answer}"
    );
    // The masked address in the answer is the fake's.
    assert!(
        answer.contains("OTP sent to per****@ex*****.org"),
        "{answer}"
    );
    let body = |i: usize| summit.steps[i].request.body.clone().unwrap();
    assert!(body(1).contains(r#""Password":"00000000""#), "{}", body(1));
    assert!(
        body(2).contains(r#""Password":"${code}","RequestType":"mobile","AuthType":"OTP","UserName":"","TransactionID":"${txn}""#),
        "{}",
        body(2)
    );
    // Capillary: token/generate and otp/generate, written at shutdown; the code of an
    // e-mail identifier is read by its (fake) address.
    assert_eq!(capillary.steps.len(), 2);
    let body = capillary.steps[1].request.body.as_deref().unwrap();
    assert!(body.contains(r#""sessionId":"${sid}""#), "{body}");
    assert!(capillary.steps[1].sink.is_empty(), "no code was used");
}

both!(summit_and_capillary_chains);
