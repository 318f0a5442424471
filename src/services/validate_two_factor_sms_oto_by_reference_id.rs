//! ValidateTwoFactorSmsOtoByReferenceId (the legacy route's spelling): whether the OTP
//! with this OtpIdReference was validated by this customer. `DeleteGsmFromOtherCustomers`
//! is accepted and has no effect: otpgate keeps no customer-to-GSM registry.

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::Reply;
use crate::db::challenges;
use crate::dialects::twofactor::dto::{self as twofactor, VALIDATE_BY_REFERENCE};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::wire::fields::Fields;

pub fn call(app: AppState, params: Value) -> BoxFuture<'static, Result<Reply>> {
    Box::pin(async move {
        twofactor::answer(VALIDATE_BY_REFERENCE, &params, None, |f| run(&app, f)).await
    })
}

async fn run(app: &AppState, f: Fields<'_>) -> Result<twofactor::Dto> {
    let customer =
        twofactor::guid(&f, "UserId")?.ok_or_else(|| Error::invalid("UserId is required."))?;
    let reference = f.required_text("OtpIdReference")?;
    f.bool("DeleteGsmFromOtherCustomers")?;
    let id = uuid::Uuid::try_parse(reference.trim())
        .map_err(|_| Error::invalid("OtpIdReference must be a GUID."))?
        .hyphenated()
        .to_string();
    let challenge = app.db.run(move |c| Ok(challenges::find(c, &id)?)).await?;
    match challenge {
        Some(c) if c.subject == format!("customer:{customer}") && c.purpose == "twofactor" => {
            match c.consumed_at {
                Some(_) => Ok(twofactor::by_reference_response(true, None, 6001)),
                None => Err(Error::NotValidated),
            }
        }
        _ => Err(Error::UnknownTransaction),
    }
}
