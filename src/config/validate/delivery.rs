//! Checks of the `[delivery]` section: providers, the channels' provider lists,
//! templates and per-organisation settings.

use std::collections::BTreeMap;

use crate::config::{
    BUILTIN_PROVIDERS, DeliverySettings, HttpSmsSettings, ProviderSettings, SmtpSettings,
    TemplateSet,
};

/// The most messages the dispatcher may hold at once: each claim size up to it is a
/// statement the SQLite connection keeps prepared.
pub const MAX_BATCH_SIZE: i64 = 1000;

pub(super) fn check(d: &DeliverySettings, problems: &mut Vec<String>) {
    use crate::delivery::templates::{MESSAGE_PLACEHOLDERS, check_template, is_language_tag};
    const REQUEST_PLACEHOLDERS: &[&str] = &["to", "to_digits", "text", "sender", "id"];

    let mut names: BTreeMap<&str, &ProviderSettings> = BTreeMap::new();
    for (i, p) in d.providers.iter().enumerate() {
        let at = format!("delivery.providers[{i}] ('{}')", p.name());
        if p.name().trim().is_empty() {
            problems.push(format!("delivery.providers[{i}].name: must not be empty"));
        } else if BUILTIN_PROVIDERS.contains(&p.name()) {
            problems.push(format!(
                "{at}: the name is taken by a built-in provider; choose another"
            ));
        } else if names.contains_key(p.name()) {
            problems.push(format!("{at}: another provider has the same name"));
        } else {
            names.insert(p.name(), p);
        }
        match p {
            ProviderSettings::Smtp(m) => check_smtp(&at, m, &d.app_name, problems),
            ProviderSettings::HttpSms(h) => check_http_sms(&at, h, REQUEST_PLACEHOLDERS, problems),
            ProviderSettings::File(f) => {
                if f.path.as_os_str().is_empty() {
                    problems.push(format!("{at}.path: must not be empty"));
                }
            }
            ProviderSettings::Log(_) => {}
        }
    }
    for (list_name, list, kinds) in [
        ("delivery.email", &d.email, ["smtp", "file", "log"]),
        ("delivery.sms", &d.sms, ["http_sms", "file", "log"]),
    ] {
        if list.is_empty() {
            problems.push(format!(
                "{list_name}: name at least one provider (built in: {})",
                BUILTIN_PROVIDERS.join(", ")
            ));
        }
        for n in list {
            let kind = match names.get(n.as_str()) {
                Some(p) => p.kind(),
                None if BUILTIN_PROVIDERS.contains(&n.as_str()) => continue,
                None => {
                    let declared: Vec<&str> = names.keys().copied().collect();
                    problems.push(format!(
                        "{list_name}: unknown provider '{n}' (declared: {}; built in: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        },
                        BUILTIN_PROVIDERS.join(", ")
                    ));
                    continue;
                }
            };
            if !kinds.contains(&kind) {
                problems.push(format!(
                    "{list_name}: provider '{n}' is of kind {kind}, which cannot send this channel"
                ));
            }
        }
    }
    if d.retry_base_ms < 1 || d.poll_interval_ms < 10 {
        problems
            .push("delivery: retry_base_ms must be positive, poll_interval_ms at least 10".into());
    }
    if !(1..=MAX_BATCH_SIZE).contains(&d.batch_size) {
        problems.push(format!(
            "delivery: batch_size must be between 1 and {MAX_BATCH_SIZE}"
        ));
    }
    if d.lease_seconds < 0 {
        problems.push(
            "delivery.lease_seconds: must be 0 (sized to the providers' timeouts) or a positive number of seconds"
                .into(),
        );
    }
    if d.max_attempts < 0 {
        problems.push(
            "delivery.max_attempts: must be 0 (retry while the code can be used) or a positive upper bound"
                .into(),
        );
    }
    if d.max_retry_delay_ms < d.retry_base_ms.max(1) {
        problems.push(format!(
            "delivery.max_retry_delay_ms: must be at least retry_base_ms ({})",
            d.retry_base_ms
        ));
    }
    fn template(problems: &mut Vec<String>, name: &str, text: &str, needs_code: bool) {
        if let Err(e) = check_template(text, MESSAGE_PLACEHOLDERS, needs_code) {
            problems.push(format!("{name}: {e}"));
        }
    }
    template(problems, "delivery.sms_template", &d.sms_template, true);
    template(problems, "delivery.email_subject", &d.email_subject, false);
    template(problems, "delivery.email_template", &d.email_template, true);
    let mut sets: Vec<(String, &BTreeMap<String, TemplateSet>)> =
        vec![("delivery.templates".into(), &d.templates)];
    for (org, o) in &d.orgs {
        if org.parse::<i64>().is_err() {
            problems.push(format!(
                "delivery.orgs.{org}: the key must be a numeric OrgID"
            ));
        }
        sets.push((format!("delivery.orgs.{org}.templates"), &o.templates));
        if let Some(lang) = &o.default_language
            && !is_language_tag(lang)
        {
            problems.push(format!(
                "delivery.orgs.{org}.default_language: '{lang}' is not a language tag like en or pt-BR"
            ));
        }
        if let Some(from) = &o.email_from {
            let app = o.app_name.as_deref().unwrap_or(&d.app_name);
            if let Err(e) = crate::delivery::smtp::parse_from(from, app) {
                problems.push(format!("delivery.orgs.{org}.email_from: {e}"));
            }
        }
    }
    for (at, set) in sets {
        for (lang, t) in set {
            let at = format!("{at}.{lang}");
            if !is_language_tag(lang) {
                problems.push(format!(
                    "{at}: '{lang}' is not a language tag like en or pt-BR"
                ));
            }
            if let Some(sms) = &t.sms {
                template(problems, &format!("{at}.sms"), sms, true);
            }
            match (&t.email_subject, &t.email_text) {
                (Some(subject), Some(text)) => {
                    template(problems, &format!("{at}.email_subject"), subject, false);
                    template(problems, &format!("{at}.email_text"), text, true);
                }
                (None, None) => {}
                _ => problems.push(format!("{at}: give email_subject and email_text together")),
            }
        }
    }
    if !is_language_tag(&d.default_language) {
        problems.push(format!(
            "delivery.default_language: '{}' is not a language tag like en or pt-BR",
            d.default_language
        ));
    }
}

fn check_smtp(at: &str, m: &SmtpSettings, app: &str, problems: &mut Vec<String>) {
    if m.host.trim().is_empty() {
        problems.push(format!("{at}.host: must not be empty"));
    }
    if !matches!(m.security.as_str(), "starttls" | "tls" | "none") {
        problems.push(format!(
            "{at}.security: '{}' is none of starttls, tls, none",
            m.security
        ));
    }
    if m.username.is_some() != m.password.is_some() {
        problems.push(format!("{at}: give username and password together"));
    }
    if let Err(e) = crate::delivery::smtp::parse_from(&m.from, app) {
        problems.push(format!("{at}.from: {e}"));
    }
    if let Some(ca) = &m.ca_file
        && let Err(e) = crate::delivery::smtp::read_ca_file(ca)
    {
        problems.push(format!("{at}.ca_file: {e}"));
    }
    if m.timeout_seconds < 1 {
        problems.push(format!("{at}.timeout_seconds: must be at least 1"));
    }
}

fn check_http_sms(at: &str, h: &HttpSmsSettings, known: &[&str], problems: &mut Vec<String>) {
    use crate::delivery::templates::check_template;
    match reqwest::Url::parse(&h.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => problems.push(format!("{at}.url: not an http:// or https:// URL")),
    }
    if reqwest::Method::from_bytes(h.method.to_ascii_uppercase().as_bytes()).is_err()
        || !matches!(
            h.method.to_ascii_uppercase().as_str(),
            "GET" | "POST" | "PUT" | "PATCH"
        )
    {
        problems.push(format!(
            "{at}.method: '{}' is none of GET, POST, PUT, PATCH",
            h.method
        ));
    }
    if !matches!(h.encoding.as_str(), "json" | "form") {
        problems.push(format!(
            "{at}.encoding: '{}' is neither json nor form",
            h.encoding
        ));
    }
    let mut strings: Vec<(String, &str)> = Vec::new();
    for (k, v) in &h.headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            problems.push(format!("{at}.headers: '{k}' is not a header name"));
        }
        strings.push((format!("{at}.headers.{k}"), v));
    }
    for (k, v) in &h.query {
        strings.push((format!("{at}.query.{k}"), v));
    }
    if let Some(body) = &h.body {
        if h.encoding == "form" {
            match body.as_object() {
                Some(o) if o.values().all(|v| !v.is_object() && !v.is_array()) => {}
                _ => problems.push(format!(
                    "{at}.body: with form encoding, the body is a table of plain values"
                )),
            }
        }
        let mut leaves = Vec::new();
        string_leaves(body, &mut leaves);
        for v in leaves {
            strings.push((format!("{at}.body"), v));
        }
    }
    for (name, text) in strings {
        if let Err(e) = check_template(text, known, false) {
            problems.push(format!("{name}: {e}"));
        }
    }
    if h.success_status.iter().any(|s| !(100..=599).contains(s)) {
        problems.push(format!(
            "{at}.success_status: HTTP statuses are between 100 and 599"
        ));
    }
    for (name, pointer) in [
        ("success_field", &h.success_field),
        ("message_id_field", &h.message_id_field),
    ] {
        if let Some(p) = pointer
            && !p.is_empty()
            && !p.starts_with('/')
        {
            problems.push(format!(
                "{at}.{name}: '{p}' is not a JSON pointer like /status or /messages/0/status"
            ));
        }
    }
    if h.basic_auth.is_some()
        && h.headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        problems.push(format!(
            "{at}: give basic_auth or an Authorization header, not both"
        ));
    }
    if h.timeout_seconds < 1 {
        problems.push(format!("{at}.timeout_seconds: must be at least 1"));
    }
}

fn string_leaves<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| string_leaves(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| string_leaves(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::load::load_text;

    #[test]
    fn mistakes_in_delivery_are_named() {
        let e = load_text(
            r#"
            [delivery]
            email = ["gateway", "nowhere"]
            sms = ["mail"]
            sms_template = "Your code"

            [[delivery.providers]]
            name = "mail"
            kind = "smtp"
            host = "smtp.example.com"
            from = "not an address"
            security = "ssl"

            [[delivery.providers]]
            name = "gateway"
            kind = "http_sms"
            url = "ftp://sms.example.com/send"
            encoding = "form"
            body = { to = "{to}", text = "{txt}", nested = { a = 1 } }
            success_field = "status"

            [[delivery.providers]]
            name = "gateway"
            kind = "log"

            [[delivery.providers]]
            name = "file"
            kind = "log"

            [delivery.orgs.acme.templates.en]
            email_text = "{code}"
            "#,
        )
        .unwrap_err();
        for expected in [
            "delivery.email: provider 'gateway' is of kind http_sms, which cannot send this channel",
            "delivery.email: unknown provider 'nowhere' (declared: gateway, mail; built in: file, log)",
            "delivery.sms: provider 'mail' is of kind smtp, which cannot send this channel",
            "delivery.sms_template: must contain {code}",
            "delivery.providers[0] ('mail').from: 'not an address' is not an address",
            "delivery.providers[0] ('mail').security: 'ssl' is none of starttls, tls, none",
            "delivery.providers[1] ('gateway').url: not an http:// or https:// URL",
            "delivery.providers[1] ('gateway').body: with form encoding, the body is a table of plain values",
            "delivery.providers[1] ('gateway').body: unknown placeholder {txt} (known: {to}, {to_digits}, {text}, {sender}, {id})",
            "delivery.providers[1] ('gateway').success_field: 'status' is not a JSON pointer",
            "delivery.providers[2] ('gateway'): another provider has the same name",
            "delivery.providers[3] ('file'): the name is taken by a built-in provider",
            "delivery.orgs.acme: the key must be a numeric OrgID",
            "delivery.orgs.acme.templates.en: give email_subject and email_text together",
        ] {
            assert!(e.contains(expected), "missing: {expected}\nin:\n{e}");
        }
    }

    #[test]
    fn retry_settings_are_checked() {
        let e = load_text(
            r#"
            [delivery]
            max_attempts = -1
            retry_base_ms = 5000
            max_retry_delay_ms = 1000
            "#,
        )
        .unwrap_err();
        assert!(e.contains("delivery.max_attempts: must be 0"), "{e}");
        assert!(
            e.contains("delivery.max_retry_delay_ms: must be at least retry_base_ms (5000)"),
            "{e}"
        );
        let s = load_text("[delivery]\nmax_attempts = 4\n").unwrap();
        assert_eq!(
            (s.delivery.max_attempts, s.delivery.max_retry_delay_ms),
            (4, 30_000)
        );
        assert_eq!(load_text("").unwrap().delivery.max_attempts, 0);
    }

    /// The delivery reference's examples are configurations that start.
    #[test]
    fn the_documented_delivery_examples_are_valid() {
        let page = include_str!("../../../docs/delivery.md");
        let blocks: Vec<&str> = page
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert!(
            blocks.len() >= 2,
            "docs/delivery.md has {} toml blocks",
            blocks.len()
        );
        for b in blocks {
            let s = load_text(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
            let t = crate::delivery::Templates::from_settings(&s.delivery);
            let m = t.render(7, None, crate::core::otp::Channel::Sms, "123456", 10, "REF");
            assert!(m.text.contains("123456"));
        }
    }

    #[test]
    fn the_lease_is_sized_to_the_longest_channel_of_providers() {
        let s = load_text(
            r#"
            [delivery]
            email = ["mail", "file"]
            sms = ["primary", "backup"]

            [[delivery.providers]]
            name = "mail"
            kind = "smtp"
            host = "smtp.example.com"
            from = "otp@example.com"
            timeout_seconds = 20

            [[delivery.providers]]
            name = "primary"
            kind = "http_sms"
            url = "https://sms.example.com/send"
            timeout_seconds = 8

            [[delivery.providers]]
            name = "backup"
            kind = "http_sms"
            url = "https://sms2.example.com/send"
            timeout_seconds = 7
            "#,
        )
        .unwrap();
        // E-mail: 20 s and 1 s for the file; SMS: 8 + 7 s. The lease adds 5 s.
        assert_eq!(
            s.delivery.lease_and_budget(),
            (Duration::from_secs(26), Duration::from_secs(21))
        );
        // The defaults (file providers): a second's work, a six-second lease.
        let d = load_text("").unwrap();
        assert_eq!(
            d.delivery.lease_and_budget(),
            (Duration::from_secs(6), Duration::from_secs(1))
        );
    }

    #[test]
    fn an_explicit_lease_gives_each_attempt_half_of_it() {
        let s = load_text("[delivery]\nlease_seconds = 40\n").unwrap();
        assert_eq!(
            s.delivery.lease_and_budget(),
            (Duration::from_secs(40), Duration::from_secs(20))
        );
        let e = load_text("[delivery]\nlease_seconds = -1\n").unwrap_err();
        assert!(e.contains("delivery.lease_seconds: must be 0"), "{e}");
    }

    #[test]
    fn the_batch_size_is_bounded() {
        assert!(load_text("[delivery]\nbatch_size = 1000\n").is_ok());
        for bad in ["0", "1001"] {
            let e = load_text(&format!("[delivery]\nbatch_size = {bad}\n")).unwrap_err();
            assert!(e.contains("batch_size must be between 1 and 1000"), "{e}");
        }
    }
}
