//! What every provider implements, and the two built-in ones: a file of JSON lines
//! (development and tests) and the log (which never sees the text). SMTP and HTTP
//! SMS are in `smtp.rs` and `http_sms.rs`.

use futures_util::future::BoxFuture;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

use super::Outgoing;

/// What a provider says when it took a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id of the message (an SMS id, the SMTP server's queue answer).
    pub reference: Option<String>,
}

pub trait Transport: Send + Sync {
    fn name(&self) -> &str;
    /// Hands the message over. The error text is kept in the outbox and logged: the
    /// dispatcher masks the destination and removes the message's text from it
    /// (`redact::scrub`), but a transport should not put them in in the first place.
    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Receipt, String>>;
}

/// Appends one JSON object per message: channel, destination, subject, text,
/// transaction id. The destination and text are in clear: the file stands for the
/// recipient's inbox, not for a log.
pub struct FileTransport {
    name: String,
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileTransport {
    pub fn new(name: impl Into<String>, path: PathBuf) -> Self {
        FileTransport {
            name: name.into(),
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

impl Transport for FileTransport {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Receipt, String>> {
        Box::pin(async move {
            let mut line = serde_json::to_vec(&serde_json::json!({
                "id": m.id,
                "channel": m.channel.as_str(),
                "destination": m.to,
                "subject": m.message.subject,
                "text": m.message.text,
                "from": m.from,
                "sender": m.sender,
                "transaction_id": m.transaction_id,
                "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }))
            .map_err(|_| "could not encode the message".to_string())?;
            line.push(b'\n');
            let _guard = self.lock.lock().await;
            // Readable by the gateway's user only: the file holds live codes.
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
                .await
                .map_err(|e| {
                    format!(
                        "file transport: cannot open {}: {}",
                        self.path.display(),
                        e.kind()
                    )
                })?;
            // One write of the whole line, so lines from several processes do not interleave.
            f.write_all(&line)
                .await
                .map_err(|e| format!("file transport: write failed: {}", e.kind()))?;
            f.flush()
                .await
                .map_err(|e| format!("file transport: write failed: {}", e.kind()))?;
            Ok(Receipt::default())
        })
    }
}

/// Records that a message would have been sent, without its text or full destination.
pub struct LogTransport {
    pub name: String,
}

impl Transport for LogTransport {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Receipt, String>> {
        Box::pin(async move {
            tracing::info!(
                message_id = %m.id,
                channel = m.channel.as_str(),
                to = %m.to_masked,
                transaction_id = m.transaction_id.as_deref().unwrap_or(""),
                provider = %self.name,
                chars = m.message.text.chars().count(),
                "message delivered to the log transport (text withheld)"
            );
            Ok(Receipt::default())
        })
    }
}
