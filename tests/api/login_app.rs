//! LoginApp: success with an OTP or a password, and each way it fails.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both;
use crate::support::*;

async fn otp_login_answers_the_user_document_and_a_working_session(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let txn = app.login_otp("Vishnu.kumar@syntel.com", "dev-1").await;
    let code = app.code(&txn, "sms").await;
    let a = app.login_app(&txn, &code, "dev-1").await;
    assert_eq!(a.status, 200);
    let v = a.json();
    let d = &v["User"]["UserDetails"][0];
    assert_eq!(d["UserId"], "836");
    assert_eq!(d["EmailId"], "Vishnu.kumar@syntel.com");
    assert_eq!(d["UserName"], "Vishnu Kumar");
    assert_eq!(d["LoginUID"], "1xxxx4");
    assert_eq!(d["MobileNo"], "9876543219");
    assert_eq!(d["Frm_UID"], "vishnu");
    assert_eq!(
        (
            d["OTPLength"].as_str(),
            d["OTPExpiryInMinutes"].as_str(),
            d["MaxAttempts"].as_str()
        ),
        (Some("6"), Some("10"), Some("3"))
    );
    assert_eq!(d["UserLicenseDetails"]["IsSessionKilled"], false);
    assert_eq!(v["User"]["DBDetails"], json!([]));
    // The session as stored: the device, the lifetime and the idle timeout.
    let s = &app.app.settings.session;
    let stored = format!(
        "sessions WHERE user_id = 836 AND device_id = 'dev-1' \
         AND expires_at - created_at = {} AND last_seen_at = created_at \
         AND idle_timeout_ms = {}",
        s.lifetime_seconds * 1000,
        s.idle_timeout_minutes * 60_000
    );
    assert_eq!(app.count(stored).await, 1);
    // Every field of the seed, in the seed's order.
    let seed: Value =
        serde_json::from_str(&fixture("summit/seed-001-loginapp-response.json")).unwrap();
    let keys = |x: &Value| x.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(d), keys(&seed["User"]["UserDetails"][0]));
    assert_eq!(
        keys(&d["UserLicenseDetails"]),
        keys(&seed["User"]["UserDetails"][0]["UserLicenseDetails"])
    );

    // The session token in SessionId authenticates ADM_GenerateOTP.
    let token = d["UserLicenseDetails"]["SessionId"].as_str().unwrap();
    let a = app
        .summit(
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
            "_ProxyDetails": {"TokenID": token}, "objUserInformation": {"UserID": 836}}}),
        )
        .await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);
}

async fn form_login(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let req = |user: &str, pw: &str| {
        json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "FORM", "UserName": user, "Password": pw, "ReturnType": "JSON"}}})
    };
    let a = app.summit(req("vishnu", "Secret#123")).await;
    assert_eq!(
        a.json()["User"]["UserDetails"][0]["UserId"],
        "836",
        "{}",
        a.text
    );
    assert_eq!(
        app.summit(req("vishnu", "Secret#124")).await.errors(),
        "Invalid user name or password."
    );
    assert_eq!(
        app.summit(req("ghost", "Secret#123")).await.errors(),
        "Invalid user name or password."
    );
    let a = app
        .summit(json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {"AuthType": "SAML"}}}))
        .await;
    assert_eq!(
        a.errors(),
        "AuthType 'SAML' is not supported by LoginApp: use OTP (TransactionID and the code in Password) or FORM (UserName and Password)."
    );
}

/// ReturnType XML answers the same user document, as XML, in the seed's order.
async fn the_user_document_can_be_answered_in_xml(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let a = app
        .summit(
            json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123",
            "ReturnType": "XML"}}}),
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("application/xml"), "{}", a.text);
    let doc = a.xml();
    assert_eq!(doc.root_name, "CommonWS_JsonObjCallResult", "{}", a.text);
    assert!(!a.text.contains("<Errors"), "{}", a.text);
    let at = |element: &str| {
        a.text
            .find(element)
            .unwrap_or_else(|| panic!("no {element}: {}", a.text))
    };
    assert!(at("<User>") < at("<UserDetails>"));
    assert!(at("<UserId>836</UserId>") < at("<EmailId>Vishnu.kumar@syntel.com</EmailId>"));
    assert!(at("<EmailId>") < at("<UserLicenseDetails>"));
    assert!(at("<UserLicenseDetails>") < at("<LoginUID>1xxxx4</LoginUID>"));
    assert!(at("<LoginUID>") < at("<MaxAttempts>3</MaxAttempts>"));
    assert!(at("<MaxAttempts>") < at("<DBDetails"));
}

async fn wrong_codes_count_down_then_lock(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    let bad = wrong(&code);
    assert_eq!(
        app.login_app(&txn, &bad, "d").await.errors(),
        "Invalid OTP. 2 attempts are left."
    );
    assert_eq!(
        app.login_app(&txn, &bad, "d").await.errors(),
        "Invalid OTP. 1 attempt is left."
    );
    assert_eq!(
        app.login_app(&txn, &bad, "d").await.errors(),
        "Invalid OTP. No attempts are left; please generate a new OTP."
    );
    // Locked: even the right code fails now.
    assert_eq!(
        app.login_app(&txn, &code, "d").await.errors(),
        "Maximum number of OTP attempts exceeded. Please generate a new OTP."
    );
    assert_eq!(app.count("sessions").await, 0);
}

async fn a_code_works_once(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "email").await;
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
    assert_eq!(
        app.login_app(&txn, &code, "d").await.errors(),
        "The OTP has already been used. Please generate a new OTP."
    );
}

async fn a_new_code_supersedes_the_old(b: Backend) {
    let app = spawn(b).await;
    let first = app.vishnu_login_otp().await;
    let first_code = app.code(&first, "sms").await;
    let second = app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    let second_code = app.code(&second, "sms").await;
    assert_eq!(
        app.login_app(&first, &first_code, "d").await.errors(),
        "A newer OTP has been sent for this user. Please use the latest OTP."
    );
    assert!(app.login_app(&second, &second_code, "d").await.json()["User"].is_object());
}

async fn expired_codes_fail(b: Backend) {
    let app = spawn_with(b, |s| s.otp.expiry_seconds = 1).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.login_app(&txn, &code, "d").await.errors(),
        "The OTP has expired. Please generate a new OTP."
    );
}

async fn device_and_transaction_must_match(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let txn = app.login_otp("Vishnu.kumar@syntel.com", "phone-A").await;
    let code = app.code(&txn, "sms").await;
    for _ in 0..3 {
        assert_eq!(
            app.login_app(&txn, &code, "phone-B").await.errors(),
            "The DeviceId does not match the device the OTP was generated for."
        );
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        app.login_app(&unknown, &code, "phone-A").await.errors(),
        "Invalid TransactionID: no OTP was generated with this TransactionID."
    );
    assert_eq!(
        app.login_app("not-a-guid", &code, "phone-A").await.errors(),
        "Invalid TransactionID: no OTP was generated with this TransactionID."
    );
    // Mismatched devices spent no attempt (three would have locked it), and the
    // TransactionID is accepted in any GUID spelling (.NET's "B" form here).
    let braced = format!("{{{}}}", txn.to_uppercase());
    assert!(app.login_app(&braced, &code, "phone-A").await.json()["User"].is_object());
}

/// A code sent before the OTP key was replaced (the old key now among the previous
/// ones) still works, once; a wrong one still counts against it.
async fn a_code_sent_before_the_key_changed_still_works(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    let mut settings = (*app.app.settings).clone();
    settings.secrets.otp_key = Some("1e".repeat(32));
    settings.secrets.previous_otp_keys = vec![TEST_KEY.into()];
    let rotated = start_gateway(settings).await;
    let url = format!("http://127.0.0.1:{}{ENDPOINT}", rotated.port);
    let login = |code: String| {
        let (client, url, txn) = (app.client.clone(), url.clone(), txn.clone());
        async move {
            let body = login_app_request(&txn, &code, "d");
            let text = client.post(url).json(&body).send().await.unwrap().text();
            serde_json::from_str::<Value>(&text.await.unwrap()).unwrap()
        }
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        login(wrong.into()).await["Errors"],
        "Invalid OTP. 2 attempts are left."
    );
    assert!(login(code.clone()).await["User"].is_object());
    assert_eq!(
        login(code).await["Errors"],
        "The OTP has already been used. Please generate a new OTP."
    );
    rotated.handle.stop(false).await;
}

/// A code whose challenge names no user logs nobody in: LoginApp answers as for an
/// unknown TransactionID, the code stays unspent and no session is opened. Once the
/// challenge names its user again, the same code logs in.
async fn a_code_for_no_user_logs_nobody_in_and_stays_unspent(b: Backend) {
    let app = spawn(b).await;
    app.vishnu().await;
    let txn = app.login_otp("Vishnu.kumar@syntel.com", "dev-1").await;
    let code = app.code(&txn, "sms").await;
    let name_user = |user: &'static str| {
        app.app.db.run(move |c| {
            let sql = format!("UPDATE challenges SET user_id = {user}");
            otpgate::per_backend!(c, |c| diesel::RunQueryDsl::execute(
                diesel::sql_query(&sql),
                c
            ))?;
            Ok(())
        })
    };
    name_user("NULL").await.unwrap();
    assert_eq!(
        app.login_app(&txn, &code, "dev-1").await.errors(),
        "Invalid TransactionID: no OTP was generated with this TransactionID."
    );
    let unspent = "challenges WHERE consumed_at IS NULL AND attempts = 0";
    assert_eq!(app.count(unspent).await, 1);
    assert_eq!(app.count("sessions").await, 0);

    name_user("836").await.unwrap();
    assert!(app.login_app(&txn, &code, "dev-1").await.json()["User"].is_object());
    assert_eq!(app.count(unspent).await, 0);
    assert_eq!(app.count("sessions WHERE user_id = 836").await, 1);
}

both!(
    otp_login_answers_the_user_document_and_a_working_session,
    form_login,
    the_user_document_can_be_answered_in_xml,
    wrong_codes_count_down_then_lock,
    a_code_works_once,
    a_new_code_supersedes_the_old,
    expired_codes_fail,
    device_and_transaction_must_match,
    a_code_sent_before_the_key_changed_still_works,
    a_code_for_no_user_logs_nobody_in_and_stays_unspent,
);

/// A TokenID stops working past its lifetime, and past its idle timeout.
async fn sessions_expire_absolutely_and_when_idle(b: Backend) {
    use diesel::prelude::*;
    use otpgate::db::schema::sessions;
    let app = spawn(b).await;
    app.vishnu().await;
    let login = || {
        app.summit(
            json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "FORM", "UserName": "vishnu", "Password": "Secret#123"}}}),
        )
    };
    let generate = |token: String| {
        app.summit(
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
            "_ProxyDetails": {"TokenID": token}, "objUserInformation": {}}}),
        )
    };
    let token_of = |v: Value| {
        v["User"]["UserDetails"][0]["UserLicenseDetails"]["SessionId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (expired, idle, live) = (
        token_of(login().await.json()),
        token_of(login().await.json()),
        token_of(login().await.json()),
    );
    let key = otpgate::core::sessions::key;
    let (he, hi) = (key(&expired), key(&idle));
    app.app
        .db
        .run(move |c| {
            let now = otpgate::db::now_ms();
            diesel::update(sessions::table.find(&he))
                .set(sessions::expires_at.eq(now - 1))
                .execute(c)?;
            diesel::update(sessions::table.find(&hi))
                .set(sessions::last_seen_at.eq(now - 91 * 60_000))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    let invalid = "The TokenID is invalid or has expired. Please log in again.";
    assert_eq!(generate(expired).await.errors(), invalid);
    assert_eq!(generate(idle).await.errors(), invalid);
    assert_eq!(generate(live.to_lowercase()).await.json()["Errors"], "");
}

both!(sessions_expire_absolutely_and_when_idle);

/// A session opened before tokens began with their time (stored under the token's
/// SHA-256 alone) keeps working after the upgrade, until its own end.
async fn sessions_opened_before_time_ordered_tokens_keep_working(b: Backend) {
    use diesel::prelude::*;
    use otpgate::db::schema::sessions;
    let app = spawn(b).await;
    let user = app.vishnu().await;
    let generate = |token: &str| {
        app.summit(
            json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {
            "_ProxyDetails": {"TokenID": token}, "objUserInformation": {}}}),
        )
    };
    // Random digits, as such tokens were; none of the shape of a new one's time.
    let (live, ended) = (
        "F3A9C41D77E2B05A6C18D9E4F0B3A7C2E5D81F6049B2C7A3E1D5F8B0C4A69E27",
        "0A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F9",
    );
    let rows = [(live, 600_000), (ended, -1)].map(|(token, left)| {
        let now = otpgate::db::now_ms();
        (
            sessions::token_hash.eq(otpgate::core::keys::sha256_hex(token.as_bytes())),
            sessions::user_id.eq(user.id),
            sessions::created_at.eq(now - 60_000),
            sessions::expires_at.eq(now + left),
            sessions::last_seen_at.eq(now - 60_000),
            sessions::idle_timeout_ms.eq(5_400_000i64),
        )
    });
    app.app
        .db
        .run(move |c| {
            for row in &rows {
                diesel::insert_into(sessions::table)
                    .values(row.clone())
                    .execute(c)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let a = generate(&live.to_lowercase()).await;
    assert_eq!(a.json()["Errors"], "", "{}", a.text);
    assert_eq!(a.json()["TokenID"], live.to_lowercase());
    let invalid = "The TokenID is invalid or has expired. Please log in again.";
    assert_eq!(generate(ended).await.errors(), invalid);
}

both!(sessions_opened_before_time_ordered_tokens_keep_working);
