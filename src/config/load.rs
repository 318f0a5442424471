//! Reading the settings: defaults, then the TOML file, then the environment; and what
//! is derived from them with the database layer's help.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::Settings;

impl Settings {
    /// The pool's size: `pool_size`, or by backend when it is 0. SQLite has one
    /// writer: measured with `otpgate bench`, 2 connections gave more cycles per second
    /// and less CPU per cycle than 4 or 8 (writers beyond the first wait in SQLite's
    /// sleeping busy handler, and each connection keeps a page cache of its own that
    /// every commit elsewhere invalidates), and 1 the same rate as 2 with a third of
    /// the worst latency: requests then queue for the connection in the pool, woken
    /// at once, instead of polling the lock. PostgreSQL gains from a few more.
    pub fn pool_connections(&self) -> u32 {
        match (
            self.pool_size,
            crate::db::DatabaseUrl::parse(&self.database_url),
        ) {
            (0, Ok(crate::db::DatabaseUrl::Sqlite(_))) => 1,
            (0, _) => 8,
            (n, _) => n,
        }
    }

    /// Defaults, then `file` (when given), then the environment; then validated.
    pub fn load(file: Option<&Path>) -> Result<Settings, String> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!(
                    "configuration file {} does not exist",
                    path.display()
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        // OTPGATE_CONFIG names the file; OTPGATE_TEST_* belong to the test suite.
        let env = Env::prefixed("OTPGATE_")
            .filter(|k| {
                !k.as_str().eq_ignore_ascii_case("config")
                    && !k.as_str().to_ascii_lowercase().starts_with("test_")
            })
            .split("__");
        figment = figment.merge(env);
        let settings: Settings = figment
            .extract()
            .map_err(|e| format!("configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }
}

/// Loads `toml` as a configuration file, the way `--config` does.
#[cfg(test)]
pub(super) fn load_text(toml: &str) -> Result<Settings, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("otpgate.toml");
    std::fs::write(&path, toml).map_err(|e| e.to_string())?;
    Settings::load(Some(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderSettings;

    #[test]
    fn the_pool_is_sized_by_backend_unless_set() {
        let mut s = Settings::default();
        assert_eq!(s.pool_connections(), 1, "SQLite by default");
        s.database_url = "postgres://u@localhost/db".into();
        assert_eq!(s.pool_connections(), 8);
        s.pool_size = 3;
        assert_eq!(s.pool_connections(), 3);
        s.database_url = "sqlite://x.db".into();
        assert_eq!(s.pool_connections(), 3);
    }

    #[test]
    fn named_providers_are_read_in_order_with_their_kinds() {
        let s = load_text(
            r#"
            [delivery]
            email = ["mail", "file"]
            sms = ["gateway", "log"]

            [[delivery.providers]]
            name = "mail"
            kind = "smtp"
            host = "smtp.example.com"
            from = "{app} <otp@example.com>"
            username = "otp"
            password = "secret"

            [[delivery.providers]]
            name = "gateway"
            kind = "http_sms"
            url = "https://sms.example.com/send"
            headers = { "X-Api-Key" = "k", "Idempotency-Key" = "{id}" }
            body = { to = "{to}", text = "{text}", from = "{sender}", flags = [1, "{to_digits}"] }
            success_field = "/ok"

            [delivery.orgs."7"]
            app_name = "Acme"
            email_from = "{app} <otp@acme.example>"
            [delivery.orgs."7".templates.hi]
            sms = "{code} आपका OTP है"
            "#,
        )
        .unwrap();
        let kinds: Vec<(&str, &str)> = s
            .delivery
            .providers
            .iter()
            .map(|p| (p.name(), p.kind()))
            .collect();
        assert_eq!(kinds, vec![("mail", "smtp"), ("gateway", "http_sms")]);
        let ProviderSettings::Smtp(m) = &s.delivery.providers[0] else {
            panic!("smtp expected")
        };
        assert_eq!(
            (m.security.as_str(), m.port, m.timeout_seconds),
            ("starttls", None, 10)
        );
        let ProviderSettings::HttpSms(h) = &s.delivery.providers[1] else {
            panic!("http_sms expected")
        };
        assert_eq!((h.method.as_str(), h.encoding.as_str()), ("POST", "json"));
        assert_eq!(h.body.as_ref().unwrap()["flags"][1], "{to_digits}");
        assert!(s.delivery.uses_file());
    }

    #[test]
    fn unknown_provider_keys_and_kinds_are_refused() {
        let e = load_text(
            "[[delivery.providers]]\nname = \"x\"\nkind = \"smtp\"\nhost = \"h\"\nfrom = \"a@b.c\"\nhots = \"typo\"\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown field") && e.contains("hots"), "{e}");
        let e = load_text("[[delivery.providers]]\nname = \"x\"\nkind = \"pigeon\"\n").unwrap_err();
        assert!(e.contains("pigeon"), "{e}");
    }
}
