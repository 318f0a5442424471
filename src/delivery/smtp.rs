//! E-mail through an SMTP server (lettre): plain, STARTTLS or TLS from the first byte,
//! with optional authentication. One connection per message: codes are few, and a
//! fresh connection never trips over one the server closed.

use std::path::Path;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::templates::fill;
use super::{Outgoing, Receipt, Transport};
use crate::config::SmtpSettings;

/// The `From` of a provider or an organisation, with `{app}` filled in.
pub fn parse_from(from: &str, app: &str) -> Result<Mailbox, String> {
    fill(from, &[("app", app)]).parse::<Mailbox>().map_err(|e| {
        format!("'{from}' is not an address like \"{{app}} <no-reply@example.com>\" ({e})")
    })
}

/// The certificates of a PEM file (one or several).
pub fn read_ca_file(path: &Path) -> Result<Vec<Certificate>, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    const END: &str = "-----END CERTIFICATE-----";
    let certs: Vec<Certificate> = pem
        .split_inclusive(END)
        .filter(|block| block.contains("-----BEGIN CERTIFICATE-----"))
        .map(|block| {
            Certificate::from_pem(block.trim().as_bytes()).map_err(|e| {
                format!(
                    "{} holds a certificate that cannot be read: {e}",
                    path.display()
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

pub struct SmtpTransport {
    name: String,
    host: String,
    from: Mailbox,
    mailer: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpTransport {
    pub fn new(s: &SmtpSettings, app: &str) -> Result<SmtpTransport, String> {
        let tls = |host: &str| -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(host.to_string());
            if let Some(ca) = &s.ca_file {
                for c in read_ca_file(ca)? {
                    b = b.add_root_certificate(c);
                }
            }
            b.build_native()
                .map_err(|e| format!("TLS set-up failed: {e}"))
        };
        let (security, default_port) = match s.security.as_str() {
            "tls" => (Tls::Wrapper(tls(&s.host)?), 465),
            "starttls" => (Tls::Required(tls(&s.host)?), 587),
            _ => (Tls::None, 25),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port.unwrap_or(default_port))
            .tls(security)
            .timeout(Some(Duration::from_secs(s.timeout_seconds)));
        if let (Some(user), Some(password)) = (&s.username, &s.password) {
            b = b.credentials(Credentials::new(user.clone(), password.clone()));
        }
        if let Some(name) = &s.hello_name {
            b = b.hello_name(ClientId::Domain(name.clone()));
        }
        Ok(SmtpTransport {
            name: s.name.clone(),
            host: s.host.clone(),
            from: parse_from(&s.from, app)?,
            mailer: b.build(),
        })
    }
}

impl Transport for SmtpTransport {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Receipt, String>> {
        Box::pin(async move {
            let from = match m.from.as_deref() {
                // Already filled in by the templates.
                Some(f) => parse_from(f, "")?,
                None => self.from.clone(),
            };
            let to: Mailbox =
                m.to.trim()
                    .parse()
                    .map_err(|_| "the destination is not a valid e-mail address".to_string())?;
            let email = lettre::Message::builder()
                .from(from)
                .to(to)
                .subject(m.message.subject.clone().unwrap_or_default())
                .message_id(None)
                .header(ContentType::TEXT_PLAIN)
                .body(m.message.text.clone())
                .map_err(|e| format!("the message cannot be built: {e}"))?;
            let answer = self
                .mailer
                .send(email)
                .await
                .map_err(|e| format!("SMTP {}: {e}", self.host))?;
            Ok(Receipt {
                reference: answer
                    .message()
                    .next()
                    .map(|l| l.chars().take(200).collect()),
            })
        })
    }
}
