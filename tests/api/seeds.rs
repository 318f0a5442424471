//! The seed documents' samples, sent verbatim: their answers are the contract.

use otpgate::core::cipher::FieldCipher;
use otpgate::core::users::NewUser;
use serde_json::{Value, json};

use crate::both;
use crate::support::*;

/// Replaces the value of each named field, wherever it is, with a marker, after
/// checking it has the expected shape.
fn redact(v: &mut Value, field: &str, check: &dyn Fn(&Value) -> bool) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == field {
                    assert!(check(x), "{field} has an unexpected value: {x}");
                    *x = json!("[redacted]");
                } else {
                    redact(x, field, check);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact(x, field, check)),
        _ => {}
    }
}

fn is_lower_uuid(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| uuid::Uuid::try_parse(s).is_ok() && s.len() == 36 && s == s.to_lowercase())
}

fn is_hex_token(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The user the seed 000 request names: login google@sum.com, UserID/LoginUID 967.
async fn seed_000_user(app: &TestApp) {
    app.add_user(NewUser {
        user_id: Some(967),
        login_uid: "967".into(),
        login_name: Some("google@sum.com".into()),
        user_name: "abcd".into(),
        email: "google@sum.com".into(),
        mobile: "9876500001".into(),
        country_code: "91".into(),
        password: Some("XXXX@123".into()),
        org_id: 1,
        org_name: "sum".into(),
        domain_id: 1,
        profile: Default::default(),
    })
    .await;
}

async fn seed_000_generate_verbatim(b: Backend) {
    let app = spawn(b).await;
    seed_000_user(&app).await;
    let a = app
        .post(
            ENDPOINT,
            Some("application/json"),
            fixture("summit/seed-000-generate-request.json"),
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("application/json"));
    let mut got = a.json();
    let mut want: Value =
        serde_json::from_str(&fixture("summit/seed-000-generate-response.json")).unwrap();
    redact(&mut got, "TransactionID", &is_lower_uuid);
    redact(&mut got, "TokenID", &is_hex_token);
    redact(&mut want, "TransactionID", &|_| true);
    redact(&mut want, "TokenID", &|_| true);
    // Same fields, same order, same values: compared as text.
    assert_eq!(got.to_string(), want.to_string());
    // The code went to the user's e-mail and mobile.
    let txn = a.json()["OutputObject"]["OTP_Communication"][0]["TransactionID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.code(&txn, "email").await.len(), 6);
    assert_eq!(app.code(&txn, "sms").await.len(), 6);
}

/// Seed 000 names its user by `UserID: 967` and `LoginUID: 967`: a user added with
/// LoginUID 967 and no UserId gets 967 as UserId, and the seed's request works as sent.
/// Imported records are numbered the same way; a LoginUID that is taken as a UserId,
/// or is not a plain whole number, leaves the next free one.
async fn seed_000_user_added_by_login_uid(b: Backend) {
    let app = spawn(b).await;
    let user = app
        .add_user(NewUser {
            user_id: None,
            login_uid: "967".into(),
            login_name: Some("google@sum.com".into()),
            user_name: "abcd".into(),
            email: "google@sum.com".into(),
            mobile: "9876500001".into(),
            password: Some("XXXX@123".into()),
            org_id: 1,
            domain_id: 1,
            ..Default::default()
        })
        .await;
    assert_eq!(user.id, 967);
    let a = app
        .post(
            ENDPOINT,
            Some("application/json"),
            fixture("summit/seed-000-generate-request.json"),
        )
        .await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    std::fs::write(
        &file,
        json!([
            {"login_uid": "500", "user_name": "A", "email": "a@example.com"},
            {"login_uid": "0967", "user_name": "B", "email": "b@example.com"},
            {"login_uid": "x-7", "user_name": "C", "email": "c@example.com"}
        ])
        .to_string(),
    )
    .unwrap();
    let state = app.app.clone();
    let report =
        tokio::task::spawn_blocking(move || otpgate::cli::import_users(&state, &file, false))
            .await
            .unwrap()
            .unwrap();
    assert_eq!((report.added, report.failed.len()), (3, 0));
    let ids: Vec<(String, i64)> = app
        .app
        .db
        .run(|c| {
            use diesel::prelude::*;
            use otpgate::db::schema::users;
            Ok(users::table
                .select((users::login_uid, users::id))
                .order(users::login_uid)
                .load(c)?)
        })
        .await
        .unwrap();
    let id_of = |uid: &str| ids.iter().find(|(u, _)| u == uid).map(|(_, id)| *id);
    assert_eq!(id_of("500"), Some(500));
    // The other two take the next free ones, after 967, in whichever order.
    let mut rest = vec![id_of("0967").unwrap(), id_of("x-7").unwrap()];
    rest.sort();
    assert_eq!(rest, [968, 969]);
    let added = app
        .add_user(NewUser {
            login_uid: "968".into(),
            user_name: "D".into(),
            email: "d@example.com".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(added.id, 970, "968 is taken as a UserId");
}

async fn seed_000_generate_xml_twin(b: Backend) {
    let app = spawn(b).await;
    seed_000_user(&app).await;
    let a = app
        .post(
            ENDPOINT,
            Some("application/xml"),
            fixture("summit/seed-000-generate-request.xml"),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.content_type.starts_with("application/xml"),
        "{}",
        a.content_type
    );
    let doc = a.xml();
    assert_eq!(doc.root_name, "CommonWS_JsonObjCallResult");
    let keys: Vec<&str> = member_names(&doc.value);
    assert_eq!(
        keys,
        [
            "Errors",
            "Message",
            "Output",
            "TokenID",
            "OrgID",
            "OutputObject",
            "OutputID",
            "Input"
        ]
    );
    assert_eq!(doc.value["Errors"], "");
    assert!(is_hex_token(&doc.value["TokenID"]));
    let comm = &doc.value["OutputObject"]["OTP_Communication"][0];
    assert_eq!(comm["AuthenticationType"], "password");
    assert!(is_lower_uuid(&comm["TransactionID"]));
    assert_eq!(doc.value["Input"], Value::Null);
}

/// The pre-login sample names no real address ("xxxxxxxxxxxx"): a clear error. With
/// a real address it answers the seed's response, message and all.
async fn seed_001_generate(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let a = app
        .post(
            ENDPOINT,
            Some("application/json"),
            fixture("summit/seed-001-generate-request.json"),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.errors(),
        "EncryptedEmailID is not an e-mail address, and no field cipher is configured to decrypt it."
    );

    let request = fixture("summit/seed-001-generate-request.json")
        .replace("xxxxxxxxxxxx", "Vishnu.kumar@syntel.com");
    let a = app.post(ENDPOINT, Some("application/json"), request).await;
    let mut got = a.json();
    let mut want: Value =
        serde_json::from_str(&fixture("summit/seed-001-generate-response.json")).unwrap();
    redact(&mut got, "TransactionID", &is_lower_uuid);
    redact(&mut want, "TransactionID", &|_| true);
    assert_eq!(got.to_string(), want.to_string());
}

async fn seed_001_generate_xml_twin(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let request = fixture("summit/seed-001-generate-request.xml")
        .replace("xxxxxxxxxxxx", "Vishnu.kumar@syntel.com");
    let a = app.post(ENDPOINT, Some("text/xml"), request).await;
    assert!(a.content_type.starts_with("text/xml"), "{}", a.content_type);
    let doc = a.xml();
    let comm = &doc.value["OutputObject"]["OTP_Communication"][0];
    assert_eq!(
        comm["Message"],
        "OTP sent to Vis*********@sy****.com and *******219"
    );
    assert_eq!(comm["AuthenticationType"], "otp");
    assert_eq!(doc.value["TokenID"], Value::Null);
}

/// The LoginApp sample: its TransactionID is the field-encrypted GUID, which no
/// transaction matches without the cipher.
async fn seed_001_login_app_verbatim(b: Backend) {
    let app = spawn(b).await;
    let a = app
        .post(
            ENDPOINT,
            Some("application/json"),
            fixture("summit/seed-001-loginapp-request.json"),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.errors(),
        "Invalid TransactionID: no OTP was generated with this TransactionID."
    );
    let a = app
        .post(
            ENDPOINT,
            Some("application/xml"),
            fixture("summit/seed-001-loginapp-request.xml"),
        )
        .await;
    assert_eq!(
        a.xml().value["Errors"],
        "Invalid TransactionID: no OTP was generated with this TransactionID."
    );
}

/// The seed's user, provisioned with its profile and policy: LoginApp answers the
/// seed's document byte for byte, but for the session token in SessionId.
async fn seed_001_login_app_document(b: Backend) {
    let app = spawn_with(b, |s| {
        s.orgs.insert(
            "1".into(),
            otpgate::config::PolicyOverride {
                length: Some(4),
                expiry_seconds: Some(900),
                ..Default::default()
            },
        );
        s.summit.instance_label = "new Tenant".into();
    })
    .await;
    let want: Value =
        serde_json::from_str(&fixture("summit/seed-001-loginapp-response.json")).unwrap();
    let d = &want["User"]["UserDetails"][0];
    let mut profile = serde_json::Map::new();
    for (k, _) in otpgate::dialects::summit::user_document::PROFILE_DEFAULTS {
        let v = if *k == "LicenseEdition" {
            d["UserLicenseDetails"][k].clone()
        } else {
            d[k].clone()
        };
        profile.insert(k.to_string(), v);
    }
    let user = NewUser {
        user_id: Some(836),
        login_uid: "1xxxx4".into(),
        login_name: Some(" abc.efg@xyz.com ".into()),
        user_name: "ABC EFG".into(),
        email: "abc.efg@xyz.com".into(),
        mobile: "9xxxxxxxx1".into(),
        country_code: "91".into(),
        password: Some("Secret#123".into()),
        org_id: 1,
        org_name: "xyz".into(),
        domain_id: 1,
        profile,
    };
    // The seed's masked mobile number is not one the command line accepts: stored directly.
    let a2 = app.app.clone();
    tokio::task::spawn_blocking(move || {
        let hash = a2.passwords.hash("Secret#123").unwrap();
        let mut c = a2.db.get().unwrap();
        otpgate::core::users::insert(&mut c, &user, Some(hash)).unwrap();
    })
    .await
    .unwrap();

    let txn = app.login_otp("abc.efg@xyz.com", "device-1").await;
    let code = app.code(&txn, "email").await;
    assert_eq!(code.len(), 4, "org policy: 4 digits");
    let a = app.login_app(&txn, &code, "device-1").await;
    let mut got = a.json();
    let token = got["User"]["UserDetails"][0]["UserLicenseDetails"]["SessionId"].take();
    assert!(is_hex_token(&token), "{token}");
    assert_eq!(got.to_string(), want.to_string());
}

/// With the field cipher configured, the mobile app's encrypted e-mail, TransactionID
/// and OTP are accepted, as in the seed's LoginApp sample.
async fn encrypted_fields(b: Backend) {
    let (key, iv) = ([7u8; 32], [3u8; 16]);
    let app = spawn_with(b, |s| {
        s.field_cipher.enabled = true;
        s.field_cipher.key = Some(hex::encode(key));
        s.field_cipher.iv = Some(hex::encode(iv));
    })
    .await;
    app.vishnu().await;
    let cipher = FieldCipher::new(key, iv);
    let txn = app
        .login_otp(&cipher.encrypt("Vishnu.kumar@syntel.com"), "dev")
        .await;
    let code = app.code(&txn, "sms").await;
    let encrypted_txn = cipher.encrypt(&txn);
    assert_eq!(encrypted_txn.len(), 64, "the seed's TransactionID length");
    let a = app
        .login_app(&encrypted_txn, &cipher.encrypt(&code), "dev")
        .await;
    assert_eq!(
        a.json()["User"]["UserDetails"][0]["UserId"],
        "836",
        "{}",
        a.text
    );

    let a = app
        .summit(login_otp_request("bm90IGVuY3J5cHRlZA==", "dev"))
        .await;
    assert_eq!(
        a.errors(),
        "EncryptedEmailID could not be decrypted to an e-mail address."
    );
}

both!(
    seed_000_generate_verbatim,
    seed_000_user_added_by_login_uid,
    seed_000_generate_xml_twin,
    seed_001_generate,
    seed_001_generate_xml_twin,
    seed_001_login_app_verbatim,
    seed_001_login_app_document,
    encrypted_fields,
);
