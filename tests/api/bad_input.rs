//! Bad input never crashes and never leaks internals: each gets the envelope with a
//! clear Errors text and the status the design gives, and nothing stored changes.

use serde_json::{Value, json};

use crate::both;
use crate::support::*;

async fn each_bad_body_gets_a_clear_envelope(b: Backend) {
    let app = spawn_with(b, |s| s.max_body_bytes = 4096).await;
    app.vishnu().await;
    let deep_json = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let deep_xml = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (Some("application/json"), "{\"ServiceName\": ".into(), 400, "The request body is not valid JSON."),
        (Some("application/json"), "".into(), 400, "The request body is empty."),
        (Some("application/json"), "[1,2]".into(), 400, "The request must be an object with ServiceName and objCommonParameters."),
        (Some("application/json"), deep_json, 400, "The JSON is nested more than 32 levels deep."),
        (Some("application/xml"), "<CommonWS_JsonObjCall><ServiceName>".into(), 400, "The request body is not well-formed XML."),
        (
            Some("application/xml"),
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><x>&b;</x>".into(),
            400,
            "The XML request was refused: DTDs and entity declarations are not accepted.",
        ),
        (Some("text/xml"), deep_xml, 400, "The XML request was refused: the XML is nested more than 32 levels deep."),
        (Some("application/json"), "x".repeat(5000), 413, "The request body is larger than 4096 bytes."),
        (Some("application/json"), json!({"objCommonParameters": {}}).to_string(), 400, "ServiceName is required."),
        (Some("application/json"), json!({"ServiceName": ["LoginApp"]}).to_string(), 400, "ServiceName is required."),
        (
            Some("application/json"),
            json!({"ServiceName": "IM_GetIncidentList", "objCommonParameters": {}}).to_string(),
            200,
            "The ServiceName 'IM_GetIncidentList' is not supported.",
        ),
        (
            Some("application/json"),
            json!({"ServiceName": "LoginApp", "objCommonParameters": 5}).to_string(),
            200,
            "objCommonParameters must be an object.",
        ),
        (
            Some("application/json"),
            json!({"ServiceName": "LoginApp", "objCommonParameters": {}}).to_string(),
            200,
            "_ProxyDetails is required in objCommonParameters.",
        ),
        (
            Some("application/json"),
            json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": "FORM"}}).to_string(),
            200,
            "_ProxyDetails in objCommonParameters must be an object.",
        ),
        (
            Some("application/json"),
            json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {"AuthType": "OTP", "Password": "1"}}}).to_string(),
            200,
            "TransactionID is required in _ProxyDetails.",
        ),
        (
            Some("application/json"),
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"_ProxyDetails": {"AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123"}, "objUserInformation": {"UserID": "eight"}}}).to_string(),
            200,
            "UserID in objUserInformation must be a whole number.",
        ),
        (None, "garbage".into(), 400, "The request body is not valid JSON."),
    ];
    let before = (
        app.count("challenges").await,
        app.count("outbox").await,
        app.count("sessions").await,
    );
    for (ct, body, status, expected) in cases {
        let a = app.post(ENDPOINT, ct, body.clone()).await;
        assert_eq!(
            a.status,
            status,
            "{ct:?} {}: {}",
            &body[..body.len().min(60)],
            a.text
        );
        let errors = if a.content_type.contains("xml") {
            a.xml().value["Errors"].as_str().unwrap().to_string()
        } else {
            a.errors()
        };
        assert_eq!(errors, expected);
        assert!(!a.text.to_lowercase().contains("diesel") && !a.text.contains("panicked"));
    }
    let after = (
        app.count("challenges").await,
        app.count("outbox").await,
        app.count("sessions").await,
    );
    assert_eq!(before, after);
    // The gateway is still serving.
    app.login_otp("Vishnu.kumar@syntel.com", "d").await;
}

/// Clients that double-encode the envelope (a JSON string holding JSON) are served.
async fn double_encoded_json_is_accepted(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let inner = login_otp_request("Vishnu.kumar@syntel.com", "d").to_string();
    let a = app
        .post(
            ENDPOINT,
            Some("application/json"),
            Value::String(inner).to_string(),
        )
        .await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);
}

both!(
    each_bad_body_gets_a_clear_envelope,
    double_encoded_json_is_accepted
);
