//! ADM_GenerateOTP: both forms, authentication, destinations, limits.

use serde_json::{Value, json};

use crate::both;
use crate::support::*;

fn form_generate(user: &str, password: &str, info: Value) -> Value {
    json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
        "_ProxyDetails": {"AuthType": "FORM", "UserName": user, "Password": password, "OrgID": "1", "ReturnType": "JSON"},
        "objUserInformation": info}})
}

async fn form_login_sends_to_both_destinations_and_opens_a_session(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let info =
        json!({"DomainId": 1, "UserID": 836, "LoginUID": "1xxxx4", "UserName": "Vishnu Kumar"});
    let a = app
        .summit(form_generate("vishnu", "Secret#123", info.clone()))
        .await;
    let v = a.json();
    assert_eq!(v["Errors"], "", "{}", a.text);
    let token = v["TokenID"].as_str().unwrap().to_string();
    let txn = transaction_id(&v);
    let (email_code, sms_code) = (app.code(&txn, "email").await, app.code(&txn, "sms").await);
    assert_eq!(email_code, sms_code, "one code, two channels");
    let sms = app
        .deliveries()
        .into_iter()
        .find(|m| m["channel"] == "sms")
        .unwrap();
    assert_eq!(sms["destination"], "+919876543219");
    let mail = app
        .deliveries()
        .into_iter()
        .find(|m| m["channel"] == "email")
        .unwrap();
    assert_eq!(mail["destination"], "Vishnu.kumar@syntel.com");
    assert_eq!(mail["subject"], "Your otpgate one-time password");

    // The session token authenticates the next request, and comes back unchanged.
    let by_token = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
        "_ProxyDetails": {"TokenID": token, "AuthType": ""}, "objUserInformation": info}});
    let a = app.summit(by_token).await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);
    assert_eq!(a.json()["TokenID"], token.as_str());
    // The login e-mail works as the user name too, in any case.
    let a = app
        .summit(form_generate(
            "VISHNU.KUMAR@syntel.com",
            "Secret#123",
            json!({"UserID": "836"}),
        ))
        .await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);
}

async fn authentication_failures_are_distinct_and_store_nothing(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let bad = [
        (
            form_generate("vishnu", "wrong-password", json!({})),
            "Invalid user name or password.",
        ),
        (
            form_generate("nobody", "Secret#123", json!({})),
            "Invalid user name or password.",
        ),
        (
            form_generate("vishnu", "Secret#123", json!({"UserID": 837})),
            "The user details do not match the authenticated user.",
        ),
        (
            form_generate("vishnu", "Secret#123", json!({"LoginUID": "999"})),
            "The user details do not match the authenticated user.",
        ),
        (
            form_generate("vishnu", "Secret#123", json!({"DomainId": "2"})),
            "The user details do not match the authenticated user.",
        ),
        (
            form_generate("vishnu", "Secret#123", json!({"UserName": "Somebody Else"})),
            "The user details do not match the authenticated user.",
        ),
        (
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
                "_ProxyDetails": {"TokenID": "AB".repeat(32)}, "objUserInformation": {}}}),
            "The TokenID is invalid or has expired. Please log in again.",
        ),
        (
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
                "_ProxyDetails": {"AuthType": "APIKEY", "APIKey": "x"}, "objUserInformation": {}}}),
            "Invalid API key.",
        ),
        (
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
                "_ProxyDetails": {"AuthType": "SSO"}, "objUserInformation": {}}}),
            "AuthType 'SSO' is not supported in _ProxyDetails: use FORM with UserName and Password, APIKEY with APIKey, or send the TokenID of a session.",
        ),
        (
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"objUserInformation": {"UserID": 1}}}),
            "_ProxyDetails is required in objCommonParameters unless objUserInformation.AuthType is LOGIN_OTP.",
        ),
        (
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"_ProxyDetails": {"AuthType": "FORM"}}}),
            "objUserInformation is required in objCommonParameters.",
        ),
        (
            form_generate("vishnu", "", json!({})),
            "Password is required in _ProxyDetails.",
        ),
    ];
    for (request, expected) in bad {
        let a = app.summit(request.clone()).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.errors(), expected, "for {request}");
        assert_eq!(a.json()["TokenID"], Value::Null);
        assert_eq!(a.json()["OutputObject"], Value::Null);
    }
    assert_eq!(app.count("challenges").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    assert_eq!(app.count("sessions").await, 0);
}

async fn pre_login_failures(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let req = |f: &dyn Fn(&mut Value)| {
        let mut r = login_otp_request("Vishnu.kumar@syntel.com", "dev");
        f(&mut r["objCommonParameters"]["objUserInformation"]);
        r
    };
    // An address no user has is no failure by default: unknown_users.rs.
    let cases: Vec<(Value, &str)> = vec![
        (
            req(&|i| i["CountryCode"] = json!("")),
            "CountryCode is required in objUserInformation.",
        ),
        (
            req(&|i| i["DeviceId"] = Value::Null),
            "DeviceId is required in objUserInformation.",
        ),
        (
            req(&|i| {
                i.as_object_mut().unwrap().remove("EncryptedEmailID");
            }),
            "EncryptedEmailID is required in objUserInformation.",
        ),
        (
            req(&|i| i["DeviceId"] = json!({"a": 1})),
            "DeviceId in objUserInformation must be a text value.",
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(app.summit(request).await.errors(), expected);
    }
    assert_eq!(app.count("challenges").await, 0);
    // Field names in any case, values in any scalar spelling.
    let a = app
        .summit(json!({"servicename": "adm_generateotp", "OBJCOMMONPARAMETERS": {"objuserinformation": {
            "authtype": "login_otp", "countrycode": 91, "encryptedemailid": "vishnu.KUMAR@syntel.com", "deviceid": 12345}}}))
        .await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);
}

/// Channels follow the policy, and a user without an address for one gets the other.
async fn channels_follow_policy_and_addresses(b: Backend) {
    let app = spawn_with(b, |s| {
        s.orgs.insert(
            "2".into(),
            otpgate::config::PolicyOverride {
                channels: Some(vec!["sms".into()]),
                ..Default::default()
            },
        );
    })
    .await;
    app.add_user(otpgate::core::users::NewUser {
        login_uid: "2001".into(),
        user_name: "Sms Only Org".into(),
        email: "sms.org@example.com".into(),
        mobile: "+44 7700 900123".into(),
        org_id: 2,
        ..Default::default()
    })
    .await;
    let txn = app.login_otp("sms.org@example.com", "d").await;
    app.code(&txn, "sms").await;
    let sms = app
        .deliveries()
        .into_iter()
        .find(|m| m["transaction_id"] == txn.as_str())
        .unwrap();
    assert_eq!(sms["destination"], "+447700900123");
    assert!(app.deliveries().iter().all(|m| m["channel"] != "email"));
    let a = app
        .summit(login_otp_request("sms.org@example.com", "d"))
        .await;
    assert_eq!(
        a.json()["OutputObject"]["OTP_Communication"][0]["Message"],
        "OTP sent to *********123"
    );
}

/// A destination gets at most max_sends codes per window, across users and forms;
/// the refused request stores and sends nothing.
async fn send_limit_per_destination(b: Backend) {
    let app = spawn_with(b, |s| s.otp.max_sends = 2).await;
    app.vishnu_login_otp().await;
    app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    let (challenges, outbox) = (app.count("challenges").await, app.count("outbox").await);
    let a = app
        .summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))
        .await;
    let e = a.errors();
    assert!(
        e.starts_with("The OTP limit for this destination has been reached. Please try again in "),
        "{e}"
    );
    let secs: i64 = first_digits(&e).parse().unwrap();
    assert!((890..=900).contains(&secs), "{e}");
    assert_eq!(app.count("challenges").await, challenges);
    assert_eq!(app.count("outbox").await, outbox);
    // The refusal is audited.
    assert_eq!(app.count("audit_events").await, 3);
}

async fn resend_cooldown(b: Backend) {
    let app = spawn_with(b, |s| s.otp.resend_cooldown_seconds = 30).await;
    app.vishnu_login_otp().await;
    let e = app
        .summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))
        .await
        .errors();
    assert!(
        e.starts_with("An OTP was sent to this destination a moment ago. Please wait "),
        "{e}"
    );
    let secs: i64 = first_digits(&e).parse().unwrap();
    assert!((29..=30).contains(&secs), "{e}");
}

/// A pre-login request identifies the user; it never chooses where the code goes. A
/// user without a country code gets the SMS on the number as stored, whatever the
/// request's CountryCode, and all those requests count against one limit.
async fn the_request_never_chooses_the_destination(b: Backend) {
    let app = spawn_with(b, |s| s.otp.max_sends = 2).await;
    app.add_user(otpgate::core::users::NewUser {
        login_uid: "3001".into(),
        user_name: "No Country".into(),
        email: "nocc@example.com".into(),
        mobile: "07700900123".into(),
        ..Default::default()
    })
    .await;
    let mut sent = Vec::new();
    for cc in ["1", "44"] {
        let mut r = login_otp_request("nocc@example.com", "d");
        r["objCommonParameters"]["objUserInformation"]["CountryCode"] = json!(cc);
        let v = app.summit(r).await.json();
        assert_eq!(v["Errors"], "");
        sent.push(transaction_id(&v));
    }
    let mut r = login_otp_request("nocc@example.com", "d");
    r["objCommonParameters"]["objUserInformation"]["CountryCode"] = json!("33");
    assert!(
        app.summit(r)
            .await
            .errors()
            .starts_with("The OTP limit for this destination")
    );
    // Where each code was addressed (the first may have been cancelled unsent when
    // the second superseded it).
    let numbers: Vec<(Option<String>, String)> = app
        .app
        .db
        .run(|c| {
            use diesel::prelude::*;
            use otpgate::db::schema::outbox;
            Ok(outbox::table
                .filter(outbox::channel.eq("sms"))
                .select((outbox::challenge_id, outbox::destination))
                .load(c)?)
        })
        .await
        .unwrap();
    let mut want: Vec<(Option<String>, String)> = sent
        .into_iter()
        .map(|t| (Some(t), "07700900123".into()))
        .collect();
    let mut got = numbers;
    want.sort();
    got.sort();
    assert_eq!(got, want);
}

/// Five wrong passwords lock a user's password logins for the window; each attempt is
/// audited.
async fn password_failures_lock_the_login(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    for _ in 0..5 {
        let a = app
            .summit(form_generate("vishnu", "wrong", json!({})))
            .await;
        assert_eq!(a.errors(), "Invalid user name or password.");
    }
    let e = app
        .summit(form_generate("vishnu", "Secret#123", json!({})))
        .await
        .errors();
    assert!(
        e.starts_with("Too many failed logins for this user. Please try again in "),
        "{e}"
    );
    let secs: i64 = first_digits(&e).parse().unwrap();
    // The window counts from the first failure; five password checks take a moment,
    // more on a loaded machine.
    assert!((850..=900).contains(&secs), "{e}");
    assert_eq!(app.count("audit_events").await, 6);
    // Another user is not affected.
    app.add_user(otpgate::core::users::NewUser {
        login_uid: "4001".into(),
        user_name: "Other".into(),
        email: "other@example.com".into(),
        password: Some("Other#1234".into()),
        ..Default::default()
    })
    .await;
    let a = app
        .summit(form_generate("other@example.com", "Other#1234", json!({})))
        .await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);
}

/// A code that lasts a minute says "1 minute" in both messages; longer, "minutes".
async fn messages_say_minute_or_minutes(b: Backend) {
    for (seconds, said) in [
        (60, "It expires in 1 minute."),
        (600, "It expires in 10 minutes."),
    ] {
        let app = spawn_with(b, |s| s.otp.expiry_seconds = seconds).await;
        let txn = app.vishnu_login_otp().await;
        app.code(&txn, "email").await;
        app.code(&txn, "sms").await;
        for m in app.deliveries() {
            let text = m["text"].as_str().unwrap();
            assert!(text.contains(said), "{seconds}: {text}");
        }
    }
}

both!(
    messages_say_minute_or_minutes,
    the_request_never_chooses_the_destination,
    password_failures_lock_the_login,
    form_login_sends_to_both_destinations_and_opens_a_session,
    authentication_failures_are_distinct_and_store_nothing,
    pre_login_failures,
    channels_follow_policy_and_addresses,
    send_limit_per_destination,
    resend_cooldown,
);
