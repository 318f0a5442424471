//! CreateTwoFactorSmsOtp: an SMS code for a customer (UserId) to a GsmNumber, under a
//! stored TwoFactorConfiguration whose limits the request may override.
//!
//! Units: MaxSMSInterval and OtpExpirationPeriod are minutes. MaxSMSCount sends per
//! GsmNumber within MaxSMSInterval, counted in the database. A request's limits only
//! tighten the configuration's. `Source` is accepted and not used.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::Reply;
use crate::core::mask;
use crate::core::otp::{Channel, Destination, IssueRequest, Policy};
use crate::db::{now_ms, twofactor_configs};
use crate::dialects::twofactor::dto::{self as twofactor, CREATE, Created};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::wire::fields::Fields;

pub fn call(app: AppState, params: Value) -> BoxFuture<'static, Result<Reply>> {
    Box::pin(async move {
        // Failures name the number masked, when it is one.
        let gsm = Fields::new("the request", &params)
            .and_then(|f| twofactor::gsm_number(&f, "GsmNumber"))
            .ok()
            .map(|g| mask::phone(&g));
        twofactor::answer(CREATE, &params, gsm, |f| run(&app, f)).await
    })
}

async fn run(app: &AppState, f: Fields<'_>) -> Result<twofactor::Dto> {
    let user_id =
        twofactor::guid(&f, "UserId")?.ok_or_else(|| Error::invalid("UserId is required."))?;
    let gsm = twofactor::gsm_number(&f, "GsmNumber")?;
    let config_id = f.int("TwoFactorConfigurationId")?.unwrap_or(0);
    let max_count = twofactor::limit(&f, "MaxSMSCount", 1..=1000)?;
    let interval_min = twofactor::limit(&f, "MaxSMSInterval", 1..=1440)?;
    let expiry_min = twofactor::limit(&f, "OtpExpirationPeriod", 1..=1440)?;
    let is_sync = f.bool("IsSync")?.unwrap_or(false);
    f.text("Source")?;
    if config_id < 0 {
        return Err(Error::invalid(
            "TwoFactorConfigurationId must not be negative.",
        ));
    }

    let config = match config_id {
        0 => None,
        id => Some(
            app.db
                .run(move |c| twofactor_configs::find(c, id)?.ok_or(Error::ConfigurationNotFound))
                .await?,
        ),
    };
    // The configuration's settings, or the gateway's defaults; then the request's.
    let mut policy = Policy::from_settings(&app.settings.otp);
    policy.channels = vec![Channel::Sms];
    if let Some(c) = &config {
        policy.length = c.code_length as u32;
        policy.expiry_ms = c.expiry_seconds * 1000;
        policy.max_attempts = c.max_attempts;
        policy.max_sends = c.max_sms_count;
        policy.send_window_ms = c.max_sms_interval_seconds * 1000;
    }
    // The request's limits narrow the configuration's, never loosen them: the route
    // is open, and a caller must not lift the limits its operator set.
    let policy = policy.narrowed(
        max_count,
        interval_min.map(|m| m * 60_000),
        expiry_min.map(|m| m * 60_000),
    );

    let request = IssueRequest {
        subject: format!("customer:{user_id}"),
        purpose: "twofactor",
        user_id: None,
        org_id: 0,
        destinations: vec![Destination {
            channel: Channel::Sms,
            address: gsm.clone(),
        }],
        device_id: None,
        language: None,
        sms_template: config.as_ref().and_then(|c| c.sms_template.clone()),
        reveal_code: config.as_ref().is_some_and(|c| c.return_code),
        policy,
        limit_scope: None,
    };
    let issued = super::issue(app, request).await?;
    let mut created = Created {
        id: issued.numeric_id,
        otp_id_reference: issued.transaction_id,
        reference_code: issued.reference,
        otp_code: issued.code,
        remaining_seconds: 0,
        gsm_number: mask::phone(&gsm),
    };
    let waited = match is_sync {
        true => {
            crate::delivery::wait_for_outcome(&app.db, &issued.outbox_ids, Duration::from_secs(15))
                .await
        }
        false => Ok(()),
    };
    created.remaining_seconds = ((issued.expires_at - now_ms()) / 1000).max(0);
    if let Err(reason) = waited {
        // The reason names providers and server details: for the log, not the caller.
        tracing::warn!(otp_id = created.id, %reason, "synchronous SMS send failed");
        let e = Error::DeliveryFailed("no SMS provider accepted the message.".into());
        return Ok(twofactor::create_send_failed(&created, &e.to_string()));
    }
    Ok(twofactor::create_response(&created))
}
