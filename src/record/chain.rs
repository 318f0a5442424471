//! Chaining exchanges into scenarios. An answer that carries a transaction, OTP or
//! session id (TransactionID, OtpIdReference and Id, sessionId, TokenID) keeps its
//! scenario open; a later request that sends one of those values is appended to it.
//! A scenario is written when a request carrying the code succeeds, when nothing has
//! continued it for `pending_seconds`, when it grows too long, when too many are open,
//! and at shutdown. An exchange that neither continues a scenario nor carries an id is
//! a scenario of its own, written at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;

use super::exchange::Exchange;
use super::fields;
use super::redact::{id_variable, is_code, normalize};

/// Open scenarios at most; beyond, the oldest is written as it is.
pub const MAX_PENDING: usize = 4096;
/// Steps in one scenario at most.
pub const MAX_STEPS: usize = 50;

/// The scalar fields a request carries, names normalized: its body's and its query's.
pub fn request_fields(x: &Exchange) -> Vec<(String, String)> {
    let ct = x
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    let mut out = fields::list(&String::from_utf8_lossy(&x.body), ct);
    if !x.query.is_empty() {
        out.extend(fields::list(
            &x.query,
            Some("application/x-www-form-urlencoded"),
        ));
    }
    out.into_iter().map(|(k, v)| (normalize(&k), v)).collect()
}

/// The fields of an answer, names as written.
pub fn answer_fields(x: &Exchange) -> Vec<(String, String)> {
    fields::list(
        &String::from_utf8_lossy(&x.response),
        x.content_type.as_deref(),
    )
}

/// A value worth chaining on: not empty, not a failure's zero.
pub fn is_id_value(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("null") && !v.starts_with("{{")
}

/// The id values an answer carries.
pub fn answer_ids(x: &Exchange) -> Vec<String> {
    answer_fields(x)
        .into_iter()
        .filter(|(k, v)| id_variable(&normalize(k)).is_some() && is_id_value(v))
        .map(|(_, v)| v)
        .collect()
}

/// The code a request carries: an OTP field, or Summit's Password when the request
/// also names a transaction (LoginApp with an OTP).
pub fn code_in(request: &[(String, String)]) -> Option<&str> {
    let has_transaction = request
        .iter()
        .any(|(k, v)| k == "transactionid" && is_id_value(v));
    request
        .iter()
        .find(|(k, v)| {
            !v.trim().is_empty() && (is_code(k, true) || (has_transaction && k == "password"))
        })
        .map(|(_, v)| v.as_str())
}

/// Whether an answer says the request succeeded: a 2xx status and none of the
/// dialects' failure markers (`IsValid` false, `success` false, a Summit `Errors` text).
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, exercised by the tests"
)]
pub fn succeeded(x: &Exchange) -> bool {
    static FAILED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"(?i)"IsValid"\s*:\s*false|<(?:[\w.-]+:)?IsValid>\s*false|"success"\s*:\s*false|"Errors"\s*:\s*"[^"]|<(?:[\w.-]+:)?Errors>\s*[^<\s]"#,
        )
        .expect("failure pattern")
    });
    (200..300).contains(&x.status) && !FAILED.is_match(&String::from_utf8_lossy(&x.response))
}

/// Whether an operation sends a code: ADM_GenerateOTP, CreateTwoFactorSmsOtp,
/// CreateOtpForRemindPassword, otp/generate (not token/generate).
pub fn is_generate(op: &str) -> bool {
    let o = op.to_ascii_lowercase();
    o.contains("otp") && (o.contains("generate") || o.contains("create"))
}

struct Pending {
    steps: Vec<Exchange>,
    last_ms: i64,
    values: Vec<String>,
}

/// The open scenarios.
pub struct Book {
    pending: BTreeMap<u64, Pending>,
    index: HashMap<String, u64>,
    next: u64,
    pending_ms: i64,
}

impl Book {
    pub fn new(pending_seconds: u64) -> Book {
        Book {
            pending: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
            pending_ms: i64::try_from(pending_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
        }
    }

    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.pending.len()
    }

    /// Takes an exchange; returns the scenarios now complete, in order.
    pub fn add(&mut self, x: Exchange, now_ms: i64) -> Vec<Vec<Exchange>> {
        let request = request_fields(&x);
        let continues = request
            .iter()
            .filter(|(k, v)| id_variable(k).is_some() && is_id_value(v))
            .find_map(|(_, v)| {
                self.index
                    .get(v.trim())
                    .copied()
                    .filter(|k| self.pending.contains_key(k))
            });
        let produced = answer_ids(&x);
        match continues {
            Some(key) => {
                let closes = code_in(&request).is_some() && succeeded(&x);
                for v in &produced {
                    self.index.insert(v.clone(), key);
                }
                let Some(p) = self.pending.get_mut(&key) else {
                    return vec![vec![x]];
                };
                p.values.extend(produced);
                p.steps.push(x);
                p.last_ms = now_ms;
                if closes || p.steps.len() >= MAX_STEPS {
                    self.close(key).into_iter().collect()
                } else {
                    Vec::new()
                }
            }
            None if !x.selected => Vec::new(),
            None if produced.is_empty() => vec![vec![x]],
            None => {
                let key = self.next;
                self.next += 1;
                for v in &produced {
                    self.index.insert(v.clone(), key);
                }
                self.pending.insert(
                    key,
                    Pending {
                        steps: vec![x],
                        last_ms: now_ms,
                        values: produced,
                    },
                );
                let mut out = Vec::new();
                while self.pending.len() > MAX_PENDING {
                    let Some(oldest) = self.pending.keys().next().copied() else {
                        break;
                    };
                    out.extend(self.close(oldest));
                }
                out
            }
        }
    }

    /// The scenarios nothing continued for `pending_seconds`.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Vec<Exchange>> {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.last_ms) >= self.pending_ms)
            .map(|(k, _)| *k)
            .collect();
        due.into_iter().filter_map(|k| self.close(k)).collect()
    }

    /// Every open scenario, oldest first (at shutdown).
    pub fn drain(&mut self) -> Vec<Vec<Exchange>> {
        let keys: Vec<u64> = self.pending.keys().copied().collect();
        keys.into_iter().filter_map(|k| self.close(k)).collect()
    }

    fn close(&mut self, key: u64) -> Option<Vec<Exchange>> {
        let p = self.pending.remove(&key)?;
        for v in &p.values {
            if self.index.get(v) == Some(&key) {
                self.index.remove(v);
            }
        }
        Some(p.steps)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::exchange::Dialect;

    pub fn exchange(path: &str, body: &str, status: u16, response: &str) -> Exchange {
        Exchange {
            at_ms: 1_700_000_000_000,
            dialect: Dialect::of_path(path).unwrap_or(Dialect::TwoFactor),
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes().into(),
            status,
            content_type: Some("application/json; charset=utf-8".into()),
            response: response.to_string().into_bytes().into(),
            selected: true,
        }
    }

    const CREATE: &str = "/api/TwoFactor/CreateTwoFactorSmsOtp";
    const VALIDATE: &str = "/api/TwoFactor/ValidateTwoFactorSmsOtp";
    const REF: &str = "36d97a51-07ee-480e-a50e-e6fb53baf14f";

    fn created() -> Exchange {
        exchange(
            CREATE,
            r#"{"GsmNumber":"905321234567"}"#,
            200,
            &format!(r#"{{"Id":41,"OtpIdReference":"{REF}","Code":4001}}"#),
        )
    }

    #[test]
    fn a_generate_waits_for_its_validate_and_closes_on_success() {
        let mut book = Book::new(600);
        assert!(book.add(created(), 0).is_empty());
        assert_eq!(book.open(), 1);
        // Unrelated, no id: written at once, alone.
        let other = exchange("/auth/v1/otp/validate", "{}", 400, "{}");
        assert_eq!(book.add(other, 1).len(), 1);
        // A wrong code continues the scenario and keeps it open.
        let wrong = exchange(
            VALIDATE,
            r#"{"OtpId":41,"OtpCode":"0000"}"#,
            200,
            r#"{"IsValid":false,"Code":6002}"#,
        );
        assert!(book.add(wrong, 2).is_empty());
        // By reference, no code: appended.
        let by_ref = exchange(
            "/api/TwoFactor/ValidateTwoFactorSmsOtoByReferenceId",
            &format!(r#"<R><OtpIdReference>{REF}</OtpIdReference></R>"#),
            200,
            r#"{"IsValid":false,"Code":6008}"#,
        );
        assert!(book.add(by_ref, 3).is_empty());
        let right = exchange(
            VALIDATE,
            r#"{"OtpId":41,"OtpCode":"123456"}"#,
            200,
            r#"{"IsValid":true,"Code":6001}"#,
        );
        let done = book.add(right, 4);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].len(), 4);
        assert_eq!(book.open(), 0);
    }

    #[test]
    fn unchained_generates_expire_and_unselected_strays_are_dropped() {
        let mut book = Book::new(10);
        assert!(book.add(created(), 0).is_empty());
        assert!(book.expire(9_999).is_empty());
        assert_eq!(book.expire(10_000).len(), 1);
        // A request naming an id nobody answered, not selected: dropped.
        let mut stray = exchange(VALIDATE, r#"{"OtpId":41,"OtpCode":"1"}"#, 200, "{}");
        stray.selected = false;
        assert!(book.add(stray.clone(), 0).is_empty());
        stray.selected = true;
        assert_eq!(book.add(stray, 0).len(), 1);
        // Shutdown writes what is open.
        book.add(created(), 0);
        assert_eq!(book.drain().len(), 1);
        assert_eq!(book.open(), 0);
    }

    #[test]
    fn a_summit_login_with_the_code_closes_its_generate() {
        let mut book = Book::new(600);
        let path = "/API/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";
        let generate = exchange(
            path,
            r#"{"ServiceName":"ADM_GenerateOTP"}"#,
            200,
            &format!(
                r#"{{"Errors":"","OutputObject":{{"OTP_Communication":[{{"TransactionID":"{REF}"}}]}}}}"#
            ),
        );
        assert!(book.add(generate, 0).is_empty());
        let failed = exchange(
            path,
            &format!(
                r#"{{"ServiceName":"LoginApp","objCommonParameters":{{"_ProxyDetails":{{"Password":"1111","TransactionID":"{REF}"}}}}}}"#
            ),
            200,
            r#"{"Errors":"Invalid OTP. 2 attempts are left."}"#,
        );
        assert!(book.add(failed, 1).is_empty());
        let login = exchange(
            path,
            &format!(
                r#"{{"ServiceName":"LoginApp","objCommonParameters":{{"_ProxyDetails":{{"Password":"1234","TransactionID":"{REF}"}}}}}}"#
            ),
            200,
            r#"{"User":{"UserDetails":[]}}"#,
        );
        assert_eq!(book.add(login, 2)[0].len(), 3);
        assert!(is_generate("ADM_GenerateOTP") && is_generate("web/otp/generate"));
        assert!(!is_generate("token/generate") && !is_generate("LoginApp"));
    }
}
