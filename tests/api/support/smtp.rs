//! A fake SMTP server on loopback that keeps what it receives: in clear, offering
//! STARTTLS, or TLS from the first byte, with the test certificate for localhost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use otpgate::config::{ProviderSettings, SmtpSettings};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::{eventually, fixture, root};

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Whether the session was encrypted when the message came.
    pub tls: bool,
    pub auth: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// How the SMTP server speaks: in clear, offering STARTTLS, or TLS from the first
/// byte (with the test certificate for localhost).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Plain,
    StartTls,
    Tls,
}

pub fn tls_acceptor() -> tokio_native_tls::TlsAcceptor {
    let cert = fixture("tls/localhost.pem");
    let key = fixture("tls/localhost.key");
    let identity =
        tokio_native_tls::native_tls::Identity::from_pkcs8(cert.as_bytes(), key.as_bytes())
            .unwrap();
    tokio_native_tls::native_tls::TlsAcceptor::new(identity)
        .unwrap()
        .into()
}

/// A minimal SMTP server: EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP,
/// QUIT.
pub struct MailServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl MailServer {
    pub async fn start() -> MailServer {
        Self::start_with(Security::Plain).await
    }

    pub async fn start_with(security: Security) -> MailServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        let acceptor = tls_acceptor();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (kept, acceptor) = (kept.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let _ = match security {
                        Security::Tls => match acceptor.accept(stream).await {
                            Ok(tls) => smtp_session(tls, false, true, true, kept).await.map(drop),
                            Err(_) => Ok(()),
                        },
                        Security::Plain | Security::StartTls => {
                            let offer = security == Security::StartTls;
                            match smtp_session(stream, offer, false, true, kept.clone()).await {
                                Ok(Some(raw)) => match acceptor.accept(raw).await {
                                    Ok(tls) => {
                                        smtp_session(tls, false, true, false, kept).await.map(drop)
                                    }
                                    Err(_) => Ok(()),
                                },
                                other => other.map(drop),
                            }
                        }
                    };
                });
            }
        });
        MailServer { port, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits until the server has `n` messages, and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        eventually(Duration::from_secs(10), || async {
            let mails = self.mails();
            if mails.len() >= n {
                Ok(mails)
            } else {
                Err(format!("{} mails, not {n}", mails.len()))
            }
        })
        .await
    }
}

/// One SMTP session; returns the connection when the client asked for STARTTLS, to
/// go on encrypted (without a new greeting: the client speaks first then).
async fn smtp_session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    offer_starttls: bool,
    tls: bool,
    greet: bool,
    kept: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<Option<S>> {
    let mut conn = BufReader::new(stream);
    if greet {
        conn.get_mut().write_all(b"220 mail.test ESMTP\r\n").await?;
    }
    let mut mail = Mail {
        tls,
        auth: None,
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let cmd = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let starttls = if offer_starttls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            format!("250-mail.test\r\n{starttls}250-AUTH PLAIN\r\n250 8BITMIME\r\n")
        } else if upper == "STARTTLS" && offer_starttls {
            conn.get_mut()
                .write_all(b"220 2.0.0 ready to start TLS\r\n")
                .await?;
            return Ok(Some(conn.into_inner()));
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 ok\r\n".into()
        } else if upper.starts_with("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(cmd[11..].trim())
                .unwrap_or_default();
            mail.auth = Some(String::from_utf8_lossy(&decoded).replace('\0', "|"));
            "235 2.7.0 authenticated\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = cmd[10..].trim().to_string();
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(cmd[8..].trim().to_string());
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            conn.get_mut().write_all(b"354 go ahead\r\n").await?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if conn.read_line(&mut line).await? == 0 {
                    return Ok(None);
                }
                let l = line.trim_end_matches(['\r', '\n']);
                if l == "." {
                    break;
                }
                data.push(l.strip_prefix('.').unwrap_or(l).to_string());
            }
            mail.data = data.join("\r\n");
            let n = {
                let mut all = kept.lock().unwrap();
                all.push(mail.clone());
                all.len()
            };
            format!("250 2.0.0 ok: queued as Q{n}\r\n")
        } else if upper == "RSET" {
            "250 ok\r\n".into()
        } else if upper == "QUIT" {
            conn.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(None);
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        conn.get_mut().write_all(reply.as_bytes()).await?;
    }
}

/// A provider that sends to the server on `port`, in clear, with credentials.
pub fn provider(name: &str, port: u16) -> ProviderSettings {
    ProviderSettings::Smtp(SmtpSettings {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: Some(port),
        security: "none".into(),
        username: Some("otp-user".into()),
        password: Some("otp-pass".into()),
        from: "{app} <no-reply@otpgate.test>".into(),
        ca_file: None,
        hello_name: None,
        timeout_seconds: 5,
    })
}

/// An SMTP provider on localhost that speaks `security`, trusting the test CA when
/// `trusted`.
pub fn secure_provider(name: &str, port: u16, security: &str, trusted: bool) -> ProviderSettings {
    let ProviderSettings::Smtp(mut m) = provider(name, port) else {
        unreachable!()
    };
    m.host = "localhost".into();
    m.security = security.into();
    m.ca_file = trusted.then(|| root().join("fixtures/tls/ca.pem"));
    ProviderSettings::Smtp(m)
}
