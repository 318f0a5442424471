//! ADM_GenerateOTP's login code (LOGIN_OTP) for an e-mail nobody has, in JSON and XML,
//! and LoginApp with its TransactionID.

use serde_json::Value;

use super::{assert_alike, audited, live_messages, nothing_sent_for, shown_digits, without};
use crate::both;
use crate::support::*;

const KNOWN: &str = "Vishnu.kumar@syntel.com";
const UNKNOWN: &str = "nobody@nowhere.com";

fn communication(v: &Value) -> (String, String) {
    let c = &v["OutputObject"]["OTP_Communication"][0];
    (
        c["TransactionID"].as_str().unwrap_or_default().to_string(),
        c["Message"].as_str().unwrap_or_default().to_string(),
    )
}

/// The masked mobile at the end of `OTP sent to <e-mail> and <mobile>`.
fn masked_mobile(message: &str) -> &str {
    message.rsplit(' ').next().unwrap_or_default()
}

fn xml_request(email: &str, country: &str) -> String {
    format!(
        "<CommonWS_JsonObjCall><ServiceName>ADM_GenerateOTP</ServiceName><objCommonParameters>\
         <objUserInformation><AuthType>LOGIN_OTP</AuthType><CountryCode>{country}</CountryCode>\
         <EncryptedEmailID>{email}</EncryptedEmailID><DeviceId>d</DeviceId></objUserInformation>\
         </objCommonParameters></CommonWS_JsonObjCall>"
    )
}

async fn login_otp_answers_alike(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;

    // JSON.
    let known = app.summit(login_otp_request(KNOWN, "d")).await;
    let probe = app.summit(login_otp_request(UNKNOWN, "d")).await;
    assert_alike(&known, &probe, &["TransactionID", "Message"]);
    let (known_txn, known_message) = communication(&known.json());
    let (decoy_txn, message) = communication(&probe.json());
    assert_eq!(
        known_message,
        "OTP sent to Vis*********@sy****.com and *******219"
    );
    let digits = shown_digits(masked_mobile(&message), 7);
    assert_eq!(
        message,
        format!("OTP sent to nob***@no*****.com and *******{digits}"),
        "the e-mail masked as given, a ten-digit number"
    );
    assert!(uuid::Uuid::parse_str(&decoy_txn).is_ok(), "{decoy_txn}");
    assert_eq!(
        without(
            &known.text,
            &[&known_txn, "Vis*********@sy****.com", "*******219"]
        ),
        without(
            &probe.text,
            &[&decoy_txn, "nob***@no*****.com", masked_mobile(&message)]
        ),
        "the same bytes but for the volatile values"
    );

    // The same probe, the same answer: only the TransactionID is new.
    let again = app.summit(login_otp_request(UNKNOWN, "d")).await;
    let (again_txn, again_message) = communication(&again.json());
    assert_eq!(again_message, message);
    assert_ne!(again_txn, decoy_txn);

    // The known user's first code goes out before the XML request below supersedes
    // it: a superseded code's messages still queued are cancelled.
    app.code(&known_txn, "email").await;
    app.code(&known_txn, "sms").await;

    // XML, answered in XML.
    let known_xml = app
        .post(ENDPOINT, Some("application/xml"), xml_request(KNOWN, "91"))
        .await;
    let probe_xml = app
        .post(
            ENDPOINT,
            Some("application/xml"),
            xml_request(UNKNOWN, "91"),
        )
        .await;
    assert!(
        probe_xml.content_type.starts_with("application/xml"),
        "{}",
        probe_xml.content_type
    );
    assert_eq!(
        (known_xml.status, &known_xml.content_type),
        (probe_xml.status, &probe_xml.content_type)
    );
    let (kx, ux) = (known_xml.xml().value, probe_xml.xml().value);
    let (kx_txn, kx_message) = communication(&kx);
    let (ux_txn, ux_message) = communication(&ux);
    assert_eq!(kx_message, known_message);
    assert_eq!(ux_message, message, "XML or JSON, the same masked number");
    assert_eq!(
        without(&known_xml.text, &[&kx_txn, &kx_message]),
        without(&probe_xml.text, &[&ux_txn, &ux_message]),
    );

    // A known address with another country code names nobody either.
    let other_country = app
        .post(ENDPOINT, Some("application/xml"), xml_request(KNOWN, "44"))
        .await;
    let (oc_txn, oc_message) = communication(&other_country.xml().value);
    assert!(
        oc_message.starts_with("OTP sent to Vis*********@sy****.com and *******"),
        "{oc_message}"
    );
    shown_digits(masked_mobile(&oc_message), 7);

    // The known user's messages go out; nothing for the others.
    app.code(&kx_txn, "sms").await;
    let decoys = [decoy_txn, again_txn, ux_txn, oc_txn];
    nothing_sent_for(&app, &decoys).await;
    assert_eq!(live_messages(&app).await, 4, "two per known request");
    assert_eq!(audited(&app, "otp.generate", "unknown_user").await, 4);
}

/// LoginApp with a decoy's TransactionID answers as a wrong code does, down to the
/// same lockout; with another device, as a real code does.
async fn login_app_fails_as_a_wrong_code(b: Backend) {
    let app = spawn(b).await;
    let known_txn = app.vishnu_login_otp().await;
    let code = app.code(&known_txn, "sms").await;
    let decoy_txn = app.login_otp(UNKNOWN, "d").await;
    let k = app.login_app(&known_txn, &code, "another device").await;
    let u = app.login_app(&decoy_txn, &code, "another device").await;
    assert_eq!(
        k.errors(),
        "The DeviceId does not match the device the OTP was generated for."
    );
    assert_eq!(k.text, u.text);
    let mut texts = Vec::new();
    for _ in 0..4 {
        let k = app.login_app(&known_txn, &wrong(&code), "d").await;
        let u = app.login_app(&decoy_txn, &wrong(&code), "d").await;
        assert_eq!((k.status, &k.text), (u.status, &u.text));
        texts.push(u.errors());
    }
    assert_eq!(
        texts,
        [
            "Invalid OTP. 2 attempts are left.",
            "Invalid OTP. 1 attempt is left.",
            "Invalid OTP. No attempts are left; please generate a new OTP.",
            "Maximum number of OTP attempts exceeded. Please generate a new OTP.",
        ]
    );
    assert_eq!(app.count("sessions").await, 0);
}

/// A second request right away meets the resend cooldown, known or not.
async fn the_cooldown_holds_for_decoys_too(b: Backend) {
    let app = spawn_with(b, |s| s.otp.resend_cooldown_seconds = 30).await;
    app.vishnu().await;
    for email in [KNOWN, UNKNOWN] {
        let first = app.summit(login_otp_request(email, "d")).await;
        assert_eq!(first.errors(), "", "{}", first.text);
    }
    let k = app.summit(login_otp_request(KNOWN, "d")).await;
    let u = app.summit(login_otp_request(UNKNOWN, "d")).await;
    assert!(
        k.errors()
            .starts_with("An OTP was sent to this destination a moment ago."),
        "{}",
        k.text
    );
    assert_eq!(k.text, u.text);
    assert_eq!(audited(&app, "otp.generate", "resend_cooldown").await, 2);
}

both!(
    login_otp_answers_alike,
    login_app_fails_as_a_wrong_code,
    the_cooldown_holds_for_decoys_too,
);
