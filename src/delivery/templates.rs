//! Message templates per organisation, channel and language.
//!
//! A message's language is the first of: the request's language (where the dialect
//! carries one; `pt-BR` also tries `pt`), the organisation's `default_language`,
//! `delivery.default_language`. For each language in that line, the organisation's
//! template is used before the global one; the first that exists for the channel
//! wins, and the base templates (`delivery.sms_template`, …) close the line.

use std::collections::BTreeMap;

use super::Message;
use crate::config::{DeliverySettings, TemplateSet};
use crate::core::channel::Channel;

/// What message templates may contain.
pub const MESSAGE_PLACEHOLDERS: &[&str] = &["code", "minutes", "reference", "app"];

/// The `{name}` placeholders in a text, in order; a plural choice
/// `{name|one|other}` counts as its `name`.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            found.push(&after[..name_len]);
            rest = &after[name_len + 1..];
        } else if let Some(close) = after.find('}')
            && name_len > 0
            && plural_forms(&after[name_len..close]).is_some()
        {
            found.push(&after[..name_len]);
            rest = &after[close + 1..];
        } else {
            rest = after;
        }
    }
    found
}

/// The two forms of a plural choice, from what follows its name: `|one|other`.
fn plural_forms(choice: &str) -> Option<(&str, &str)> {
    let (one, other) = choice.strip_prefix('|')?.split_once('|')?;
    (!one.contains(['|', '{']) && !other.contains(['|', '{'])).then_some((one, other))
}

/// Whether a placeholder that starts a plural choice (`{name|`) is well formed.
fn malformed_choice(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('|') {
            let choice = after.find('}').map(|close| &after[name_len..close]);
            if choice.and_then(plural_forms).is_none() {
                return Some(&after[..name_len]);
            }
        }
        rest = after;
    }
    None
}

/// Every placeholder is one of `known`; with `needs_code`, `{code}` is among them.
pub fn check_template(text: &str, known: &[&str], needs_code: bool) -> Result<(), String> {
    let used = placeholders(text);
    if let Some(unknown) = used.iter().find(|p| !known.contains(p)) {
        let known: Vec<String> = known.iter().map(|k| format!("{{{k}}}")).collect();
        return Err(format!(
            "unknown placeholder {{{unknown}}} (known: {})",
            known.join(", ")
        ));
    }
    if let Some(name) = malformed_choice(text) {
        return Err(format!(
            "{{{name}|…}} must give two forms, one and other: {{{name}|minute|minutes}}"
        ));
    }
    if needs_code && !used.contains(&"code") {
        return Err("must contain {code}".into());
    }
    Ok(())
}

/// Replaces each `{name}` of `values` in one pass, so a value that itself looks like
/// a placeholder is left as it is. A plural choice `{name|one|other}` of a whole
/// number is its `one` form when the number is 1, else its `other` form:
/// `{minutes} {minutes|minute|minutes}`.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let hit = after.find('}').and_then(|close| {
            let inner = &after[..close];
            let (name, choice) = match inner.find('|') {
                Some(bar) => (&inner[..bar], Some(&inner[bar..])),
                None => (inner, None),
            };
            let value = values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)?;
            match choice {
                None => Some((close, value)),
                Some(choice) => {
                    let (one, other) = plural_forms(choice)?;
                    let n: i64 = value.trim().parse().ok()?;
                    Some((close, if n == 1 { one } else { other }))
                }
            }
        });
        match hit {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A language tag as the configuration and requests write it: `en`, `hi`, `pt-BR`,
/// `zh_Hant`.
pub fn is_language_tag(tag: &str) -> bool {
    let tag = tag.trim();
    let mut parts = tag.split(['-', '_']);
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `pt_BR` and `PT-br` are both `pt-br`.
pub fn normalise_language(tag: &str) -> String {
    tag.trim().to_ascii_lowercase().replace('_', "-")
}

#[derive(Debug, Clone)]
struct Org {
    app: Option<String>,
    default_language: Option<String>,
    email_from: Option<String>,
    sms_sender: Option<String>,
    templates: BTreeMap<String, TemplateSet>,
}

#[derive(Debug, Clone)]
pub struct Templates {
    app: String,
    default_language: String,
    sms: String,
    email_subject: String,
    email_text: String,
    templates: BTreeMap<String, TemplateSet>,
    orgs: BTreeMap<i64, Org>,
}

fn by_language(sets: &BTreeMap<String, TemplateSet>) -> BTreeMap<String, TemplateSet> {
    sets.iter()
        .map(|(k, v)| (normalise_language(k), v.clone()))
        .collect()
}

impl Templates {
    pub fn from_settings(s: &DeliverySettings) -> Templates {
        Templates {
            app: s.app_name.clone(),
            default_language: normalise_language(&s.default_language),
            sms: s.sms_template.clone(),
            email_subject: s.email_subject.clone(),
            email_text: s.email_template.clone(),
            templates: by_language(&s.templates),
            orgs: s
                .orgs
                .iter()
                .filter_map(|(id, o)| {
                    Some((
                        id.trim().parse().ok()?,
                        Org {
                            app: o.app_name.clone(),
                            default_language: o.default_language.as_deref().map(normalise_language),
                            email_from: o.email_from.clone(),
                            sms_sender: o.sms_sender.clone(),
                            templates: by_language(&o.templates),
                        },
                    ))
                })
                .collect(),
        }
    }

    /// The organisation's e-mail `From`, with `{app}` filled in; None: the provider's.
    pub fn email_from(&self, org_id: i64) -> Option<String> {
        let org = self.orgs.get(&org_id)?;
        let app = org.app.as_deref().unwrap_or(&self.app);
        Some(fill(org.email_from.as_deref()?, &[("app", app)]))
    }

    /// The organisation's SMS sender (`{sender}`); None: the provider's.
    pub fn sms_sender(&self, org_id: i64) -> Option<String> {
        let org = self.orgs.get(&org_id)?;
        let app = org.app.as_deref().unwrap_or(&self.app);
        Some(fill(org.sms_sender.as_deref()?, &[("app", app)]))
    }

    /// Fills `{code}`, `{minutes}`, `{reference}` and `{app}` in a template of the
    /// caller's own.
    pub fn fill(&self, template: &str, code: &str, minutes: i64, reference: &str) -> String {
        let minutes = minutes.to_string();
        fill(
            template,
            &[
                ("code", code),
                ("minutes", &minutes),
                ("reference", reference),
                ("app", &self.app),
            ],
        )
    }

    /// The languages to try, best first.
    fn languages(&self, org: Option<&Org>, requested: Option<&str>) -> Vec<String> {
        let mut line = Vec::new();
        if let Some(r) = requested.filter(|r| is_language_tag(r)) {
            let r = normalise_language(r);
            if let Some((primary, _)) = r.split_once('-') {
                let primary = primary.to_string();
                line.push(r);
                line.push(primary);
            } else {
                line.push(r);
            }
        }
        if let Some(d) = org.and_then(|o| o.default_language.clone()) {
            line.push(d);
        }
        line.push(self.default_language.clone());
        let mut seen = std::collections::HashSet::new();
        line.retain(|l| seen.insert(l.clone()));
        line
    }

    /// Fills `{code}`, `{minutes}`, `{reference}` and `{app}` in the template of the
    /// organisation, language and channel.
    pub fn render(
        &self,
        org_id: i64,
        language: Option<&str>,
        channel: Channel,
        code: &str,
        minutes: i64,
        reference: &str,
    ) -> Message {
        let org = self.orgs.get(&org_id);
        let app = org.and_then(|o| o.app.as_deref()).unwrap_or(&self.app);
        let minutes = minutes.to_string();
        let values = [
            ("code", code),
            ("minutes", minutes.as_str()),
            ("reference", reference),
            ("app", app),
        ];
        let sets: Vec<&TemplateSet> = self
            .languages(org, language)
            .iter()
            .flat_map(|l| {
                [
                    org.and_then(|o| o.templates.get(l)),
                    // The base templates are the default language's.
                    self.templates.get(l),
                ]
            })
            .flatten()
            .collect();
        match channel {
            Channel::Sms => Message {
                subject: None,
                text: fill(
                    sets.iter()
                        .find_map(|s| s.sms.as_deref())
                        .unwrap_or(&self.sms),
                    &values,
                ),
            },
            Channel::Email => {
                let (subject, text) = sets
                    .iter()
                    .find_map(|s| Some((s.email_subject.as_deref()?, s.email_text.as_deref()?)))
                    .unwrap_or((&self.email_subject, &self.email_text));
                Message {
                    subject: Some(fill(subject, &values)),
                    text: fill(text, &values),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OrgDelivery;

    fn set(sms: &str) -> TemplateSet {
        TemplateSet {
            sms: Some(sms.into()),
            ..Default::default()
        }
    }

    fn settings() -> DeliverySettings {
        let mut s = DeliverySettings::default();
        s.templates
            .insert("hi".into(), set("{code} आपका {app} OTP है।"));
        s.templates.insert(
            "pt-BR".into(),
            TemplateSet {
                sms: Some("{code} é o seu código".into()),
                email_subject: Some("Seu código {app}".into()),
                email_text: Some("Código: {code}, válido por {minutes} minutos.".into()),
            },
        );
        let mut acme = OrgDelivery {
            app_name: Some("Acme".into()),
            default_language: Some("hi".into()),
            email_from: Some("{app} <otp@acme.example>".into()),
            sms_sender: Some("ACME".into()),
            ..Default::default()
        };
        acme.templates
            .insert("en".into(), set("Acme code {code}, ref {reference}"));
        s.orgs.insert("7".into(), acme);
        s
    }

    #[test]
    fn plural_choices_follow_the_number() {
        let text = "in {minutes} {minutes|minute|minutes}, {n|minuto|minutos}";
        assert_eq!(
            fill(text, &[("minutes", "1"), ("n", "2")]),
            "in 1 minute, minutos"
        );
        assert_eq!(
            fill(text, &[("minutes", "0"), ("n", "1")]),
            "in 0 minutes, minuto"
        );
        // Not a number, or not a known name: left as written.
        assert_eq!(fill("{a|x|y}", &[("a", "z")]), "{a|x|y}");
        assert_eq!(fill("{b|x|y}", &[("a", "1")]), "{b|x|y}");
        assert_eq!(placeholders(text), ["minutes", "minutes", "n"]);
        assert!(
            check_template(
                "{code} {minutes|minute|minutes}",
                MESSAGE_PLACEHOLDERS,
                true
            )
            .is_ok()
        );
        assert!(check_template("{code} {minutes|minute}", MESSAGE_PLACEHOLDERS, true).is_err());
        assert!(check_template("{code} {minutes|a|b|c}", MESSAGE_PLACEHOLDERS, true).is_err());
        assert!(check_template("{code} {mins|a|b}", MESSAGE_PLACEHOLDERS, true).is_err());
    }

    #[test]
    fn one_minute_is_singular_in_the_base_templates() {
        let t = Templates::from_settings(&DeliverySettings::default());
        let sms = t.render(1, None, Channel::Sms, "123456", 1, "ABC234");
        assert_eq!(
            sms.text,
            "123456 is your otpgate OTP. It expires in 1 minute. Ref ABC234."
        );
        let mail = t.render(1, None, Channel::Email, "123456", 1, "ABC234");
        assert!(
            mail.text.contains("It expires in 1 minute. "),
            "{}",
            mail.text
        );
        let own = t.fill("{code}: {minutes} {minutes|minute|minutes}", "1", 1, "R");
        assert_eq!(own, "1: 1 minute");
    }

    #[test]
    fn the_base_templates_fill_every_placeholder() {
        let t = Templates::from_settings(&DeliverySettings::default());
        let sms = t.render(1, None, Channel::Sms, "123456", 10, "ABC234");
        assert_eq!(
            sms.text,
            "123456 is your otpgate OTP. It expires in 10 minutes. Ref ABC234."
        );
        assert_eq!(sms.subject, None);
        let mail = t.render(1, None, Channel::Email, "123456", 10, "ABC234");
        assert_eq!(
            mail.subject.as_deref(),
            Some("Your otpgate one-time password")
        );
        assert!(
            mail.text.contains("123456")
                && mail.text.contains("10 minutes")
                && mail.text.contains("ABC234")
        );
        assert_eq!(Message::from_bytes(&mail.to_bytes()), Some(mail));
    }

    #[test]
    fn the_request_language_wins_then_the_org_default_then_the_global_default() {
        let t = Templates::from_settings(&settings());
        let sms = |org, lang| t.render(org, lang, Channel::Sms, "4711", 5, "R").text;
        // Requested, with the region falling back to the language.
        assert_eq!(sms(1, Some("hi-IN")), "4711 आपका otpgate OTP है।");
        assert_eq!(sms(1, Some("pt_BR")), "4711 é o seu código");
        // Unknown or malformed: the global default (the base templates).
        assert!(sms(1, Some("fr")).starts_with("4711 is your otpgate OTP"));
        assert!(sms(1, Some("{code}")).starts_with("4711 is your otpgate OTP"));
        // Org 7 speaks Hindi unless asked otherwise; its own English template wins
        // over the global one.
        assert_eq!(sms(7, None), "4711 आपका Acme OTP है।");
        assert_eq!(sms(7, Some("en")), "Acme code 4711, ref R");
        assert_eq!(sms(7, Some("fr")), "4711 आपका Acme OTP है।");
    }

    #[test]
    fn e_mail_takes_subject_and_text_together_and_the_org_its_from() {
        let t = Templates::from_settings(&settings());
        let m = t.render(7, Some("pt-BR"), Channel::Email, "4711", 5, "R");
        assert_eq!(m.subject.as_deref(), Some("Seu código Acme"));
        assert_eq!(m.text, "Código: 4711, válido por 5 minutos.");
        assert_eq!(t.email_from(7).as_deref(), Some("Acme <otp@acme.example>"));
        assert_eq!(t.email_from(1), None);
        // Hindi has no e-mail template: the line goes on to the base templates.
        let m = t.render(7, None, Channel::Email, "4711", 5, "R");
        assert_eq!(m.subject.as_deref(), Some("Your Acme one-time password"));
        assert_eq!(t.sms_sender(7).as_deref(), Some("ACME"));
        assert_eq!(t.sms_sender(1), None);
    }

    #[test]
    fn filling_is_one_pass_and_leaves_other_braces() {
        assert_eq!(
            fill("{a}{b} {c} {", &[("a", "{b}"), ("b", "2")]),
            "{b}2 {c} {"
        );
        assert_eq!(placeholders("x {code} {} {a b} {app}"), vec!["code", "app"]);
        assert!(check_template("{code} {cod}", MESSAGE_PLACEHOLDERS, true).is_err());
        assert!(check_template("no code", MESSAGE_PLACEHOLDERS, true).is_err());
        assert!(check_template("{code} {app}", MESSAGE_PLACEHOLDERS, true).is_ok());
        assert!(is_language_tag("pt-BR") && is_language_tag("zh_Hant") && is_language_tag("hi"));
        assert!(!is_language_tag("e") && !is_language_tag("en-") && !is_language_tag("1a"));
    }
}
