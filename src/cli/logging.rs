//! The log: one line per event on standard error, plain or JSON, filtered by
//! `RUST_LOG` or `log.level`.
//!
//! actix-http logs every connection that ends in error at ERROR (`stream error: request
//! parse error: invalid Header provided`), whoever's fault it was. A client's malformed
//! request, a client gone mid-request or a head too large is not a server error, and
//! fuzzing alone would fill the log with them: such a record is counted and said again
//! at debug, under the target `otpgate::http`. Every other ERROR stays an ERROR.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Settings;

/// Where actix-http's HTTP/1 connections log.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

pub fn init(settings: &Settings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log.format == "json" {
        builder.json().finish().with(ClientFaults::default()).init();
    } else {
        builder.finish().with(ClientFaults::default()).init();
    }
}

/// Turns actix-http's ERROR for a client's fault into a DEBUG line, and counts them.
#[derive(Default)]
pub struct ClientFaults {
    seen: AtomicU64,
}

impl<S: Subscriber> Layer<S> for ClientFaults {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let Some(what) = client_fault(event) else {
            return true;
        };
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(target: "otpgate::http", malformed_requests = n, "a client's request was refused: {what}");
        false
    }
}

/// What went wrong, when `event` is actix-http's ERROR for a connection the client
/// broke.
fn client_fault(event: &Event<'_>) -> Option<String> {
    let meta = event.metadata();
    if *meta.level() != Level::ERROR || meta.target() != DISPATCHER {
        return None;
    }
    let mut message = Message::default();
    event.record(&mut message);
    let what = message.0.strip_prefix("stream error: ")?;
    is_client_fault(what).then(|| what.to_string())
}

/// actix-http's texts (`DispatchError`) for a connection the client broke: a request
/// it could not parse (bad method, URI, version or header, a head too large), the
/// client's socket failing, or the client too slow.
fn is_client_fault(what: &str) -> bool {
    what.starts_with("request parse error: ")
        || what.starts_with("I/O error: ")
        || what == "request did not complete within the specified timeout"
        || what == "connection shutdown timeout"
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_clients_malformed_request_is_no_error_and_server_errors_still_are() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("warn"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish()
            .with(ClientFaults::default());
        tracing::subscriber::with_default(subscriber, || {
            for what in [
                "request parse error: invalid Header provided",
                "request parse error: message head is too large",
                "I/O error: Connection reset by peer (os error 104)",
            ] {
                tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", what);
            }
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "internal error");
            tracing::error!(target: "actix_http::h1::dispatcher", "Response payload stream error: {}", "boom");
            tracing::error!(target: "otpgate::delivery", "outbox dispatch failed");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 3, "{text}");
        assert!(!text.contains("invalid Header"), "{text}");
        assert!(!text.contains("too large"), "{text}");
        assert!(!text.contains("reset by peer"), "{text}");
        assert!(errors[0].contains("stream error: internal error"), "{text}");
        assert!(
            errors[1].contains("Response payload stream error: boom"),
            "{text}"
        );
        assert!(errors[2].contains("outbox dispatch failed"), "{text}");
    }
}
