//! token/generate: opens a session for an identifier of a brand. A mobile number or
//! e-mail address need not be a directory user's. A login name must be, when the
//! settings reveal unknown users, and the outcome then says whether the identifier is
//! registered. Otherwise any identifier opens a session (of no user, when it names
//! nobody) and the outcome says nothing of the user before a code proves the caller
//! holds the identifier: otp/validate tells.

use crate::core::brands::{Brand, BrandSession, Identifier, IdentifierKind};
use crate::db::{capillary_sessions, now_ms, users};
use crate::error::{Error, Result};
use crate::state::AppState;

pub struct Input {
    pub brand: Brand,
    /// Opened on the web routes: usable only there, and bound to no device.
    pub web: bool,
    pub device_id: Option<String>,
    pub identifier: Identifier,
}

pub struct Outcome {
    /// The session as the answer may show it: its user (named in the token) only when
    /// the settings reveal unknown users.
    pub session: BrandSession,
    /// Whether the identifier is a directory user's: false whatever it is when the
    /// settings do not reveal unknown users.
    pub user_registered: bool,
    /// Likewise, whether that user has a password.
    pub user_has_password: bool,
}

pub async fn call(state: &AppState, input: Input) -> Result<Outcome> {
    let now = now_ms();
    let reveal = state.settings.security.reveal_unknown_users;
    let id = input.identifier;
    let session = BrandSession {
        id: format!("P-{}", uuid::Uuid::new_v4()),
        brand_key: input.brand.brand_key.clone(),
        web: input.web,
        identifier_type: id.kind.as_str().to_string(),
        identifier_value: id.value.clone(),
        device_id: input.device_id,
        user_id: None,
        created_at: now,
        expires_at: now + input.brand.session_validity_seconds * 1000,
        validated_at: None,
    };
    state
        .db
        .run(move |c| {
            let user = match id.kind {
                IdentifierKind::Mobile => users::find_by_mobile_digits(c, &id.value)?,
                IdentifierKind::Email => users::find_by_email(c, &id.value)?,
                IdentifierKind::Username => users::find_by_login(c, &id.value)?,
            };
            // Only a login name that is nobody's opens no session, and only where
            // answers may say so.
            if reveal && id.kind == IdentifierKind::Username && user.is_none() {
                return Err(Error::UserNotFound);
            }
            let session = BrandSession {
                user_id: user.as_ref().map(|u| u.id),
                ..session.clone()
            };
            capillary_sessions::insert(c, &session)?;
            let told = user.filter(|_| reveal);
            Ok(Outcome {
                session: BrandSession {
                    user_id: told.as_ref().map(|u| u.id),
                    ..session
                },
                user_registered: told.is_some(),
                user_has_password: told.is_some_and(|u| u.password_hash.is_some()),
            })
        })
        .await
}
