//! CreateOtpForRemindPassword for a login nobody has, or a user with no mobile; its
//! OTP validated.

use otpgate::core::users::NewUser;
use serde_json::{Value, json};

use super::{assert_alike, audited, nothing_sent_for, shown_digits};
use crate::both;
use crate::support::*;

const API: &str = "/customerservice/api/TwoFactor";

async fn remind(app: &TestApp, login: &str) -> Answer {
    app.post_json(
        &format!("{API}/CreateOtpForRemindPassword"),
        &json!({"UserName": login}),
    )
    .await
}

async fn validate(app: &TestApp, reference: &str, code: &str) -> Answer {
    app.post_json(
        &format!("{API}/ValidateTwoFactorSmsOtp"),
        &json!({"OtpIdReference": reference, "OtpCode": code}),
    )
    .await
}

fn reference(v: &Value) -> String {
    v["OtpIdReference"].as_str().unwrap_or_default().to_string()
}

const VOLATILE: &[&str] = &[
    "OtpIdReference",
    "ReferenceCode",
    "RemainingSeconds",
    "GsmNumber",
];

async fn remind_password_answers_alike(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    app.add_user(NewUser {
        login_uid: "mail-only".into(),
        login_name: Some("mailonly".into()),
        user_name: "Mail Only".into(),
        email: "mail.only@example.com".into(),
        ..Default::default()
    })
    .await;
    let known = remind(&app, "vishnu").await;
    let probe = remind(&app, "nobody").await;
    assert_alike(&known, &probe, VOLATILE);
    let (k, u) = (known.json(), probe.json());
    assert_eq!(
        (&u["Success"], &u["Code"], &u["OtpCode"]),
        (&json!(true), &json!(4001), &Value::Null)
    );
    assert_eq!(k["GsmNumber"], "*********219");
    let digits = shown_digits(u["GsmNumber"].as_str().unwrap(), 9);
    assert!(uuid::Uuid::parse_str(&reference(&u)).is_ok(), "{u}");
    assert_eq!(u["ReferenceCode"].as_str().map(str::len), Some(6));
    let remaining = u["RemainingSeconds"].as_i64().unwrap();
    assert!((590..=600).contains(&remaining), "{remaining}");
    // The same probe, the same number; a user with no mobile is answered alike.
    let again = remind(&app, "NOBODY").await.json();
    assert_eq!(again["GsmNumber"], u["GsmNumber"]);
    assert_ne!(reference(&again), reference(&u));
    let mail_only = remind(&app, "mailonly").await;
    assert_alike(&known, &mail_only, VOLATILE);
    shown_digits(mail_only.json()["GsmNumber"].as_str().unwrap(), 9);
    assert_ne!(
        mail_only.json()["GsmNumber"].as_str(),
        Some(digits.as_str())
    );

    let code = app.code(&reference(&k), "sms").await;
    let decoys = [
        reference(&u),
        reference(&again),
        reference(&mail_only.json()),
    ];
    nothing_sent_for(&app, &decoys).await;
    assert_eq!(audited(&app, "otp.generate", "unknown_user").await, 2);
    assert_eq!(audited(&app, "otp.generate", "no_destination").await, 1);

    // Validation fails as for a wrong code, down to the same lockout.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let k = validate(&app, &reference(&k), &wrong(&code)).await;
        let u = validate(&app, &reference(&again), &wrong(&code)).await;
        assert_eq!((k.status, &k.text), (u.status, &u.text));
        let v = u.json();
        codes.push((v["IsValid"].clone(), v["Code"].clone()));
    }
    assert_eq!(codes[0], (json!(false), json!(6000)), "{codes:?}");
    assert_eq!(codes[3], (json!(false), json!(6004)), "{codes:?}");
}

both!(remind_password_answers_alike);
