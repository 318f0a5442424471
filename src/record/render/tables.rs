//! One step of a rendered scenario as TOML: its request (redacted, ids and codes as
//! variables) and its expected response (a template with holes).

use std::collections::{BTreeMap, BTreeSet};

use super::*;

pub(super) fn request_table(
    s: &Step,
    vars: &BTreeMap<String, String>,
    code_here: Option<&str>,
    right_code: Option<&str>,
    extra: &BTreeSet<String>,
    faker: &mut Faker,
) -> toml_edit::Table {
    let mut t = toml_edit::Table::new();
    t["method"] = toml_edit::value(s.x.method.as_str());
    let mut path = inert(&faker.contacts(&s.x.path));
    if !s.x.query.is_empty() {
        let query = fields::rewrite(
            &inert(&s.x.query),
            Some("application/x-www-form-urlencoded"),
            &mut |f: &Field| request_value(f, vars, None, None, extra, faker),
        );
        path = format!("{path}?{}", faker.contacts(&query));
    }
    t["path"] = toml_edit::value(path);
    let mut headers = toml_edit::InlineTable::new();
    for (k, v) in &s.x.headers {
        let n = normalize(k);
        let value = if is_secret(&n) || extra.contains(&n) {
            placeholder(v)
        } else if is_phone_name(&n) && looks_like_phone(v) {
            faker.phone(v)
        } else {
            faker.contacts(v)
        };
        headers.insert(display_header(k), inert(&value).into());
    }
    if !headers.is_empty() {
        t["headers"] = toml_edit::value(headers);
    }
    if !s.request.is_empty() {
        let body = fields::rewrite(&s.request, s.request_ct, &mut |f: &Field| {
            request_value(f, vars, code_here, right_code, extra, faker)
        });
        t["body"] = toml_edit::value(faker.contacts(&body));
    }
    t
}

/// The replacement of one request field's value, if it needs one.
fn request_value(
    f: &Field,
    vars: &BTreeMap<String, String>,
    code_here: Option<&str>,
    right_code: Option<&str>,
    extra: &BTreeSet<String>,
    faker: &mut Faker,
) -> Option<String> {
    let n = normalize(f.name);
    let value = f.value.trim();
    if id_variable(&n).is_some()
        && let Some(var) = vars.get(value)
    {
        return Some(format!("${{{var}}}"));
    }
    if value.is_empty() {
        return None;
    }
    if code_here == Some(f.value) && (is_code(&n, true) || n == "password") {
        return Some(if right_code == Some(f.value) {
            "${code}".into()
        } else {
            placeholder(value)
        });
    }
    if is_secret(&n) || is_code(&n, true) || extra.contains(&n) {
        return Some(match f.slot {
            Slot::JsonNumber => "0".into(),
            _ => placeholder(value),
        });
    }
    if is_phone_name(&n) && looks_like_phone(value) {
        let fake = faker.phone(f.value);
        return (fake != f.value).then_some(fake);
    }
    let c = faker.contacts(f.value);
    (c != f.value).then_some(c)
}

pub(super) fn response_table(
    s: &Step,
    j: usize,
    var_field: &BTreeMap<String, (usize, String)>,
    extra: &BTreeSet<String>,
    faker: &mut Faker,
) -> (toml_edit::Table, BTreeSet<String>) {
    let mut t = toml_edit::Table::new();
    t["status"] = toml_edit::value(i64::from(s.x.status));
    if let Some(ct) = &s.x.content_type {
        let mut headers = toml_edit::InlineTable::new();
        headers.insert("Content-Type", inert(ct).into());
        t["headers"] = toml_edit::value(headers);
    }
    // The spellings of the fields that become holes.
    let volatile_names: BTreeSet<String> = VOLATILE.iter().map(|v| normalize(v)).collect();
    let mut volatile: BTreeSet<String> = BTreeSet::new();
    for (k, _) in &s.answer_fields {
        let n = normalize(k);
        if volatile_names.contains(&n)
            || id_variable(&n).is_some()
            || is_secret(&n)
            || is_code(&n, false)
            || extra.contains(&n)
        {
            volatile.insert(k.clone());
        }
    }
    // The named holes: this answer's ids that later steps use.
    let named: Vec<String> = var_field
        .iter()
        .filter(|(_, (step, _))| *step == j)
        .map(|(var, (_, field))| format!("\"{field}\":\"{{{{{var}:text}}}}\""))
        .collect();
    let previous = (!named.is_empty())
        .then(|| Template::parse(&format!("{{{}}}", named.join(","))).ok())
        .flatten();
    let spellings: Vec<String> = volatile.iter().cloned().collect();
    let recorded = template::record(&s.response, &spellings, previous.as_ref());
    let body = fields::rewrite(&recorded, s.x.content_type.as_deref(), &mut |f: &Field| {
        if f.value.contains("{{") {
            return None;
        }
        let n = normalize(f.name);
        let value = f.value.trim();
        if value.is_empty() {
            return None;
        }
        if is_secret(&n) || is_code(&n, false) || extra.contains(&n) {
            return Some(match f.slot {
                Slot::JsonNumber => "{{number}}".into(),
                _ => "{{text}}".into(),
            });
        }
        if is_phone_name(&n) && looks_like_phone(value) {
            let fake = faker.phone(f.value);
            return (fake != f.value).then_some(fake);
        }
        let c = faker.contacts(f.value);
        (c != f.value).then_some(c)
    });
    t["body"] = toml_edit::value(faker.contacts(&body));
    let beyond: BTreeSet<String> = volatile
        .into_iter()
        .filter(|v| !VOLATILE.contains(&v.as_str()))
        .collect();
    (t, beyond)
}

/// Header names as clients usually write them (`content-type` -> `Content-Type`);
/// `cap_*` names stay as they are.
fn display_header(lower: &str) -> String {
    if lower.starts_with("cap_") {
        return lower.to_string();
    }
    match lower {
        "soapaction" => "SOAPAction".into(),
        _ => lower
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}
