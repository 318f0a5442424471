//! What otpgate does not serve reaches the legacy server as the client sent it, and
//! its answer comes back the same way; routing overrides per name.

use otpgate::config::RouteTo;
use serde_json::json;

use super::*;
use crate::support::legacy::{Behaviour, LegacyServer};

#[tokio::test]
async fn an_unserved_service_name_is_forwarded_byte_for_byte() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |_| {}).await;
    let body = incident("");
    let path =
        "/Any/Prefix/REST/Summit_RESTWCF.svc/RestService/commonws_jsonobjcall_JSON?org=1&x=%20y";
    let a = app
        .request(
            reqwest::Method::POST,
            path,
            &[
                ("content-type", Some("application/json; charset=utf-8")),
                ("accept", Some("application/json")),
                ("soapaction", Some("\"urn:Summit/CommonWS_JsonObjCall\"")),
                ("accept-language", Some("tr-TR")),
                ("user-agent", Some("SummitMobile/7.2 (iOS)")),
                ("x-app-build", Some("771")),
                ("x-forwarded-for", Some("10.1.2.3")),
                ("connection", Some("keep-alive, x-hop")),
                ("x-hop", Some("one hop only")),
                ("proxy-authorization", Some("Basic c2VjcmV0")),
                ("accept-encoding", Some("gzip, br")),
            ],
            body.clone(),
        )
        .await;
    // The answer is the legacy server's, status, type and bytes.
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "application/json; charset=utf-8");
    assert_eq!(a.text, LegacyServer::ANSWER);

    let got = legacy.only();
    assert_eq!(got.method, "POST");
    assert_eq!(got.text(), body, "the body arrives unchanged");
    assert_eq!(
        got.path,
        format!("{LEGACY_PATH}_JSON"),
        "the client's suffix is kept"
    );
    assert_eq!(got.query, "org=1&x=%20y");
    for (name, value) in [
        ("content-type", "application/json; charset=utf-8"),
        ("accept", "application/json"),
        ("soapaction", "\"urn:Summit/CommonWS_JsonObjCall\""),
        ("accept-language", "tr-TR"),
        ("user-agent", "SummitMobile/7.2 (iOS)"),
        ("x-app-build", "771"),
        ("x-forwarded-for", "10.1.2.3, 127.0.0.1"),
        ("x-forwarded-proto", "http"),
    ] {
        assert_eq!(got.header(name), Some(value), "{name}");
    }
    assert_eq!(
        got.header("x-forwarded-host"),
        Some(app.base.trim_start_matches("http://"))
    );
    assert_eq!(
        got.header("accept-encoding"),
        None,
        "answers come back unencoded"
    );
    for hop in ["x-hop", "proxy-authorization"] {
        assert_eq!(got.header(hop), None, "{hop} is hop-by-hop");
    }
}

#[tokio::test]
async fn xml_and_soap_envelopes_are_forwarded_byte_for_byte() {
    let legacy = LegacyServer::start().await;
    legacy.set(Behaviour::Fixed(
        200,
        "text/xml; charset=utf-8",
        b"<CommonWS_JsonObjCallResult><Errors/><Output>legacy</Output></CommonWS_JsonObjCallResult>".to_vec(),
    ));
    let app = fronting(Backend::Sqlite, &legacy, |_| {}).await;
    let xml = "<?xml version=\"1.0\"?>\n<Request>\r\n  <ServiceName>SR_GetServiceRequest</ServiceName><objCommonParameters><_ProxyDetails><AuthType>APIKEY</AuthType><APIKey>k</APIKey></_ProxyDetails><Ticket>42</Ticket></objCommonParameters></Request>";
    let soap = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><CommonWS_JsonObjCall xmlns="http://tempuri.org/"><ServiceName>IM_GetIncident</ServiceName><objCommonParameters><_ProxyDetails><AuthType>APIKEY</AuthType></_ProxyDetails></objCommonParameters></CommonWS_JsonObjCall></s:Body></s:Envelope>"#;
    for (ct, body) in [("application/xml", xml), ("text/xml; charset=utf-8", soap)] {
        let a = app.post(ENDPOINT, Some(ct), body).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.content_type, "text/xml; charset=utf-8");
        assert!(a.text.contains("<Output>legacy</Output>"), "{}", a.text);
        let got = legacy.received().pop().unwrap();
        assert_eq!(got.text(), body);
        assert_eq!(got.header("content-type"), Some(ct));
    }
    assert_eq!(legacy.received().len(), 2);
}

#[tokio::test]
async fn the_upstream_status_and_body_come_back_unchanged() {
    let legacy = LegacyServer::start().await;
    let odd = b"{\"Errors\":\"Object reference not set\"}\n\n".to_vec();
    legacy.set(Behaviour::Fixed(500, "application/json", odd.clone()));
    let app = fronting(Backend::Sqlite, &legacy, |_| {}).await;
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!((a.status, a.text.as_bytes()), (500, odd.as_slice()));
    assert_eq!(
        legacy.received().len(),
        1,
        "a forwarded POST is never retried"
    );
}

#[tokio::test]
async fn what_otpgate_serves_stays_local() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |_| {}).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "email").await;
    let a = app.login_app(&txn, &code, "d").await;
    assert!(a.json()["User"].is_object(), "{}", a.text);
    let a = app
        .post_json(
            "/customerservice/api/TwoFactor/CreateTwoFactorSmsOtp",
            &json!({"GsmNumber": "905321234567", "TwoFactorConfigurationId": 999}),
        )
        .await;
    assert_ne!(a.text, LegacyServer::ANSWER);
    assert!(legacy.received().is_empty(), "{:?}", legacy.received());
}

#[tokio::test]
async fn routes_override_per_service_name_and_auth_type_without_case() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        route(s, "loginapp:form", RouteTo::Upstream);
        route(s, "IM_LOGORUPDATEINCIDENT", RouteTo::Refuse);
        route(s, "ADM_GenerateOTP", RouteTo::Upstream);
    })
    .await;
    app.vishnu().await;
    // A password login goes to the legacy server…
    let form = json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
        "AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123"}}});
    let a = app.summit(form).await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert_eq!(legacy.received().len(), 1);
    // …an OTP login stays here (it fails here: no such transaction).
    let a = app
        .login_app("36d97a51-07ee-480e-a50e-e6fb53baf14f", "123456", "d")
        .await;
    assert_ne!(a.text, LegacyServer::ANSWER);
    assert_eq!(legacy.received().len(), 1);
    // A served name routed upstream goes there.
    let a = app.summit(otpgate_generate()).await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert_eq!(legacy.received().len(), 2);
    // A refused name goes nowhere.
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.errors(),
        "The ServiceName 'IM_LogOrUpdateIncident' is not available."
    );
    assert_eq!(legacy.received().len(), 2);
}

fn otpgate_generate() -> serde_json::Value {
    login_otp_request("Vishnu.kumar@syntel.com", "d")
}

#[tokio::test]
async fn without_an_upstream_unserved_names_are_refused_as_before() {
    let app = spawn(Backend::Sqlite).await;
    let a = app
        .post(ENDPOINT, Some("application/json"), incident(""))
        .await;
    assert_eq!(
        a.errors(),
        "The ServiceName 'IM_LogOrUpdateIncident' is not supported."
    );
}

#[tokio::test]
async fn twofactor_and_capillary_paths_are_forwarded_under_their_base() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream
            .twofactor
            .routes
            .insert("createtwofactorsmsotp".into(), RouteTo::Refuse);
        s.upstream
            .capillary
            .routes
            .insert("web/otp/generate".into(), RouteTo::Upstream);
    })
    .await;
    let a = app
        .post(
            "/customerservice/api/TwoFactor/GetTwoFactorStatus?id=7",
            Some("application/xml"),
            "<Status><Id>7</Id></Status>",
        )
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    let got = legacy.received().pop().unwrap();
    assert_eq!(got.path, "/legacy/api/TwoFactor/GetTwoFactorStatus");
    assert_eq!(
        (got.query.as_str(), got.text().as_str()),
        ("id=7", "<Status><Id>7</Id></Status>")
    );

    let a = app
        .request(
            reqwest::Method::GET,
            "/shop/auth/v1/user/get?mobile=1",
            &[("cap_authorization", Some("Bearer abc"))],
            String::new(),
        )
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    let got = legacy.received().pop().unwrap();
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("GET", "/legacy/auth/v1/user/get")
    );
    assert_eq!(got.header("cap_authorization"), Some("Bearer abc"));

    // A served route routed upstream, and a refused one.
    let a = app
        .post_json("/auth/v1/web/otp/generate", &json!({"mobile": "1"}))
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    let a = app
        .post_json(
            "/customerservice/api/TwoFactor/CreateTwoFactorSmsOtp",
            &json!({"GsmNumber": "905321234567"}),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.json()["Message"],
        "The operation 'CreateTwoFactorSmsOtp' is not available."
    );
    assert_eq!(legacy.received().len(), 3);
}

#[tokio::test]
async fn a_route_to_a_name_otpgate_does_not_serve_cannot_be_local() {
    let mut s = test_settings("sqlite://unused.db", std::path::Path::new("."));
    s.upstream
        .summit
        .routes
        .insert("IM_LogOrUpdateIncident".into(), RouteTo::Local);
    let e = otpgate::dialects::check_routes(&s.upstream).unwrap_err();
    assert!(
        e.contains("'IM_LogOrUpdateIncident' is routed local"),
        "{e}"
    );
    s.upstream.summit.routes.clear();
    s.upstream
        .capillary
        .routes
        .insert("otp/generate".into(), RouteTo::Upstream);
    let e = s.validate().unwrap_err();
    assert!(e.contains("upstream.capillary.routes: 'otp/generate' is routed upstream, but upstream.capillary has no url or base_url"), "{e}");
}

#[tokio::test]
async fn forwarded_bodies_may_be_larger_than_what_otpgate_answers_itself() {
    let legacy = LegacyServer::start().await;
    let app = fronting(Backend::Sqlite, &legacy, |s| {
        s.upstream.summit.max_request_bytes = 512 * 1024;
        s.upstream.twofactor.max_request_bytes = 512 * 1024;
    })
    .await;
    let attachment = "A".repeat(200 * 1024);
    let big = incident(&format!(r#","Attachment":"{attachment}""#));
    let a = app
        .post(ENDPOINT, Some("application/json"), big.clone())
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert_eq!(legacy.only().body.len(), big.len());
    // The same size for a ServiceName answered here is too large.
    let mut generate = login_otp_request("Vishnu.kumar@syntel.com", "d");
    generate["objCommonParameters"]["Padding"] = json!(attachment);
    let a = app.summit(generate).await;
    assert_eq!(
        (a.status, a.errors()),
        (
            413,
            "The request body is larger than 65536 bytes.".to_string()
        )
    );
    // Beyond max_request_bytes, nothing is forwarded.
    let huge = incident(&format!(r#","Attachment":"{}""#, "A".repeat(600 * 1024)));
    let a = app.post(ENDPOINT, Some("application/json"), huge).await;
    assert_eq!(a.status, 413);
    let a = app
        .post("/api/TwoFactor/Upload", Some("application/json"), big)
        .await;
    assert_eq!(a.text, LegacyServer::ANSWER);
    assert_eq!(legacy.received().len(), 2);
}
