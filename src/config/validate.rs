//! Checking the settings once, at start-up: every problem found is named, one a line.
//! Checks that need another layer's parser (database URLs, keys, the field cipher,
//! delivery templates and addresses) call into it from here, so the types stay free
//! of it.

mod delivery;
mod record;
mod upstream;

use super::{CHANNELS, PolicySettings, Settings};

impl Settings {
    /// Every problem found, one a line, or none.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "bind: '{}' is not an address like 127.0.0.1:8080",
                self.bind
            ));
        }
        if let Err(e) = crate::db::DatabaseUrl::parse(&self.database_url) {
            problems.push(format!("database_url: {e}"));
        }
        if self.max_body_bytes < 1024 {
            problems.push("max_body_bytes: must be at least 1024".into());
        }
        if !(2..=128).contains(&self.max_depth) {
            problems.push("max_depth: must be between 2 and 128".into());
        }
        if self.retention_days < 1 {
            problems.push("retention_days: must be at least 1".into());
        }
        let base = self.otp.clone();
        check_policy("otp", &base, &mut problems);
        for (org, o) in &self.orgs {
            if org.parse::<i64>().is_err() {
                problems.push(format!("orgs.{org}: the key must be a numeric OrgID"));
            }
            check_policy(&format!("orgs.{org}"), &o.apply(&base), &mut problems);
        }
        if self.session.lifetime_seconds < 60 {
            problems.push("session.lifetime_seconds: must be at least 60".into());
        }
        if self.session.idle_timeout_minutes < 1 {
            problems.push("session.idle_timeout_minutes: must be at least 1".into());
        }
        let on_postgres = matches!(
            crate::db::DatabaseUrl::parse(&self.database_url),
            Ok(crate::db::DatabaseUrl::Postgres(_))
        );
        if on_postgres && self.secrets.otp_key.is_none() {
            problems.push(
                "secrets.otp_key: required with PostgreSQL, where every process must hash and seal with the same key".into(),
            );
        }
        if let Some(k) = &self.secrets.otp_key
            && let Err(e) = crate::core::keys::parse_key(k, 32)
        {
            problems.push(format!("secrets.otp_key: {e}"));
        }
        if let Some(k) = &self.secrets.capillary_jwt_key
            && let Err(e) = crate::core::keys::parse_key(k, 32)
        {
            problems.push(format!("secrets.capillary_jwt_key: {e}"));
        }
        for (i, k) in self.secrets.previous_otp_keys.iter().enumerate() {
            if let Err(e) = crate::core::keys::parse_key(k, 32) {
                problems.push(format!("secrets.previous_otp_keys[{i}]: {e}"));
            }
        }
        if self.field_cipher.enabled
            && let Err(e) = crate::core::cipher::FieldCipher::from_settings(&self.field_cipher)
        {
            problems.push(format!("field_cipher: {e}"));
        }
        let ph = &self.password_hashing;
        if ph.memory_kib < 8 * 1024 || ph.iterations < 1 || ph.parallelism < 1 {
            problems.push(
                "password_hashing: memory_kib must be at least 8192, iterations and parallelism at least 1"
                    .into(),
            );
        }
        if self.login.max_failures < 1
            || self.login.lockout_seconds < 1
            || self.login.queue_timeout_ms < 1
            || self.login.global_failures < 1
            || self.login.max_backoff_seconds < 1
        {
            problems.push(
                "login: max_failures, lockout_seconds, global_failures, max_backoff_seconds and queue_timeout_ms must be positive".into(),
            );
        }
        if ph.max_concurrent == 0 {
            problems.push("password_hashing.max_concurrent: must be at least 1".into());
        }
        delivery::check(&self.delivery, &mut problems);
        upstream::check(&self.upstream, &mut problems);
        record::check(&self.record, &mut problems);
        if let Err(e) = self.security.trusted_networks() {
            problems.push(e);
        }
        let t = &self.security.throttle;
        if let Err(e) = t.exempt_networks() {
            problems.push(e);
        }
        for (action, b) in [
            ("generate", t.generate),
            ("verify", t.verify),
            ("login", t.login),
        ] {
            for (scope, rate) in [
                ("per_address", b.per_address),
                ("per_identifier", b.per_identifier),
            ] {
                if !rate.is_off() && rate.burst == 0 {
                    problems.push(format!(
                        "security.throttle.{action}.{scope}: burst must be at least 1 when per_minute is set (per_minute = 0 turns the bucket off)"
                    ));
                }
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format: '{}' is neither 'text' nor 'json'",
                self.log.format
            ));
        }
        problems.extend(self.metrics.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

fn check_policy(name: &str, p: &PolicySettings, problems: &mut Vec<String>) {
    if !(4..=10).contains(&p.length) {
        problems.push(format!(
            "{name}.length: {} is outside 4 to 10 digits",
            p.length
        ));
    }
    if p.expiry_seconds < 1 {
        problems.push(format!("{name}.expiry_seconds: must be at least 1"));
    }
    if p.max_attempts < 1 {
        problems.push(format!("{name}.max_attempts: must be at least 1"));
    }
    if p.max_sends < 1 || p.send_window_seconds < 1 {
        problems.push(format!(
            "{name}.max_sends and send_window_seconds: must be at least 1"
        ));
    }
    if p.resend_cooldown_seconds < 0 {
        problems.push(format!(
            "{name}.resend_cooldown_seconds: must not be negative"
        ));
    }
    if p.channels.is_empty() {
        problems.push(format!("{name}.channels: name at least one of email, sms"));
    }
    for c in &p.channels {
        if !CHANNELS.contains(&c.as_str()) {
            problems.push(format!(
                "{name}.channels: unknown channel '{c}' (known: email, sms)"
            ));
        }
    }
}
