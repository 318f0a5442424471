//! Answers that reveal no user: with `security.reveal_unknown_users` off (the
//! default), an identifier nobody is registered under gets, on every dialect, the
//! answer a known one gets (only ids, references and the masked number's digits
//! differ), nothing is sent for it, and its transaction fails as a wrong code does.
//! With the setting on, the legacy "no such user" answers come back.

use std::time::Duration;

use diesel::prelude::*;
use otpgate::core::otp::decoy;
use otpgate::db::schema::{audit_events, outbox};
use serde_json::{Map, Value};

use crate::support::*;

mod capillary;
mod legacy;
mod summit;
mod twofactor;

/// `v` with the values of the members named in `volatile` (at any depth) replaced by
/// their type: what two answers must share when only those may differ.
fn shape(v: &Value, volatile: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = if volatile.contains(&k.as_str()) {
                        Value::String(format!("[{}]", type_name(x)))
                    } else {
                        shape(x, volatile)
                    };
                    (k.clone(), x)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| shape(x, volatile)).collect()),
        other => other.clone(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Two answers alike: the same status and content type, the same members in the same
/// order with values of the same types, equal but for the `volatile` members.
fn assert_alike(known: &Answer, unknown: &Answer, volatile: &[&str]) {
    assert_eq!(
        (known.status, &known.content_type),
        (unknown.status, &unknown.content_type),
        "{}\n{}",
        known.text,
        unknown.text
    );
    let (k, u) = (known.json(), unknown.json());
    assert_eq!(shape(&k, volatile), shape(&u, volatile), "{k}\n{u}");
    assert_eq!(
        member_order(&k),
        member_order(&u),
        "member order: {}\n{}",
        known.text,
        unknown.text
    );
}

/// Every member name, depth first, in order.
fn member_order(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    out.push(k.clone());
                    walk(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// `text` with each of `volatile` replaced by its position: two texts that match after
/// this differ only there.
fn without(text: &str, volatile: &[&str]) -> String {
    volatile
        .iter()
        .enumerate()
        .fold(text.to_string(), |t, (i, v)| {
            t.replace(v, &format!("[{i}]"))
        })
}

/// The three digits a masked number shows (`*******219`), after checking its shape:
/// `stars` stars, then three digits.
fn shown_digits(masked: &str, stars: usize) -> String {
    let (s, d) = masked.split_at(masked.len().min(stars));
    assert!(
        s.chars().all(|c| c == '*') && d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()),
        "not {stars} stars and 3 digits: {masked}"
    );
    d.to_string()
}

/// Audit events of `event` with `outcome`.
async fn audited(app: &TestApp, event: &'static str, outcome: &'static str) -> i64 {
    app.app
        .db
        .run(move |c| {
            Ok(audit_events::table
                .filter(audit_events::event.eq(event))
                .filter(audit_events::outcome.eq(outcome))
                .count()
                .get_result(c)?)
        })
        .await
        .unwrap()
}

/// An outbox row's state, destination, masked destination, sealed text and note.
type DecoyMessage = (String, String, String, Option<Vec<u8>>, Option<String>);

/// Lets the dispatcher run (it polls every 20 ms in tests), then checks that nothing
/// was delivered for any of `transactions`, and that their messages were written
/// cancelled, with neither the address nor the sealed text.
async fn nothing_sent_for(app: &TestApp, transactions: &[String]) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    for m in app.deliveries() {
        let t = m["transaction_id"].as_str().unwrap_or("");
        assert!(!transactions.iter().any(|x| x == t), "delivered: {m}");
    }
    let ids = transactions.to_vec();
    let rows: Vec<DecoyMessage> = app
        .app
        .db
        .run(move |c| {
            Ok(outbox::table
                .filter(outbox::challenge_id.eq_any(&ids))
                .select((
                    outbox::state,
                    outbox::destination,
                    outbox::destination_masked,
                    outbox::payload,
                    outbox::last_error,
                ))
                .load(c)?)
        })
        .await
        .unwrap();
    assert!(rows.len() >= transactions.len(), "{rows:?}");
    for (state, destination, masked, payload, note) in rows {
        assert_eq!(state, "cancelled");
        assert_eq!(destination, masked, "only the masked address is kept");
        assert!(destination.contains('*'), "{destination}");
        assert_eq!(payload, None);
        assert_eq!(note.as_deref(), Some(decoy::NOTE));
    }
}

/// Messages of the outbox that were not written cancelled.
async fn live_messages(app: &TestApp) -> usize {
    messages(&app.app)
        .await
        .iter()
        .filter(|m| m.state != "cancelled")
        .count()
}
