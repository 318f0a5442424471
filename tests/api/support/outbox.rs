//! The outbox, read and filled straight through the database.

use std::time::Duration;

use diesel::prelude::*;
use otpgate::config::Settings;
use otpgate::core::otp::{Channel, Destination, IssueRequest, Policy, issue};
use otpgate::db::outbox::Listing;
use otpgate::db::schema::outbox as outbox_t;
use otpgate::state::AppState;

use super::eventually;

/// Every message in the outbox, oldest first.
pub async fn messages(app: &AppState) -> Vec<Listing> {
    app.db
        .run(|c| {
            Ok(outbox_t::table
                .order(outbox_t::created_at)
                .select(Listing::as_select())
                .load(c)?)
        })
        .await
        .unwrap()
}

/// Waits until `done` holds for the outbox, and returns it.
pub async fn outbox_until(app: &AppState, done: impl Fn(&[Listing]) -> bool) -> Vec<Listing> {
    eventually(Duration::from_secs(10), || async {
        let rows = messages(app).await;
        if done(&rows) {
            Ok(rows)
        } else {
            Err(format!("outbox never got there: {rows:#?}"))
        }
    })
    .await
}

pub fn sms_of<'a>(rows: &'a [Listing], transaction_id: &str) -> &'a Listing {
    rows.iter()
        .find(|r| r.channel == "sms" && r.challenge_id.as_deref() == Some(transaction_id))
        .expect("an SMS for the transaction")
}

/// Whether every message is done with: sent, failed or cancelled.
pub fn all_final(rows: &[Listing]) -> bool {
    !rows.is_empty()
        && rows
            .iter()
            .all(|r| matches!(r.state.as_str(), "sent" | "failed" | "cancelled"))
}

/// A login code for `subject` by SMS to `number`, under organisation 1's policy.
pub fn sms_issue_request(settings: &Settings, subject: &str, number: &str) -> IssueRequest {
    IssueRequest {
        subject: subject.into(),
        purpose: "login",
        user_id: None,
        org_id: 1,
        destinations: vec![Destination {
            channel: Channel::Sms,
            address: number.into(),
        }],
        device_id: None,
        language: None,
        sms_template: None,
        reveal_code: false,
        policy: Policy::for_org(settings, 1),
        limit_scope: None,
        decoy: None,
    }
}

/// Issues codes straight into the outbox of a database no dispatcher watches, one per
/// number (each to its own subject); returns the messages' ids.
pub async fn issue_codes(app: &AppState, numbers: &[String]) -> Vec<String> {
    let (keys, templates, settings) = (
        app.keys.clone(),
        app.templates.clone(),
        app.settings.clone(),
    );
    let numbers = numbers.to_vec();
    app.db
        .run(move |c| {
            let mut ids = Vec::new();
            for (i, n) in numbers.iter().enumerate() {
                let request = sms_issue_request(&settings, &format!("user:{i}"), n);
                ids.extend(issue(c, &keys, &templates, &request)?.outbox_ids);
            }
            Ok(ids)
        })
        .await
        .unwrap()
}
