//! ValidateTwoFactorSmsOtoByReferenceId (the legacy route's spelling): whether the OTP
//! with this transaction id was validated by this customer. Ok when it was;
//! `NotValidated` when it exists and was not.

use crate::core::ids::ChallengeId;
use crate::db::challenges;
use crate::error::{Error, Result};
use crate::state::AppState;

pub struct Input {
    /// The customer: a canonical GUID.
    pub customer: String,
    pub transaction_id: ChallengeId,
}

pub async fn call(state: &AppState, input: Input) -> Result<()> {
    let id = input.transaction_id.into_string();
    let challenge = state.db.run(move |c| Ok(challenges::find(c, &id)?)).await?;
    match challenge {
        Some(c)
            if c.subject == format!("customer:{}", input.customer) && c.purpose == "twofactor" =>
        {
            match c.consumed_at {
                Some(_) => Ok(()),
                None => Err(Error::NotValidated),
            }
        }
        _ => Err(Error::UnknownTransaction),
    }
}
