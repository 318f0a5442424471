//! A chain of exchanges written as a scenario (fixtures/README.md): each request
//! redacted, each answer a template whose volatile and secret values are holes, ids a
//! later request sends captured into variables, the code of a generate taken from the
//! delivery sink.

use std::collections::{BTreeMap, BTreeSet};

use crate::tools::replay::template::{self, Template};
use crate::tools::replay::{Scenario, VOLATILE};

use super::chain::{self, code_in, is_generate, is_id_value, succeeded};
use super::exchange::{Dialect, Exchange, operation};
use super::fields::{self, Field, Slot};
use super::redact::{
    Faker, id_variable, is_code, is_phone_name, is_secret, looks_like_phone, normalize, placeholder,
};

/// A scenario ready to be written.
#[derive(Debug)]
pub struct Rendered {
    /// The first exchange's time, milliseconds since the epoch.
    pub at_ms: i64,
    pub dialect: Dialect,
    /// The first exchange's operation.
    pub operation: String,
    /// The scenario file's text.
    pub text: String,
}

struct Step<'a> {
    x: &'a Exchange,
    op: String,
    request: String,
    request_ct: Option<&'a str>,
    request_fields: Vec<(String, String)>,
    response: String,
    answer_fields: Vec<(String, String)>,
}

mod tables;
use tables::{request_table, response_table};

/// Text that must not be read as a variable (`${…}`) or a hole (`{{…}}`) by the
/// replayer.
fn inert(text: &str) -> String {
    text.replace("${", "$ {").replace("{{", "{ {")
}

/// Renders a chain; `extra` are the configured names to redact (normalized).
pub fn render(chain: &[Exchange], extra: &BTreeSet<String>) -> Option<Rendered> {
    let first = chain.first()?;
    let steps: Vec<Step> = chain
        .iter()
        .map(|x| {
            let request_ct = x
                .headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.as_str());
            Step {
                x,
                op: operation(x.dialect, &x.path, &x.body),
                request: inert(&String::from_utf8_lossy(&x.body)),
                request_ct,
                request_fields: chain::request_fields(x),
                response: String::from_utf8_lossy(&x.response).replace("${", "$ {"),
                answer_fields: chain::answer_fields(x),
            }
        })
        .collect();

    // Ids answered, and the variables of those a later request sends.
    let mut produced: Vec<(usize, String, String)> = Vec::new(); // (step, field, value)
    let mut vars: BTreeMap<String, String> = BTreeMap::new(); // value -> variable
    let mut var_field: BTreeMap<String, (usize, String)> = BTreeMap::new(); // variable -> (step, field)
    let mut taken: BTreeSet<String> = ["code".to_string(), "unique".to_string()].into();
    let mut name_var = |value: &str,
                        step: usize,
                        field: &str,
                        vars: &mut BTreeMap<String, String>,
                        var_field: &mut BTreeMap<String, (usize, String)>|
     -> String {
        if let Some(v) = vars.get(value) {
            return v.clone();
        }
        let base = id_variable(&normalize(field)).unwrap_or("id");
        let mut name = base.to_string();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        taken.insert(name.clone());
        vars.insert(value.to_string(), name.clone());
        var_field.insert(name.clone(), (step, field.to_string()));
        name
    };
    for (j, s) in steps.iter().enumerate() {
        for (k, v) in &s.request_fields {
            if id_variable(k).is_none() || !is_id_value(v) {
                continue;
            }
            let from = produced
                .iter()
                .rev()
                .find(|(i, _, value)| *i < j && value == v.trim())
                .map(|(i, f, _)| (*i, f.clone()));
            if let Some((i, f)) = from {
                name_var(v.trim(), i, &f, &mut vars, &mut var_field);
            }
        }
        for (k, v) in &s.answer_fields {
            if id_variable(&normalize(k)).is_some() && is_id_value(v) {
                produced.push((j, k.clone(), v.trim().to_string()));
            }
        }
    }

    // The codes: the one a request succeeded with is the code of the nearest generate
    // before it, read from the sink when replayed; other codes sent are wrong ones.
    let chained_steps: Vec<bool> = steps
        .iter()
        .map(|s| {
            s.request_fields
                .iter()
                .any(|(k, v)| id_variable(k).is_some() && vars.contains_key(v.trim()))
        })
        .collect();
    let chained = |j: usize| chained_steps[j];
    let generate_before = |j: usize| (0..j).rev().find(|i| is_generate(&steps[*i].op));
    let mut right_code: BTreeMap<usize, String> = BTreeMap::new();
    for (j, s) in steps.iter().enumerate().skip(1) {
        if !chained(j) || !succeeded(s.x) {
            continue;
        }
        if let (Some(code), Some(g)) = (code_in(&s.request_fields), generate_before(j)) {
            right_code.entry(g).or_insert_with(|| code.to_string());
        }
    }
    // Where each generate's code is found in the sink.
    let mut sinks: BTreeMap<usize, (&'static str, String)> = BTreeMap::new();
    let mut faker = Faker::default();
    learn(&steps, &mut faker);
    for g in right_code.keys() {
        let s = &steps[*g];
        let txn = s.answer_fields.iter().find(|(k, v)| {
            matches!(normalize(k).as_str(), "transactionid" | "otpidreference") && is_id_value(v)
        });
        if let Some((k, v)) = txn {
            let var = name_var(v.trim(), *g, k, &mut vars, &mut var_field);
            sinks.insert(*g, ("transaction", format!("${{{var}}}")));
        } else if let Some(d) = capillary_destination(s, &mut faker) {
            sinks.insert(*g, ("destination", d));
        } else {
            sinks.insert(*g, ("", String::new()));
        }
    }

    let mut doc = toml_edit::DocumentMut::new();
    let ops: Vec<&str> = steps.iter().map(|s| s.op.as_str()).collect();
    let mut title_ops: Vec<&str> = Vec::new();
    for op in &ops {
        if title_ops.last() != Some(op) {
            title_ops.push(op);
        }
    }
    doc["title"] = toml_edit::value(format!(
        "Recorded {}: {} {}",
        time(first.at_ms),
        first.dialect.name(),
        title_ops
            .iter()
            .map(|o| if o.is_empty() { "(no operation)" } else { o })
            .collect::<Vec<_>>()
            .join(" → ")
    ));
    let mut extra_volatile: BTreeSet<String> = BTreeSet::new();
    let mut tables = toml_edit::ArrayOfTables::new();
    for (j, s) in steps.iter().enumerate() {
        let governing = generate_before(j).and_then(|g| right_code.get(&g));
        let code_here = if j > 0 && chained(j) {
            code_in(&s.request_fields).map(str::to_string)
        } else {
            None
        };
        let mut t = toml_edit::Table::new();
        t["name"] = toml_edit::value(format!(
            "{} {}",
            j + 1,
            if s.op.is_empty() { &s.x.path } else { &s.op }
        ));
        t["request"] = toml_edit::Item::Table(request_table(
            s,
            &vars,
            code_here.as_deref(),
            governing.map(String::as_str),
            extra,
            &mut faker,
        ));
        let (response, volatile) = response_table(s, j, &var_field, extra, &mut faker);
        extra_volatile.extend(volatile);
        t["response"] = toml_edit::Item::Table(response);
        if let Some((filter, value)) = sinks.get(&j) {
            let mut sink = toml_edit::Table::new();
            sink["capture"] = toml_edit::value("code");
            if !filter.is_empty() {
                sink[*filter] = toml_edit::value(value.as_str());
            }
            let mut list = toml_edit::ArrayOfTables::new();
            list.push(sink);
            t["sink"] = toml_edit::Item::ArrayOfTables(list);
        }
        tables.push(t);
    }
    if !extra_volatile.is_empty() {
        let mut a = toml_edit::Array::new();
        for v in &extra_volatile {
            a.push(v.as_str());
        }
        doc["volatile"] = toml_edit::value(a);
    }
    doc["steps"] = toml_edit::Item::ArrayOfTables(tables);
    Some(Rendered {
        at_ms: first.at_ms,
        dialect: first.dialect,
        operation: ops.first().map(|s| s.to_string()).unwrap_or_default(),
        text: doc.to_string(),
    })
}

/// Gives every e-mail address and phone number of the scenario its fake before any
/// text is written, so masked forms in earlier answers are known.
fn learn(steps: &[Step], faker: &mut Faker) {
    for s in steps {
        for (k, v) in s
            .request_fields
            .iter()
            .map(|(k, v)| (k.clone(), v))
            .chain(s.answer_fields.iter().map(|(k, v)| (normalize(k), v)))
            .chain(s.x.headers.iter().map(|(k, v)| (normalize(k), v)))
        {
            if is_phone_name(&k) && looks_like_phone(v) {
                faker.phone(v);
            }
        }
        faker.learn(&s.request);
        faker.learn(&s.x.path);
        faker.learn(&s.x.query);
        for (_, v) in &s.x.headers {
            faker.learn(v);
        }
        faker.learn(&s.response);
    }
}

/// The destination a Capillary otp/generate sends to, as the sink writes it: `+` and
/// the digits of a MOBILE identifier, an EMAIL identifier as it is.
fn capillary_destination(s: &Step, faker: &mut Faker) -> Option<String> {
    if s.x.dialect != Dialect::Capillary {
        return None;
    }
    let field = |name: &str| {
        s.request_fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    let value = field("identifiervalue")?;
    match field("identifiertype")?.to_ascii_uppercase().as_str() {
        "MOBILE" => {
            let fake = faker.phone(&value);
            Some(format!(
                "+{}",
                fake.chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
            ))
        }
        "EMAIL" => Some(faker.contacts(&value)),
        _ => None,
    }
}

/// `2026-12-02T15:12:00Z`.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Checks a rendered text parses as a scenario (the writer writes nothing else).
pub fn parses(text: &str) -> Result<Scenario, String> {
    toml::from_str::<Scenario>(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::chain::tests::exchange;

    const CREATE: &str = "/customerservice/api/TwoFactor/CreateTwoFactorSmsOtp";
    const VALIDATE: &str = "/customerservice/api/TwoFactor/ValidateTwoFactorSmsOtp";
    const REF: &str = "36d97a51-07ee-480e-a50e-e6fb53baf14f";

    fn no_extra() -> BTreeSet<String> {
        BTreeSet::new()
    }

    #[test]
    fn a_generate_and_its_validate_chain_through_variables_and_the_sink() {
        let create = exchange(
            CREATE,
            r#"{"UserId":"3698b76f-a5c0-4b04-b579-bc084019fb95","GsmNumber":"905321234567","TwoFactorConfigurationId":3}"#,
            200,
            &format!(
                r#"{{"Id":41,"OtpIdReference":"{REF}","ReferenceCode":"QUJD","OtpCode":null,"RemainingExpirationSeconds":180,"GsmNumber":"*********567","Code":4001}}"#
            ),
        );
        let wrong = exchange(
            VALIDATE,
            r#"{"OtpId":41,"OtpCode":"9999"}"#,
            200,
            r#"{"IsValid":false,"GsmNumber":null,"Code":6002}"#,
        );
        let right = exchange(
            VALIDATE,
            r#"{"OtpId":41,"OtpCode":"123456","Email":"Ann.Lee@Example.com"}"#,
            200,
            r#"{"IsValid":true,"GsmNumber":"*********567","Code":6001,"PasswordChangeRequestId":"6d1c3d5e-0b0a-4c8e-9d62-b1c41e5b2f60"}"#,
        );
        let again = exchange(
            VALIDATE,
            r#"{"OtpId":41,"OtpCode":"123456"}"#,
            200,
            r#"{"IsValid":false,"Code":6003}"#,
        );
        let r = render(&[create, wrong, right, again], &no_extra()).unwrap();
        let text = &r.text;
        for secret in [
            "905321234567",
            "123456",
            "9999",
            "Ann.Lee",
            "ann.lee",
            REF,
            "*********567",
        ] {
            assert!(!text.contains(secret), "{secret} in:\n{text}");
        }
        let s = parses(text).unwrap();
        assert_eq!(s.steps.len(), 4);
        let body = |i: usize| s.steps[i].request.body.clone().unwrap();
        let answer = |i: usize| s.steps[i].response.body.clone().unwrap();
        assert!(
            answer(0).contains(r#""Id":{{id:digits}},"OtpIdReference":"{{ref:uuid}}""#),
            "{}",
            answer(0)
        );
        assert_eq!(s.steps[0].sink.len(), 1);
        assert_eq!(s.steps[0].sink[0].capture, "code");
        assert_eq!(s.steps[0].sink[0].transaction.as_deref(), Some("${ref}"));
        assert_eq!(body(1), r#"{"OtpId":${id},"OtpCode":"0000"}"#);
        assert!(
            body(2).starts_with(
                r#"{"OtpId":${id},"OtpCode":"${code}","Email":"person1@example.org"}"#
            ),
            "{}",
            body(2)
        );
        assert_eq!(body(3), r#"{"OtpId":${id},"OtpCode":"${code}"}"#);
        // The fake number is masked in the answers as the gateway would mask it.
        let fake = body(0);
        let digits: String = fake
            .split("\"GsmNumber\":\"")
            .nth(1)
            .unwrap()
            .chars()
            .take(12)
            .collect();
        assert!(
            answer(0).contains(&crate::core::mask::phone(&digits)),
            "{}",
            answer(0)
        );
        assert!(
            answer(2).contains(&crate::core::mask::phone(&digits)),
            "{}",
            answer(2)
        );
        assert!(answer(2).contains(r#""PasswordChangeRequestId":"{{uuid}}""#));
        // Replayed, the recorded answers match the recorded ones.
        let vars = template::Vars::from([
            ("id".to_string(), "41".to_string()),
            ("ref".to_string(), REF.to_string()),
        ]);
        let t = Template::parse(&template::substitute(&answer(0), &vars).unwrap()).unwrap();
        assert!(t.has_holes());
    }

    #[test]
    fn secrets_become_placeholders_in_requests_and_holes_in_answers() {
        let mut extra = BTreeSet::new();
        extra.insert(normalize("CustomerNote"));
        let mut x = exchange(
            "/auth/v1/token/generate",
            r#"{"identifierType":"MOBILE","identifierValue":"919876543219","password":"Pa55word!","CustomerNote":"private","list":["a@b.co"],"weird":"${x}"}"#,
            200,
            r#"{"status":{"success":true},"auth":{"token":"eyJhbGciOi.eyJzdWIi.sig","key":"k3y"},"user":{"sessionId":"c2Vzc2lvbg==","mobile":"919876543219"}}"#,
        );
        x.headers
            .push(("authorization".into(), "Bearer abc.def".into()));
        x.headers.push(("cap_mobile".into(), "919876543219".into()));
        x.headers.push(("cap_brand".into(), "DocDemo".into()));
        let r = render(&[x], &extra).unwrap();
        for secret in [
            "919876543219",
            "Pa55word!",
            "private",
            "a@b.co",
            "eyJhbGciOi",
            "k3y",
            "c2Vzc2lvbg",
            "abc.def",
            "${x}",
        ] {
            assert!(!r.text.contains(secret), "{secret} in:\n{}", r.text);
        }
        let s = parses(&r.text).unwrap();
        let req = &s.steps[0].request;
        assert_eq!(req.headers["Authorization"], "redacted");
        assert_eq!(req.headers["cap_brand"], "DocDemo");
        let body = req.body.as_deref().unwrap();
        assert!(
            body.contains(r#""password":"redacted","CustomerNote":"redacted""#),
            "{body}"
        );
        assert!(body.contains(r#""weird":"$ {x}""#), "{body}");
        let fake_mobile = &req.headers["cap_mobile"];
        assert!(body.contains(fake_mobile.as_str()), "{body}");
        let answer = s.steps[0].response.body.as_deref().unwrap();
        assert!(answer.contains(r#""sessionId":"{{base64}}""#), "{answer}");
        assert!(
            answer.contains(&format!(r#""mobile":"{fake_mobile}""#)),
            "{answer}"
        );
        assert!(
            s.volatile.contains(&"sessionId".to_string()),
            "{:?}",
            s.volatile
        );
        assert!(
            r.text
                .contains("title = \"Recorded 2023-11-14T22:13:20Z: capillary token/generate\""),
            "{}",
            r.text
        );
    }

    #[test]
    fn capillary_chains_on_the_session_and_reads_the_code_by_destination() {
        let token = exchange(
            "/auth/v1/token/generate",
            r#"{"identifierType":"MOBILE","identifierValue":"919876543219","brand":"DocDemo"}"#,
            200,
            r#"{"status":{"success":true,"code":200,"message":"SUCCESS"},"user":{"sessionId":"c2Vzc2lvbg"}}"#,
        );
        let generate = exchange(
            "/auth/v1/otp/generate",
            r#"{"identifierType":"MOBILE","identifierValue":"919876543219","sessionId":"c2Vzc2lvbg"}"#,
            200,
            r#"{"status":{"success":true,"code":200,"message":"SUCCESS"}}"#,
        );
        let validate = exchange(
            "/auth/v1/otp/validate",
            r#"{"identifierType":"MOBILE","identifierValue":"919876543219","sessionId":"c2Vzc2lvbg","otp":"654321"}"#,
            200,
            r#"{"status":{"success":true,"code":200,"message":"SUCCESS"},"auth":{"token":"t.t.t","key":"kk"}}"#,
        );
        let r = render(&[token, generate, validate], &no_extra()).unwrap();
        assert!(
            !r.text.contains("654321")
                && !r.text.contains("c2Vzc2lvbg")
                && !r.text.contains("9876543219"),
            "{}",
            r.text
        );
        let s = parses(&r.text).unwrap();
        assert!(
            s.steps[0]
                .response
                .body
                .as_deref()
                .unwrap()
                .contains("{{sid:base64}}")
        );
        assert!(
            s.steps[1]
                .request
                .body
                .as_deref()
                .unwrap()
                .contains(r#""sessionId":"${sid}""#)
        );
        let sink = &s.steps[1].sink[0];
        let dest = sink.destination.as_deref().unwrap();
        assert!(dest.starts_with("+91") && dest.len() == 13, "{dest}");
        assert!(
            s.steps[2]
                .request
                .body
                .as_deref()
                .unwrap()
                .contains(r#""otp":"${code}""#)
        );
        assert!(s.steps[0].sink.is_empty() && s.steps[2].sink.is_empty());
    }

    #[test]
    fn xml_and_form_requests_are_redacted_too() {
        let mut xml = exchange(
            "/API/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall",
            "<s:Envelope><s:Body><CommonWS_JsonObjCall><ServiceName>LoginApp</ServiceName><objCommonParameters><_ProxyDetails><a:Password>Secret#123</a:Password><UserName>vishnu@syntel.com</UserName><TokenID>ABCDEF0123</TokenID></_ProxyDetails></objCommonParameters></CommonWS_JsonObjCall></s:Body></s:Envelope>",
            200,
            "<R><Errors>bad</Errors><TokenID>ABCDEF0123</TokenID><MobileNo>9876543219</MobileNo></R>",
        );
        xml.headers = vec![("content-type".into(), "text/xml".into())];
        xml.content_type = Some("text/xml; charset=utf-8".into());
        let mut form = exchange(
            "/api/TwoFactor/CreateTwoFactorSmsOtp",
            "UserId=3698b76f-a5c0-4b04-b579-bc084019fb95&GsmNumber=%2B905321234567&Email=a%40b.co&OtpCode=1234",
            200,
            "{}",
        );
        form.headers = vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )];
        let r = render(&[xml], &no_extra()).unwrap();
        for secret in [
            "Secret#123",
            "vishnu@syntel.com",
            "ABCDEF0123",
            "9876543219",
        ] {
            assert!(!r.text.contains(secret), "{secret} in:\n{}", r.text);
        }
        assert!(
            r.text.contains("<a:Password>redacted</a:Password>"),
            "{}",
            r.text
        );
        let r = render(&[form], &no_extra()).unwrap();
        for secret in ["905321234567", "a%40b.co", "a@b.co", "OtpCode=1234"] {
            assert!(!r.text.contains(secret), "{secret} in:\n{}", r.text);
        }
        assert!(r.text.contains("OtpCode=0000"), "{}", r.text);
        parses(&r.text).unwrap();
    }
}
