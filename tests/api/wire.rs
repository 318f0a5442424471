//! Paths, methods, formats: what any client of the envelope relies on.

use serde_json::json;

use crate::both;
use crate::support::*;

async fn paths_match_by_suffix_in_any_case(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    for path in [
        "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall",
        "/SummitAI/DC/REST/Summit_RESTWCF.svc/RestService/CommonWS_JsonObjCall",
        "/api_integration/rest/summit_restwcf.svc/restservice/commonws_jsonobjcall_JSON",
    ] {
        let a = app
            .post(
                path,
                Some("application/json"),
                login_otp_request("Vishnu.kumar@syntel.com", "d").to_string(),
            )
            .await;
        assert_eq!(a.json()["Errors"], "", "{path}: {}", a.text);
    }
    let a = app
        .request(reqwest::Method::GET, ENDPOINT, &[], String::new())
        .await;
    assert_eq!(a.status, 405);
    assert_eq!(a.errors(), "Method not allowed: use POST.");
    let a = app
        .post(
            "/REST/Summit_RESTWCF.svc/RESTService/CommonWS_Nothing",
            Some("application/json"),
            "{}",
        )
        .await;
    assert_eq!(a.status, 404);
    assert!(a.errors().starts_with("Unknown operation path"));
    let a = app
        .request(reqwest::Method::GET, "/nowhere", &[], String::new())
        .await;
    assert_eq!(a.status, 404);
}

async fn the_answer_format_follows_return_type_then_accept_then_the_request(b: Backend) {
    let app = spawn(b).await;
    let mut req = login_app_request("x", "1", "d");
    let json_body = req.to_string();
    // JSON request, ReturnType JSON, Accept XML: ReturnType wins.
    let a = app
        .request(
            reqwest::Method::POST,
            ENDPOINT,
            &[
                ("content-type", Some("application/json")),
                ("accept", Some("application/xml")),
            ],
            json_body.clone(),
        )
        .await;
    assert!(a.content_type.starts_with("application/json"));
    // No ReturnType: Accept decides.
    req["objCommonParameters"]["_ProxyDetails"]["ReturnType"] = json!("");
    let a = app
        .request(
            reqwest::Method::POST,
            ENDPOINT,
            &[
                ("content-type", Some("application/json")),
                ("accept", Some("text/xml")),
            ],
            req.to_string(),
        )
        .await;
    assert!(a.content_type.contains("xml"), "{}", a.content_type);
    assert_eq!(
        a.xml().value["Errors"],
        "Invalid TransactionID: no OTP was generated with this TransactionID."
    );
    // ReturnType xml (any case) on a JSON request.
    req["objCommonParameters"]["_ProxyDetails"]["ReturnType"] = json!("xml");
    let a = app
        .post(ENDPOINT, Some("application/json"), req.to_string())
        .await;
    assert!(
        a.text.starts_with("<CommonWS_JsonObjCallResult "),
        "{}",
        a.text
    );
    // XML request asking for JSON.
    let xml = "<CommonWS_JsonObjCall><ServiceName>LoginApp</ServiceName><objCommonParameters><_ProxyDetails><ReturnType>Json</ReturnType><AuthType>OTP</AuthType><TransactionID>x</TransactionID><Password>1</Password></_ProxyDetails></objCommonParameters></CommonWS_JsonObjCall>";
    let a = app.post(ENDPOINT, Some("application/xml"), xml).await;
    assert_eq!(
        a.errors(),
        "Invalid TransactionID: no OTP was generated with this TransactionID."
    );
    // No Content-Type: sniffed from the first byte.
    let a = app
        .post(ENDPOINT, None, format!("  {}", xml.replace("Json", "")))
        .await;
    assert!(a.content_type.contains("xml"));
    let a = app.post(ENDPOINT, Some("text/plain"), json_body).await;
    assert!(a.content_type.starts_with("application/json"));
}

async fn soap_envelopes_are_answered_in_kind(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    for (ns, ct) in [
        (
            "http://schemas.xmlsoap.org/soap/envelope/",
            "text/xml; charset=utf-8",
        ),
        (
            "http://www.w3.org/2003/05/soap-envelope",
            "application/soap+xml; charset=utf-8",
        ),
    ] {
        let body = format!(
            "<soapenv:Envelope xmlns:soapenv=\"{ns}\"><soapenv:Header/><soapenv:Body><tem:CommonWS_JsonObjCall xmlns:tem=\"http://tempuri.org/\"><tem:ServiceName>ADM_GenerateOTP</tem:ServiceName><tem:objCommonParameters><tem:objUserInformation><tem:AuthType>LOGIN_OTP</tem:AuthType><tem:CountryCode>91</tem:CountryCode><tem:EncryptedEmailID>Vishnu.kumar@syntel.com</tem:EncryptedEmailID><tem:DeviceId>d</tem:DeviceId></tem:objUserInformation></tem:objCommonParameters></tem:CommonWS_JsonObjCall></soapenv:Body></soapenv:Envelope>"
        );
        let a = app.post(ENDPOINT, Some(ct), body).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.content_type, ct);
        assert!(
            a.text.starts_with(&format!(
                "<s:Envelope xmlns:s=\"{ns}\"><s:Body><CommonWS_JsonObjCallResult "
            )),
            "{}",
            a.text
        );
        let doc = a.xml();
        assert_eq!(doc.value["Errors"], "");
        assert_eq!(
            doc.value["OutputObject"]["OTP_Communication"][0]["AuthenticationType"],
            "otp"
        );
    }
}

async fn health_and_readiness(b: Backend) {
    let app = spawn(b).await;
    let a = app
        .request(reqwest::Method::GET, "/healthz", &[], String::new())
        .await;
    assert_eq!((a.status, a.json()["status"].as_str()), (200, Some("ok")));
    let a = app
        .request(reqwest::Method::GET, "/readyz", &[], String::new())
        .await;
    assert_eq!(a.status, 200);
    let backend = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(a.json(), json!({"status": "ready", "database": backend}));
}

both!(
    paths_match_by_suffix_in_any_case,
    the_answer_format_follows_return_type_then_accept_then_the_request,
    soap_envelopes_are_answered_in_kind,
    health_and_readiness,
);
