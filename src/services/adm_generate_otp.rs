//! ADM_GenerateOTP: issue a code and send it to the user's e-mail and/or mobile.
//!
//! Two forms (seeds 000 and 001):
//! - authenticated: `_ProxyDetails` with AuthType FORM (UserName + Password) or a live
//!   TokenID; `objUserInformation` names the user and must match. Answers a TokenID.
//! - pre-login: `objUserInformation.AuthType` LOGIN_OTP with CountryCode,
//!   EncryptedEmailID (plain or field-encrypted) and DeviceId; no `_ProxyDetails`.

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::{Reply, auth};
use crate::core::mask;
use crate::core::otp::{self, IssueRequest, Policy};
use crate::db::users::{self, User};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::wire::fields::Fields;

pub fn call(app: AppState, params: Value) -> BoxFuture<'static, Result<Reply>> {
    Box::pin(async move { run(&app, &params).await })
}

async fn run(app: &AppState, params: &Value) -> Result<Reply> {
    let p = Fields::new("objCommonParameters", params)?;
    let info = p.required_object("objUserInformation")?;
    let login_otp = info
        .text("AuthType")?
        .is_some_and(|a| a.trim().eq_ignore_ascii_case("LOGIN_OTP"));
    if login_otp {
        return pre_login(app, info).await;
    }
    match p.object("_ProxyDetails")? {
        Some(proxy) => authenticated(app, proxy, info).await,
        None => Err(Error::invalid(
            "_ProxyDetails is required in objCommonParameters unless objUserInformation.AuthType is LOGIN_OTP.",
        )),
    }
}

async fn authenticated(app: &AppState, proxy: Fields<'_>, info: Fields<'_>) -> Result<Reply> {
    let auth_type = proxy.text("AuthType")?.unwrap_or_default();
    let token = proxy.text("TokenID")?.filter(|t| !t.trim().is_empty());
    let (user, existing_token) = if auth_type.trim().eq_ignore_ascii_case("FORM") {
        let login = proxy.required_text("UserName")?;
        let password = proxy.required_text("Password")?;
        (auth::password_login(app, &login, &password).await?, None)
    } else if let Some(t) = token {
        (auth::session_user(app, &t).await?, Some(t))
    } else {
        return Err(Error::invalid(format!(
            "AuthType '{}' is not supported in _ProxyDetails: use FORM with UserName and Password, or send the TokenID of a session.",
            auth_type.trim()
        )));
    };
    check_same_user(&user, info)?;

    let policy = Policy::for_org(&app.settings, user.org_id);
    let request = IssueRequest {
        subject: format!("user:{}", user.id),
        purpose: "second_factor",
        user_id: Some(user.id),
        org_id: user.org_id,
        destinations: auth::destinations(&user, &policy),
        device_id: None,
        language: None,
        sms_template: None,
        reveal_code: false,
        policy,
        limit_scope: None,
    };
    let (keys, templates, sessions) = (
        app.keys.clone(),
        app.templates.clone(),
        app.settings.session.clone(),
    );
    let user_id = user.id;
    let (issued, token) = app
        .db
        .run(move |c| {
            let issued = otp::issue(c, &keys, &templates, request)?;
            let token = match existing_token {
                Some(t) => t,
                None => crate::core::sessions::create(c, user_id, None, &sessions)?,
            };
            Ok((issued, token))
        })
        .await?;
    app.outbox_wake.notify_one();
    Ok(Reply::Envelope {
        token_id: Some(token),
        output_object: communication("", "password", &issued.transaction_id),
    })
}

/// Each identifying field `objUserInformation` gives must be the authenticated user's.
fn check_same_user(user: &User, info: Fields<'_>) -> Result<()> {
    let given = |v: Option<i64>| v.filter(|n| *n != 0);
    if given(info.int("UserID")?).is_some_and(|id| id != user.id) {
        return Err(Error::UserMismatch);
    }
    if given(info.int("DomainId")?).is_some_and(|d| d != user.domain_id) {
        return Err(Error::UserMismatch);
    }
    if let Some(uid) = info.text("LoginUID")?.filter(|u| u.trim() != "0")
        && uid.trim() != user.login_uid
    {
        return Err(Error::UserMismatch);
    }
    if let Some(name) = info.text("UserName")? {
        let k = users::key(&name);
        if k != users::key(&user.user_name) && k != user.login_key && k != user.email_key {
            return Err(Error::UserMismatch);
        }
    }
    Ok(())
}

async fn pre_login(app: &AppState, info: Fields<'_>) -> Result<Reply> {
    let country = info.required_text("CountryCode")?;
    let email_field = info.required_text("EncryptedEmailID")?;
    let device = info.required_text("DeviceId")?;
    let email = app.plain_field(&email_field, |s| s.contains('@')).ok_or_else(|| {
        Error::invalid(if app.field_cipher.is_some() {
            "EncryptedEmailID could not be decrypted to an e-mail address."
        } else {
            "EncryptedEmailID is not an e-mail address, and no field cipher is configured to decrypt it."
        })
    })?;
    let country = country.trim().trim_start_matches('+');
    if !(1..=4).contains(&country.len()) || !country.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            "CountryCode in objUserInformation must be a country calling code, e.g. 91.",
        ));
    }
    let country = country.to_string();
    let device = device.trim().to_string();
    let (keys, templates, settings) = (
        app.keys.clone(),
        app.templates.clone(),
        app.settings.clone(),
    );
    // The look-up and the issue in one trip to the blocking pool.
    let (user, issued) = app
        .db
        .run(move |c| {
            let user = users::find_by_email(c, &email)?
                // The request identifies the user; it never decides where the code goes.
                .filter(|u| u.country_code.is_empty() || u.country_code == country)
                .ok_or(Error::UserNotFound)?;
            let policy = Policy::for_org(&settings, user.org_id);
            let request = IssueRequest {
                subject: format!("user:{}", user.id),
                purpose: "login",
                user_id: Some(user.id),
                org_id: user.org_id,
                destinations: auth::destinations(&user, &policy),
                device_id: Some(device),
                language: None,
                sms_template: None,
                reveal_code: false,
                policy,
                limit_scope: None,
            };
            let issued = otp::issue(c, &keys, &templates, request)?;
            Ok((user, issued))
        })
        .await?;
    app.outbox_wake.notify_one();
    // The message names the addresses as the user knows them: the national number.
    let shown: Vec<String> = issued
        .destinations
        .iter()
        .map(|d| match d.channel {
            otp::Channel::Email => mask::email(&user.email),
            otp::Channel::Sms => mask::phone(&user.mobile),
        })
        .collect();
    let message = format!("OTP sent to {}", shown.join(" and "));
    Ok(Reply::Envelope {
        token_id: None,
        output_object: communication(&message, "otp", &issued.transaction_id),
    })
}

fn communication(message: &str, authentication_type: &str, transaction_id: &str) -> Value {
    json!({
        "OTP_Communication": [{
            "Message": message,
            "AuthenticationType": authentication_type,
            "TransactionID": transaction_id,
        }]
    })
}
