//! The per-client throttle: token buckets per client address and per identifier,
//! `security.trusted_proxies` for X-Forwarded-For, failed API keys, and the 429 each
//! dialect answers, in its shape and format, with Retry-After.

use otpgate::cli::BrandSettings;
use otpgate::config::{Buckets, Rate, Settings};
use serde_json::{Value, json};

use crate::both;
use crate::schemas::validate;
use crate::support::*;

const OFF: Rate = Rate::new(0, 0);

/// The throttle on, every bucket off but those `f` sets.
fn throttle(s: &mut Settings, f: impl FnOnce(&mut otpgate::config::ThrottleSettings)) {
    let t = &mut s.security.throttle;
    t.enabled = true;
    for b in [&mut t.generate, &mut t.verify, &mut t.login] {
        *b = Buckets {
            per_address: OFF,
            per_identifier: OFF,
        };
    }
    f(t);
}

impl TestApp {
    /// Posts a JSON envelope as if relayed for `forwarded_for`.
    async fn summit_from(&self, forwarded_for: &str, body: &Value) -> Answer {
        self.request(
            reqwest::Method::POST,
            ENDPOINT,
            &[
                ("content-type", Some("application/json")),
                ("x-forwarded-for", Some(forwarded_for)),
            ],
            body.to_string(),
        )
        .await
    }
}

/// A 429 with a Retry-After of a whole number of seconds within the bucket's refill,
/// and that number in the text.
fn assert_throttled(a: &Answer, max_wait: u64) -> u64 {
    assert_eq!(a.status, 429, "{}", a.text);
    let secs: u64 = a
        .retry_after
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", a.retry_after));
    assert!((1..=max_wait).contains(&secs), "{secs}");
    secs
}

fn summit_throttle_text(secs: u64) -> String {
    format!("Too many requests. Please try again in {secs} seconds.")
}

async fn a_script_is_stopped_by_its_address_and_nothing_is_stored(b: Backend) {
    let app = spawn_with(b, |s| {
        throttle(s, |t| t.generate.per_address = Rate::new(1, 3));
    })
    .await;
    app.vishnu().await;
    for _ in 0..3 {
        app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    }
    let (challenges, outbox) = (app.count("challenges").await, app.count("outbox").await);
    let a = app
        .summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))
        .await;
    let secs = assert_throttled(&a, 60);
    validate("summit/response.schema.json", &a.content_type, &a.text).unwrap();
    let v = a.json();
    assert_eq!(v["Errors"], summit_throttle_text(secs));
    assert_eq!(v["OutputObject"], Value::Null);
    assert_eq!(v["TokenID"], Value::Null);
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );

    // In XML and in SOAP, the same refusal in the request's own format.
    let xml = "<CommonWS_JsonObjCall><ServiceName>ADM_GenerateOTP</ServiceName><objCommonParameters><objUserInformation><AuthType>LOGIN_OTP</AuthType><CountryCode>91</CountryCode><EncryptedEmailID>Vishnu.kumar@syntel.com</EncryptedEmailID><DeviceId>d</DeviceId></objUserInformation></objCommonParameters></CommonWS_JsonObjCall>";
    let a = app.post(ENDPOINT, Some("application/xml"), xml).await;
    let secs = assert_throttled(&a, 60);
    assert!(a.content_type.contains("xml"), "{}", a.content_type);
    let doc = a.xml();
    assert_eq!(doc.root_name, "CommonWS_JsonObjCallResult", "{}", a.text);
    assert_eq!(
        doc.value["Errors"],
        summit_throttle_text(secs),
        "{}",
        a.text
    );
    let soap = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{xml}</soap:Body></soap:Envelope>"
    );
    let a = app.post(ENDPOINT, Some("text/xml"), soap).await;
    let secs = assert_throttled(&a, 60);
    assert!(
        a.text.contains("soap:Envelope") || a.text.contains("s:Envelope"),
        "{}",
        a.text
    );
    assert!(a.text.contains(&summit_throttle_text(secs)), "{}", a.text);

    // Nothing was issued, stored or queued for the refused requests.
    assert_eq!(app.count("challenges").await, challenges);
    assert_eq!(app.count("outbox").await, outbox);
}

async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(b: Backend) {
    let app = spawn_with(b, |s| {
        throttle(s, |t| t.generate.per_address = Rate::new(1, 2));
    })
    .await;
    // Each request claims another address; the peer (this test) is not a trusted
    // proxy, so all of them are its own.
    for (i, claimed) in ["198.51.100.1", "198.51.100.2"].iter().enumerate() {
        let req = login_otp_request(&format!("probe{i}@example.com"), "d");
        let a = app.summit_from(claimed, &req).await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let req = login_otp_request("probe9@example.com", "d");
    let a = app.summit_from("198.51.100.3", &req).await;
    assert_throttled(&a, 60);
}

async fn behind_a_trusted_proxy_each_client_has_its_own_bucket(b: Backend) {
    let app = spawn_with(b, |s| {
        s.security.trusted_proxies = vec!["127.0.0.0/8".into()];
        throttle(s, |t| t.generate.per_address = Rate::new(1, 2));
    })
    .await;
    let mut n = 0;
    let mut ask = |from: &str| {
        n += 1;
        (
            from.to_string(),
            login_otp_request(&format!("p{n}@example.com"), "d"),
        )
    };
    for _ in 0..2 {
        let (from, req) = ask("198.51.100.1");
        assert_eq!(app.summit_from(&from, &req).await.status, 200);
    }
    let (from, req) = ask("198.51.100.1");
    assert_throttled(&app.summit_from(&from, &req).await, 60);
    // Another client behind the same proxy is not held up.
    let (from, req) = ask("198.51.100.2");
    assert_eq!(app.summit_from(&from, &req).await.status, 200);
    // What the client wrote to the left of its real address is not believed: the
    // rightmost hop the proxy did not add is the client.
    let (from, req) = ask("203.0.113.77, 198.51.100.1");
    assert_throttled(&app.summit_from(&from, &req).await, 60);
    // A chain of trusted proxies is walked back to the client.
    let (from, req) = ask("198.51.100.3, 127.0.0.5");
    assert_eq!(app.summit_from(&from, &req).await.status, 200);
    let (from, req) = ask("198.51.100.3, 127.0.0.9");
    assert_eq!(app.summit_from(&from, &req).await.status, 200);
    let (from, req) = ask("198.51.100.3");
    assert_throttled(&app.summit_from(&from, &req).await, 60);
}

async fn an_identifier_is_throttled_whatever_address_asks(b: Backend) {
    let app = spawn_with(b, |s| {
        s.security.trusted_proxies = vec!["127.0.0.1".into()];
        throttle(s, |t| t.login.per_identifier = Rate::new(1, 2));
    })
    .await;
    app.vishnu().await;
    let form = |user: &str| {
        json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "FORM", "UserName": user, "Password": "guess", "ReturnType": "JSON"}}})
    };
    for from in ["198.51.100.1", "198.51.100.2"] {
        let a = app.summit_from(from, &form("vishnu")).await;
        assert_eq!(a.errors(), "Invalid user name or password.");
    }
    // A third guess at the same login, from yet another address, waits; the login
    // name is compared without case.
    let a = app.summit_from("198.51.100.3", &form("VISHNU")).await;
    let secs = assert_throttled(&a, 60);
    assert_eq!(a.errors(), summit_throttle_text(secs));
    // The right password waits too: the bucket counts attempts, not failures.
    let right = json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
        "AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123", "ReturnType": "JSON"}}});
    assert_throttled(&app.summit_from("198.51.100.4", &right).await, 60);
    // Another login name is not held up by it.
    let a = app.summit_from("198.51.100.3", &form("someone")).await;
    assert_eq!(a.errors(), "Invalid user name or password.");
}

async fn failed_api_keys_cost_their_address_more(b: Backend) {
    let app = spawn_with(b, |s| {
        s.security.trusted_proxies = vec!["127.0.0.1".into()];
        throttle(s, |t| t.generate.per_address = Rate::new(1, 12));
    })
    .await;
    app.vishnu().await;
    // (Four codes stay within the send limit of five.)
    let key = {
        let c = app.app.clone();
        c.db.run(|c| Ok(otpgate::core::api_keys::create(c, "vishnu", "t", None)?.key))
            .await
            .unwrap()
    };
    let with_key = |key: &str| {
        json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
            "_ProxyDetails": {"AuthType": "APIKEY", "APIKey": key, "ReturnType": "JSON"},
            "objUserInformation": {"UserID": 836}}})
    };
    // A good key, used four times from one address, is not held up.
    for _ in 0..4 {
        let a = app.summit_from("198.51.100.1", &with_key(&key)).await;
        assert_eq!(a.errors(), "", "{}", a.text);
    }
    // Two wrong keys from another address use up its twelve requests.
    let wrong = "P9DYAvNptCmTgmVLTllwuIUfAJGk83TiSftXIYR/fkQ=";
    for _ in 0..2 {
        let a = app.summit_from("198.51.100.2", &with_key(wrong)).await;
        assert_eq!(a.errors(), "Invalid API key.");
    }
    let a = app.summit_from("198.51.100.2", &with_key(&key)).await;
    assert_throttled(&a, 60);
}

async fn twofactor_answers_429_in_its_dto_in_json_and_xml(b: Backend) {
    let app = spawn_with(b, |s| {
        throttle(s, |t| {
            t.generate.per_address = Rate::new(1, 1);
            t.verify.per_address = Rate::new(1, 1);
        });
    })
    .await;
    let api = "/customerservice/api/TwoFactor";
    let create = json!({"UserId": "3698b76f-a5c0-4b04-b579-bc084019fb95", "GsmNumber": "905321234567",
        "TwoFactorConfigurationId": 0, "IsSync": false, "Source": "web"});
    let first = app
        .post_json(&format!("{api}/CreateTwoFactorSmsOtp"), &create)
        .await;
    assert_eq!(first.json()["Success"], true, "{}", first.text);
    let a = app
        .post_json(&format!("{api}/CreateTwoFactorSmsOtp"), &create)
        .await;
    let secs = assert_throttled(&a, 60);
    validate(
        "twofactor/CreateTwoFactorSmsOtpResponse.schema.json",
        &a.content_type,
        &a.text,
    )
    .unwrap();
    let v = a.json();
    assert_eq!(v["Success"], false);
    assert_eq!(v["Code"], 4000, "{}", a.text);
    assert_eq!(v["ExceptionMessage"], summit_throttle_text(secs));
    assert_eq!(v["OtpIdReference"], Value::Null);

    let xml = "<CreateTwoFactorSmsOtpRequest><UserId>3698b76f-a5c0-4b04-b579-bc084019fb95</UserId><GsmNumber>905321234567</GsmNumber><TwoFactorConfigurationId>0</TwoFactorConfigurationId></CreateTwoFactorSmsOtpRequest>";
    let a = app
        .post(
            &format!("{api}/CreateTwoFactorSmsOtp"),
            Some("application/xml"),
            xml,
        )
        .await;
    assert_throttled(&a, 60);
    validate("twofactor/twofactor.xsd", &a.content_type, &a.text).unwrap();
    let doc = a.xml();
    assert_eq!(doc.root_name, "CreateTwoFactorSmsOtpResponse", "{}", a.text);
    assert_eq!(doc.value["Code"], "MaxOtpRequestExceededCode", "{}", a.text);

    let reference = first.json()["OtpIdReference"].as_str().unwrap().to_string();
    let validate = json!({"UserId": "3698b76f-a5c0-4b04-b579-bc084019fb95", "OtpIdReference": reference, "OtpCode": "000000"});
    let path = format!("{api}/ValidateTwoFactorSmsOtp");
    let a = app.post_json(&path, &validate).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = app.post_json(&path, &validate).await;
    assert_throttled(&a, 60);
    let v = a.json();
    assert_eq!(
        (v["IsValid"].clone(), v["Code"].clone()),
        (json!(false), json!(6009)),
        "{}",
        a.text
    );
    // The refused check did not spend one of the OTP's attempts.
    let left = app
        .app
        .db
        .run(move |c| Ok(otpgate::db::challenges::find(c, &reference)?.map(|ch| ch.attempts)))
        .await
        .unwrap();
    assert_eq!(left, Some(1));
}

async fn capillary_answers_429_in_its_status(b: Backend) {
    let app = spawn_with(b, |s| {
        throttle(s, |t| t.generate.per_identifier = Rate::new(1, 1));
    })
    .await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    let req = |mobile: &str| json!({"identifierType": "MOBILE", "identifierValue": mobile, "brand": "DocDemo", "deviceId": "dev-1"});
    let a = app
        .post_json("/auth/v1/token/generate", &req("919999999001"))
        .await;
    assert_eq!(a.json()["status"]["success"], true, "{}", a.text);
    let a = app
        .post_json("/auth/v1/web/token/generate", &req("919999999001"))
        .await;
    assert_throttled(&a, 60);
    assert_eq!(
        a.json(),
        json!({"status": {"success": false, "code": 429, "message": "Rate limit exceeded."}})
    );
    assert!(a.content_type.starts_with("application/json"));
    let a = app
        .post_json("/auth/v1/token/generate", &req("919999999002"))
        .await;
    assert_eq!(a.json()["status"]["success"], true, "{}", a.text);
}

async fn the_defaults_let_people_through_and_stop_a_script(b: Backend) {
    let app = spawn_with(b, |s| {
        s.security.throttle = Default::default();
    })
    .await;
    // A person: a code, a wrong guess, the right code; a mistyped password, then the
    // right one.
    let txn = app.vishnu_login_otp().await;
    let a = app.login_app(&txn, "000000x", "d").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let code = app.code(&txn, "email").await;
    let a = app.login_app(&txn, &code, "d").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.json()["User"].is_object(), "{}", a.text);
    for password in ["Secret#12", "Secret#123"] {
        let a = app
            .summit(
                json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
                "AuthType": "FORM", "UserName": "vishnu", "Password": password}}}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // A script trying a hundred addresses is stopped after its burst.
    let mut refused = None;
    for i in 0..100 {
        let a = app
            .summit(login_otp_request(&format!("list{i}@example.com"), "d"))
            .await;
        if a.status == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let at = refused.expect("the script was throttled");
    assert!(at >= 50, "refused after only {at} requests");
}

both!(
    a_script_is_stopped_by_its_address_and_nothing_is_stored,
    spoofed_forwarded_for_from_an_untrusted_peer_is_ignored,
    behind_a_trusted_proxy_each_client_has_its_own_bucket,
    an_identifier_is_throttled_whatever_address_asks,
    failed_api_keys_cost_their_address_more,
    twofactor_answers_429_in_its_dto_in_json_and_xml,
    capillary_answers_429_in_its_status,
    the_defaults_let_people_through_and_stop_a_script,
);
