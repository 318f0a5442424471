//! The samples of fixtures/capillary/ (the seed's curl commands, the requests and
//! answers of every operation, the error bodies) against the gateway and the schemas.

use otpgate::cli::BrandSettings;
use otpgate::db::capillary_sessions::{self, CapSession};
use otpgate::db::now_ms;
use otpgate::dialects::capillary::codes as cap;
use serde_json::{Value, json};

use super::{claims, failed, fixture_json, route, status};
use crate::both;
use crate::support::*;

/// A curl command of the seed: its path, headers and body.
fn parse_curl(text: &str) -> (String, Vec<(String, String)>, String) {
    let quoted = |s: &str| -> String {
        let start = s.find('\'').unwrap() + 1;
        let end = s[start..].find('\'').unwrap() + start;
        s[start..end].to_string()
    };
    let url = quoted(&text[text.find("--location").unwrap()..]);
    let path = url["https://".len()..][url["https://".len()..].find('/').unwrap()..].to_string();
    let mut headers = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("--header") {
        let h = quoted(&rest[i..]);
        let (k, v) = h.split_once(": ").unwrap();
        headers.push((k.to_string(), v.to_string()));
        rest = &rest[i + 8..];
    }
    let data_at = text.find("--data").unwrap();
    (path, headers, quoted(&text[data_at..]))
}

/// The request bodies the scenarios send (fixtures/capillary/seed-002-*-request.json)
/// are the curl commands' --data, byte for byte.
#[test]
fn the_seed_request_bodies_are_the_curl_data_verbatim() {
    for kind in ["mobile", "web"] {
        let (_, _, data) = parse_curl(&fixture(&format!(
            "capillary/seed-002-otp-generate-{kind}.curl"
        )));
        assert_eq!(
            fixture(&format!(
                "capillary/seed-002-otp-generate-{kind}-request.json"
            )),
            data,
            "{kind}"
        );
    }
}

async fn seed_request(app: &TestApp, file: &str) -> Answer {
    let (path, headers, data) = parse_curl(&fixture(file));
    let headers: Vec<(&str, Option<&str>)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    app.request(reqwest::Method::POST, &path, &headers, data)
        .await
}

async fn insert_session(app: &TestApp, s: CapSession) {
    app.app
        .db
        .run(move |c| Ok(capillary_sessions::insert(c, &s)?))
        .await
        .unwrap();
}

fn seeded_session(
    id: &str,
    web: bool,
    kind: &str,
    value: &str,
    device: Option<&str>,
) -> CapSession {
    CapSession {
        id: id.into(),
        brand_key: "docdemo".into(),
        web,
        identifier_type: kind.into(),
        identifier_value: value.into(),
        device_id: device.map(str::to_string),
        user_id: None,
        created_at: now_ms(),
        expires_at: now_ms() + 900_000,
        validated_at: None,
    }
}

/// The seed's two curl requests, verbatim, against the sessions they name.
async fn the_seed_requests_are_answered(b: Backend) {
    let app = spawn(b).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    let mobile = "P-7df5e433-17bb-4f02-9ce0-7420ba69c7b4";
    insert_session(
        &app,
        seeded_session(mobile, false, "MOBILE", "919999999993", Some("123456785")),
    )
    .await;
    let a = seed_request(&app, "capillary/seed-002-otp-generate-mobile.curl").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.text,
        fixture("capillary/seed-002-otp-generate-response.json").trim()
    );
    let code = app.cap_code(mobile, "sms").await;
    assert_eq!(code.len(), 6);
    let sent = app.deliveries();
    assert_eq!(sent[0]["destination"], "+919999999993");

    // The seed's web sample carries the address as the documentation page obfuscated
    // it ("[email protected]"): not an e-mail address, so invalid details.
    let web = "P-e766af2a-f676-489e-9b24-8571f7af057b";
    insert_session(
        &app,
        seeded_session(web, true, "EMAIL", "[email protected]", None),
    )
    .await;
    let a = seed_request(&app, "capillary/seed-002-otp-generate-web.curl").await;
    failed(&a, 1519);
    assert_eq!(
        status(&a).2,
        "Invalid details passed. identifierValue must be an e-mail address."
    );
}

/// Checks a value against one of schemas/capillary/.
fn conforms(schema: &str, v: &Value) {
    let path = root().join("schemas/capillary").join(schema);
    let schema_json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{schema}: {e}"));
    if let Err(e) = jsonschema::meta::validate(&schema_json) {
        panic!("{schema} violates its meta-schema: {e}");
    }
    let validator = jsonschema::validator_for(&schema_json)
        .unwrap_or_else(|e| panic!("{schema} is not a valid schema: {e}"));
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{v} against {schema}: {errors:?}");
}

/// Every sample of fixtures/capillary/ conforms to its schema, and the claims of its
/// tokens to TokenClaims.
#[test]
fn the_fixtures_conform_to_the_schemas() {
    let dir = root().join("fixtures/capillary");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let stem = stem
            .trim_start_matches("web-")
            .trim_start_matches("legacy-");
        let stem = stem.trim_start_matches("hashed-");
        let schema = match stem {
            s if s.starts_with("error-") => "ErrorResponse.schema.json",
            "seed-002-otp-generate-response" => "OtpGenerateResponse.schema.json",
            "seed-002-otp-generate-mobile-request" | "seed-002-otp-generate-web-request" => {
                "OtpGenerateRequest.schema.json"
            }
            "token-generate-request" => "TokenGenerateRequest.schema.json",
            "token-generate-response" => "TokenGenerateResponse.schema.json",
            "otp-generate-request" => "OtpGenerateRequest.schema.json",
            "otp-generate-response" => "OtpGenerateResponse.schema.json",
            "otp-validate-request" => "OtpValidateRequest.schema.json",
            "otp-validate-response" => "OtpValidateResponse.schema.json",
            other => panic!("no schema for fixture {other}"),
        };
        let v = fixture_json(&name);
        conforms(schema, &v);
        for token in [&v["auth"]["token"], &v["auth"]["key"]] {
            if let Some(t) = token.as_str() {
                let payload = t.split('.').nth(1).unwrap();
                let claims: Value = serde_json::from_slice(
                    &base64::Engine::decode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        payload,
                    )
                    .unwrap(),
                )
                .unwrap();
                conforms("TokenClaims.schema.json", &claims);
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked}");
}

/// Tokens and sessionIds differ on every run: compared as placeholders.
fn redacted(mut v: Value) -> Value {
    for key in ["token", "key"] {
        if v["auth"][key].is_string() {
            v["auth"][key] = json!("[jwt]");
        }
    }
    if v["user"]["sessionId"].is_string() {
        v["user"]["sessionId"] = json!("[sessionId]");
    }
    v
}

/// The sample requests of fixtures/capillary/, sent as they are (but for the live
/// sessionId and code), get the sample responses.
async fn the_fixtures_are_what_the_gateway_answers(b: Backend) {
    // The samples tell at token/generate whether the identifier is registered, as the
    // legacy API does.
    let app = spawn_with(b, |s| s.security.reveal_unknown_users = true).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    app.vishnu().await;
    for (web, prefix, channel) in [(false, "", "sms"), (true, "web-", "email")] {
        let a = app
            .cap(
                &route(web, "token/generate"),
                fixture_json(&format!("{prefix}token-generate-request.json")),
            )
            .await;
        assert_eq!(
            redacted(a.json()),
            redacted(fixture_json(&format!(
                "{prefix}token-generate-response.json"
            ))),
            "{}",
            a.text
        );
        conforms("TokenGenerateResponse.schema.json", &a.json());
        let claims = serde_json::to_value(claims(&app, &a.json()["auth"]["token"])).unwrap();
        conforms("TokenClaims.schema.json", &claims);
        let sid = a.json()["user"]["sessionId"].as_str().unwrap().to_string();
        let mut req = fixture_json(&format!("{prefix}otp-generate-request.json"));
        req["sessionId"] = json!(sid);
        let a = app.cap(&route(web, "otp/generate"), req).await;
        assert_eq!(a.json(), fixture_json("otp-generate-response.json"));
        let code = app.cap_code(&sid, channel).await;
        let mut req = fixture_json(&format!("{prefix}otp-validate-request.json"));
        req["sessionId"] = json!(sid);
        req["otp"] = if req["otp"].is_number() {
            json!(code.parse::<i64>().unwrap())
        } else {
            json!(code)
        };
        let a = app.cap(&route(web, "otp/validate"), req).await;
        assert_eq!(
            redacted(a.json()),
            redacted(fixture_json(&format!("{prefix}otp-validate-response.json"))),
            "{}",
            a.text
        );
        conforms("OtpValidateResponse.schema.json", &a.json());
    }
    // The older shape.
    let sid = app
        .cap_session(false, "DocDemo", "MOBILE", "919876543219")
        .await;
    let mut req = fixture_json("legacy-otp-generate-request.json");
    req["sessionId"] = json!(sid);
    req["deviceId"] = json!("dev-1");
    let a = app.cap(&route(false, "otp/generate"), req).await;
    assert_eq!(a.json(), fixture_json("otp-generate-response.json"));

    // Error samples the gateway answers live.
    let mut no_session = fixture_json("otp-generate-request.json");
    no_session.as_object_mut().unwrap().remove("sessionId");
    for (path, body, file) in [
        (
            route(false, "otp/generate"),
            no_session.to_string(),
            "error-1519-response.json",
        ),
        (
            route(false, "otp/generate"),
            "{".to_string(),
            "error-1519-malformed-json-response.json",
        ),
        (
            "/auth/v1/otp/resend".to_string(),
            "{}".to_string(),
            "error-404-response.json",
        ),
        (
            route(false, "otp/generate"),
            format!("{{\"x\":\"{}\"}}", "a".repeat(70_000)),
            "error-413-response.json",
        ),
    ] {
        let a = app.post(&path, Some("application/json"), body).await;
        assert_eq!(
            a.text,
            fixture(&format!("capillary/{file}")).trim(),
            "{file}"
        );
    }
    let a = app
        .request(
            reqwest::Method::PUT,
            &route(true, "otp/validate"),
            &[],
            String::new(),
        )
        .await;
    assert_eq!(a.text, fixture("capillary/error-405-response.json").trim());
}

/// Every published code's sample is what the gateway writes for it.
#[test]
fn the_error_samples_carry_the_published_messages() {
    for (code, _) in cap::CODES.iter().filter(|(c, _)| *c != 1519) {
        let want = fixture(&format!("capillary/error-{code}-response.json"));
        assert_eq!(
            cap::Failure::of(*code).body().to_string(),
            want.trim(),
            "{code}"
        );
    }
}

both!(
    the_seed_requests_are_answered,
    the_fixtures_are_what_the_gateway_answers,
);
