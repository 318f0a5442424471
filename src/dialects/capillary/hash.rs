//! The payload hash a brand may require: `hash`, the HMAC-SHA-256 under the brand's
//! hash key of the canonical body, with a millisecond `timeStamp` within the brand's
//! window. Anything else answers 5004.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::codes::Failure;
use super::request::Call;
use crate::core::brands::Brand;

type HmacSha256 = Hmac<Sha256>;

/// The body as the payload hash covers it: the `hash` member left out, object members
/// sorted by name at every level, no white space.
pub fn canonical(body: &Value) -> String {
    fn sorted(v: &Value, top: bool) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m
                    .keys()
                    .filter(|k| !(top && k.eq_ignore_ascii_case("hash")))
                    .collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k], false)))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| sorted(x, false)).collect()),
            other => other.clone(),
        }
    }
    sorted(body, true).to_string()
}

/// The `hash` of a body: lower-case hex of HMAC-SHA-256 under the brand's hash key,
/// over [`canonical`] (which includes `timeStamp`).
pub fn payload_hash(key: &[u8], body: &Value) -> String {
    hex::encode(mac_of(key, body).finalize().into_bytes())
}

/// The brand's payload check, when it has one: `hash` must be the HMAC of the body
/// and `timeStamp` (epoch milliseconds) within the brand's window of now. Anything
/// else answers 5004. Without a hash key, a `hash` is accepted and ignored.
pub fn check_hash(brand: &Brand, call: &Call, now: i64) -> Result<(), Failure> {
    let Some(key) = &brand.hash_key else {
        return Ok(());
    };
    let key = crate::core::keys::parse_key(key, 32).map_err(|_| {
        tracing::error!(brand = %brand.name, "the brand's hash key is unreadable");
        Failure::of(5004)
    })?;
    let f = call.fields()?;
    let hash = f.text("hash").ok().flatten().map(|h| h.trim().to_string());
    let stamp = f.int("timeStamp").ok().flatten();
    let (Some(hash), Some(stamp)) = (hash, stamp) else {
        return Err(Failure::of(5004));
    };
    // abs_diff: a timeStamp at either end of the range must not overflow.
    if now.abs_diff(stamp) > brand.hash_window_seconds.unsigned_abs() * 1000 {
        return Err(Failure::of(5004));
    }
    let Ok(given) = hex::decode(hash.to_ascii_lowercase()) else {
        return Err(Failure::of(5004));
    };
    mac_of(&key, &call.body)
        .verify_slice(&given)
        .map_err(|_| Failure::of(5004))
}

fn mac_of(key: &[u8], body: &Value) -> HmacSha256 {
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(canonical(body).as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_canonical_body_sorts_members_and_leaves_the_hash_out() {
        let v = json!({"b": 1, "Hash": "x", "a": {"z": [2, {"y": 1, "x": 0}], "hash": "kept"}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"hash":"kept","z":[2,{"x":0,"y":1}]},"b":1}"#
        );
    }
}
