//! schemas/ checked against the wire: every body the scenarios send and receive
//! validates against the schema its step names (JSON Schema with the jsonschema crate,
//! XSD with xmllint), the OpenAPI document lists exactly the routes the app serves, and
//! the files are served at GET /schemas/… and GET /openapi.json.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use serde_json::Value;

use crate::both;
use crate::support::*;

/// Set (as .ci/run does) to make a missing xmllint fail the suite rather than skip
/// the XSD checks.
pub const REQUIRE_XMLLINT: &str = "OTPGATE_TEST_REQUIRE_XMLLINT";

pub fn schema_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(rel)
}

fn xmllint_available() -> bool {
    static AVAILABLE: LazyLock<bool> = LazyLock::new(|| {
        let found = std::process::Command::new("xmllint")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            let required = std::env::var(REQUIRE_XMLLINT).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "xmllint is not installed and {REQUIRE_XMLLINT}=1: install libxml2-utils \
                 (apt-get install libxml2-utils) to check the XML bodies against the XSDs"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "WARNING: xmllint not found: XML bodies are NOT checked against the XSDs \
                 (install libxml2-utils; {REQUIRE_XMLLINT}=1 makes this an error)"
            );
        }
        found
    });
    *AVAILABLE
}

/// Why `body` does not validate against the schema at `rel` (under schemas/), if it
/// does not. A form body is checked as the JSON object of its fields.
pub fn validate(rel: &str, content_type: &str, body: &str) -> Result<(), String> {
    if rel.ends_with(".xsd") {
        return validate_xml(rel, body);
    }
    let instance: Value = if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields: serde_json::Map<String, Value> =
            serde_urlencoded::from_str::<Vec<(String, String)>>(body)
                .map_err(|e| format!("not a form: {e}"))?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
        Value::Object(fields)
    } else {
        otpgate::wire::parse_json(body.as_bytes()).map_err(|e| format!("not JSON: {e}"))?
    };
    static VALIDATORS: LazyLock<Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>> =
        LazyLock::new(Default::default);
    let validator = {
        let mut cache = VALIDATORS.lock().unwrap();
        match cache.get(rel) {
            Some(v) => v.clone(),
            None => {
                let text = std::fs::read_to_string(schema_path(rel))
                    .map_err(|e| format!("schema {rel}: {e}"))?;
                let schema: Value =
                    serde_json::from_str(&text).map_err(|e| format!("schema {rel}: {e}"))?;
                let v = std::sync::Arc::new(
                    jsonschema::validator_for(&schema)
                        .map_err(|e| format!("schema {rel} does not compile: {e}"))?,
                );
                cache.insert(rel.to_string(), v.clone());
                v
            }
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn validate_xml(rel: &str, body: &str) -> Result<(), String> {
    if !xmllint_available() {
        return Ok(());
    }
    use std::io::Write;
    let mut child = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema_path(rel))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("xmllint: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .map_err(|e| format!("xmllint: {e}"))?;
    let o = child
        .wait_with_output()
        .map_err(|e| format!("xmllint: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

/// The checks bite: a body missing a required member, or with an element the XSD does
/// not know, is refused.
#[test]
fn invalid_bodies_are_refused() {
    let ok = r#"{"Errors":"Invalid user name or password.","Message":"","Output":"","TokenID":null,"OrgID":0,"OutputObject":null,"OutputID":0,"Input":null}"#;
    assert_eq!(
        validate("summit/response.schema.json", "application/json", ok),
        Ok(())
    );
    let missing = ok.replace(r#""Errors":"Invalid user name or password.","#, "");
    assert!(validate("summit/response.schema.json", "application/json", &missing).is_err());
    let form = "UserId=3698b76f-a5c0-4b04-b579-bc084019fb95&GsmNumber=905321234567&TwoFactorConfigurationId=3";
    let schema = "twofactor/CreateTwoFactorSmsOtpRequest.schema.json";
    assert_eq!(
        validate(schema, "application/x-www-form-urlencoded", form),
        Ok(())
    );
    if xmllint_available() {
        let xml = "<CommonWS_JsonObjCallResult xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><Surprise/></CommonWS_JsonObjCallResult>";
        assert!(validate("summit/envelope.xsd", "application/xml", xml).is_err());
    }
}

/// The OpenAPI document's operations are exactly startup::routes(), the list the router
/// dispatches by, and every schema it refers to exists.
#[test]
fn the_openapi_document_lists_every_route_the_app_serves() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path("openapi.json")).unwrap())
            .expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = otpgate::startup::routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not in openapi.json: {undocumented:?}; in openapi.json but not served: {not_served:?}"
    );
    // Every $ref outside the document names a file of schemas/.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        if let Some(file) = r.strip_prefix("/schemas/") {
            let file = file.split('#').next().unwrap();
            assert!(schema_path(file).is_file(), "openapi.json refers to {r}");
        } else {
            assert!(r.starts_with("#/"), "unexpected $ref {r}");
        }
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The routes the document lists answer (none falls through to the 404), and the
/// schemas are served as they are in the repository, with their types.
async fn schemas_and_the_openapi_document_are_served(b: Backend) {
    let app = spawn(b).await;
    let a = app
        .request(reqwest::Method::GET, "/openapi.json", &[], String::new())
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "application/json");
    assert_eq!(
        a.text,
        std::fs::read_to_string(schema_path("openapi.json")).unwrap()
    );
    for (file, ct) in [
        ("summit/request.schema.json", "application/schema+json"),
        ("twofactor/twofactor.xsd", "application/xml; charset=utf-8"),
        ("README.md", "text/markdown; charset=utf-8"),
    ] {
        let a = app
            .request(
                reqwest::Method::GET,
                &format!("/schemas/{file}"),
                &[],
                String::new(),
            )
            .await;
        assert_eq!((a.status, a.content_type.as_str()), (200, ct), "{file}");
        assert_eq!(a.text, std::fs::read_to_string(schema_path(file)).unwrap());
    }
    for missing in ["/schemas/nope.json", "/schemas/../Cargo.toml", "/schemas/"] {
        let a = app
            .request(reqwest::Method::GET, missing, &[], String::new())
            .await;
        assert_eq!(a.status, 404, "{missing}: {}", a.text);
    }
    let a = app
        .request(reqwest::Method::POST, "/openapi.json", &[], String::new())
        .await;
    assert_eq!(a.status, 405);
    for r in otpgate::startup::routes() {
        let path = r.path.replace("{path}", "README.md");
        let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
        let a = app
            .request(
                method,
                &path,
                &[("content-type", Some("application/json"))],
                "{}".into(),
            )
            .await;
        let fallthrough = serde_json::json!({"error": "not found", "path": path}).to_string();
        assert!(
            !(a.status == 404 && a.text == fallthrough),
            "{} {path} is documented but not served: {}",
            r.method,
            a.text
        );
    }
}

both!(schemas_and_the_openapi_document_are_served);

/// The seed documents' samples, as they are, follow the schemas too. (Not
/// seed-003-create-response.xml: twofactor.xsd types OtpIdReference as the GUID otpgate
/// sends, and the help page's sample holds "sample string 2" there.)
#[test]
fn the_seed_samples_follow_their_schemas() {
    let cases = [
        (
            "summit/seed-000-generate-request.json",
            "summit/request.schema.json",
        ),
        (
            "summit/seed-000-generate-request.xml",
            "summit/envelope.xsd",
        ),
        (
            "summit/seed-000-generate-response.json",
            "summit/response.schema.json",
        ),
        (
            "summit/seed-001-generate-request.json",
            "summit/request.schema.json",
        ),
        (
            "summit/seed-001-generate-request.xml",
            "summit/envelope.xsd",
        ),
        (
            "summit/seed-001-generate-response.json",
            "summit/response.schema.json",
        ),
        (
            "summit/seed-001-loginapp-request.json",
            "summit/request.schema.json",
        ),
        (
            "summit/seed-001-loginapp-request.xml",
            "summit/envelope.xsd",
        ),
        (
            "summit/seed-001-loginapp-response.json",
            "summit/login-app-response.schema.json",
        ),
        (
            "twofactor/seed-003-create-request.json",
            "twofactor/CreateTwoFactorSmsOtpRequest.schema.json",
        ),
        (
            "twofactor/seed-003-create-request.xml",
            "twofactor/twofactor-request.xsd",
        ),
        (
            "twofactor/seed-003-create-response.json",
            "twofactor/CreateTwoFactorSmsOtpResponse.schema.json",
        ),
    ];
    for (sample, schema) in cases {
        let ct = if sample.ends_with(".xml") {
            "application/xml"
        } else {
            "application/json"
        };
        if let Err(e) = validate(schema, ct, &fixture(sample)) {
            panic!("{sample} does not follow {schema}: {e}");
        }
    }
}
