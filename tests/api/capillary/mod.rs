//! The Capillary auth API (/auth/v1): the seed's requests, the token → generate →
//! validate flow for every identifier type on mobile and web, every failure code,
//! the per-brand limits, session expiry and the payload hash.

use otpgate::core::brands;
use otpgate::db::capillary_sessions::{self, CapSession};
use otpgate::db::challenges;
use otpgate::dialects::capillary::tokens::{Claims, jwt_key, verify_token};
use serde_json::{Value, json};

use crate::support::*;

mod brands_cli;
mod failures;
mod flow;
mod limits;
mod payload_hash;
mod samples;
mod sessions;

const HASH_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A session with an OTP generated in it.
struct Generated {
    sid: String,
    /// The otp/generate request, which otp/validate repeats with the code.
    req: Value,
    code: String,
}

impl TestApp {
    async fn cap(&self, path: &str, body: Value) -> Answer {
        self.post_json(path, &body).await
    }

    /// token/generate on mobile (`web` false) or web; returns the sessionId.
    async fn cap_session(&self, web: bool, brand: &str, kind: &str, value: &str) -> String {
        let a = self
            .cap(
                &route(web, "token/generate"),
                json!({"identifierType": kind, "identifierValue": value, "brand": brand, "deviceId": "dev-1"}),
            )
            .await;
        let v = a.json();
        assert_eq!(v["status"]["success"], true, "{}", a.text);
        v["user"]["sessionId"].as_str().unwrap().to_string()
    }

    /// A new session of `brand` for the identifier, and an OTP generated in it; the
    /// code as sent on `channel`.
    async fn cap_generated(
        &self,
        web: bool,
        brand: &str,
        (kind, value): (&str, &str),
        channel: &str,
    ) -> Generated {
        let sid = self.cap_session(web, brand, kind, value).await;
        let req = body(kind, value, brand, &sid);
        let a = self.cap(&route(web, "otp/generate"), req.clone()).await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
        let code = self.cap_code(&sid, channel).await;
        Generated { sid, req, code }
    }

    /// The code of a session's latest OTP, from the delivery sink.
    async fn cap_code(&self, session_id: &str, channel: &str) -> String {
        let subject = brands::subject(session_id);
        let id = self
            .app
            .db
            .run(move |c| Ok(challenges::latest_capillary(c, &subject)?))
            .await
            .unwrap()
            .expect("an OTP was generated")
            .id;
        self.code(&id, channel).await
    }

    async fn cap_session_row(&self, id: &str) -> CapSession {
        let id = id.to_string();
        self.app
            .db
            .run(move |c| Ok(capillary_sessions::find(c, &id)?))
            .await
            .unwrap()
            .expect("session stored")
    }
}

fn route(web: bool, op: &str) -> String {
    if web {
        format!("/auth/v1/web/{op}")
    } else {
        format!("/auth/v1/{op}")
    }
}

fn body(kind: &str, value: &str, brand: &str, session: &str) -> Value {
    json!({"identifierType": kind, "identifierValue": value, "brand": brand, "deviceId": "dev-1", "sessionId": session})
}

fn with_otp(mut v: Value, otp: impl Into<Value>) -> Value {
    v["otp"] = otp.into();
    v
}

/// The status of an answer: (HTTP status, code, message), after checking the shape.
fn status(a: &Answer) -> (u16, i64, String) {
    let v = a.json();
    let s = &v["status"];
    assert!(
        s["success"].is_boolean() && s["code"].is_i64() && s["message"].is_string(),
        "not the status shape: {}",
        a.text
    );
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );
    (
        a.status,
        s["code"].as_i64().unwrap(),
        s["message"].as_str().unwrap().to_string(),
    )
}

fn failed(a: &Answer, code: i64) {
    let (http, got, message) = status(a);
    assert_eq!((http, got), (200, code), "{}", a.text);
    assert_eq!(a.json()["status"]["success"], false);
    assert_eq!(
        a.json().as_object().unwrap().len(),
        1,
        "a failure is the status alone: {}",
        a.text
    );
    assert!(!message.is_empty());
}

fn claims(app: &TestApp, token: &Value) -> Claims {
    verify_token(&jwt_key(&app.app), token.as_str().expect("a token"))
        .unwrap_or_else(|| panic!("not a valid token of ours: {token}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("capillary/{name}"))).expect("fixture is JSON")
}
