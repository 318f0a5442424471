//! LoginApp: log in with an OTP (AuthType OTP: TransactionID + the code in Password +
//! DeviceId) or with a password (AuthType FORM). Success answers the user document
//! of seed 001, with the new session token in `UserLicenseDetails.SessionId`.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{Reply, auth};
use crate::core::otp::{self, Policy, VerifyRequest};
use crate::db::users;
use crate::dialects::summit::user_document as user_details;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::wire::fields::Fields;

pub fn call(app: AppState, params: Value) -> BoxFuture<'static, Result<Reply>> {
    Box::pin(async move { run(&app, &params).await })
}

async fn run(app: &AppState, params: &Value) -> Result<Reply> {
    let p = Fields::new("objCommonParameters", params)?;
    let proxy = p.required_object("_ProxyDetails")?;
    let auth_type = proxy.required_text("AuthType")?;
    let device = proxy
        .text("DeviceId")?
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let sessions = app.settings.session.clone();

    let (user, token) = match auth_type.trim().to_ascii_uppercase().as_str() {
        "OTP" | "LOGIN_OTP" => {
            let txn = proxy.required_text("TransactionID")?;
            let code = proxy.required_text("Password")?;
            let transaction_id = app
                .plain_field(&txn, |s| uuid::Uuid::try_parse(s).is_ok())
                // Any spelling of a GUID (.NET's D, N, B or P forms) names the same one.
                .and_then(|s| uuid::Uuid::try_parse(&s).ok())
                .map(|u| u.hyphenated().to_string())
                .ok_or(Error::UnknownTransaction)?;
            // A code the client sent encrypted is decrypted; anything else is compared as given.
            let code = app
                .plain_field(&code, |s| {
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
                })
                .unwrap_or(code);
            let keys = app.keys.clone();
            let req = VerifyRequest {
                transaction_id,
                code,
                device_id: device.clone(),
                subject: None,
                purposes: &["login", "second_factor"],
                allow_revalidate: false,
            };
            app.db
                .run(move |c| {
                    let (_, login) = otp::verify_then(c, &keys, &req, |c, verified| {
                        let user = match verified.user_id {
                            Some(id) => users::find_by_id(c, id)?,
                            None => None,
                        };
                        // A code issued for no user (a bare phone number) logs nobody in.
                        let user = user.ok_or(Error::UnknownTransaction)?;
                        let device = req.device_id.as_deref();
                        let token = crate::core::sessions::create(c, user.id, device, &sessions)?;
                        Ok((user, token))
                    })?;
                    Ok(login)
                })
                .await?
        }
        "FORM" => {
            let login = proxy.required_text("UserName")?;
            let password = proxy.required_text("Password")?;
            let user = auth::password_login(app, &login, &password).await?;
            let id = user.id;
            let token = app
                .db
                .run(move |c| crate::core::sessions::create(c, id, device.as_deref(), &sessions))
                .await?;
            (user, token)
        }
        other => {
            return Err(Error::invalid(format!(
                "AuthType '{other}' is not supported by LoginApp: use OTP (TransactionID and the code in Password) or FORM (UserName and Password)."
            )));
        }
    };
    let policy = Policy::for_org(&app.settings, user.org_id);
    Ok(Reply::Document(user_details::document(
        &user,
        &policy,
        &app.settings,
        &token,
    )))
}
