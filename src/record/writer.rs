//! The writer task: takes exchanges off the queue, chains them (chain.rs), renders
//! the scenarios that are complete (render/) and writes each to a file of its own,
//! atomically, readable by its owner only. At shutdown it takes what is left in the
//! queue and writes every open scenario.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Stats;
use super::chain::Book;
use super::exchange::{Exchange, file_part};
use super::render::{self, Rendered};
use crate::tools::replay::SUFFIX;

pub(super) struct Files {
    pub dir: PathBuf,
    /// Configured names to redact, normalized.
    pub extra: BTreeSet<String>,
    pub seq: AtomicU64,
    pub stats: Arc<Stats>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) async fn run(
    mut rx: mpsc::Receiver<Exchange>,
    mut stop: watch::Receiver<bool>,
    files: Arc<Files>,
    pending_seconds: u64,
) {
    let mut book = Book::new(pending_seconds);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let done = tokio::select! {
            x = rx.recv() => match x {
                Some(x) => book.add(x, now_ms()),
                None => break,
            },
            _ = tick.tick() => book.expire(now_ms()),
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
                Vec::new()
            }
        };
        write_all(&files, done).await;
    }
    rx.close();
    let mut done = Vec::new();
    while let Ok(x) = rx.try_recv() {
        done.extend(book.add(x, now_ms()));
    }
    done.extend(book.drain());
    write_all(&files, done).await;
}

/// Renders and writes scenarios off the async threads.
async fn write_all(files: &Arc<Files>, chains: Vec<Vec<Exchange>>) {
    if chains.is_empty() {
        return;
    }
    let files = Arc::clone(files);
    let task = tokio::task::spawn_blocking(move || {
        for chain in chains {
            files.write(&chain);
        }
    });
    if task.await.is_err() {
        tracing::warn!("recording: writing scenarios failed");
    }
}

impl Files {
    fn write(&self, chain: &[Exchange]) {
        let Some(r) = render::render(chain, &self.extra) else {
            return;
        };
        // Only what `otpgate replay` reads is written.
        if let Err(e) = render::parses(&r.text) {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "recording: a scenario did not render as one; not written");
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        match write_file(&self.dir, &file_name(&r, seq), &r.text) {
            Ok(path) => {
                self.stats.written.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(file = %path.display(), steps = chain.len(), "recording: scenario written");
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(dir = %self.dir.display(), error = %e, "recording: cannot write a scenario");
            }
        }
    }
}

/// `20261202T151200.123Z-summit-ADM_GenerateOTP-000123`: sorts by the time of the
/// scenario's first request.
pub(super) fn file_name(r: &Rendered, seq: u64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(r.at_ms)
        .map(|t| t.format("%Y%m%dT%H%M%S%.3fZ").to_string())
        .unwrap_or_else(|| "00000000T000000.000Z".into());
    format!(
        "{time}-{}-{}-{seq:06}",
        r.dialect.name(),
        file_part(&r.operation)
    )
}

/// Writes `text` to `dir/stem.replay.toml` through a temporary file and a rename that
/// never replaces a file already there (`-2`, `-3`… are tried then).
fn write_file(dir: &Path, stem: &str, text: &str) -> std::io::Result<PathBuf> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".recording-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.flush()?;
    for n in 1..100 {
        let name = if n == 1 {
            format!("{stem}{SUFFIX}")
        } else {
            format!("{stem}-{n}{SUFFIX}")
        };
        let path = dir.join(name);
        match tmp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(e.error),
        }
    }
    Err(std::io::Error::other("too many files of the same name"))
}

/// Creates the directory (0700 on Unix) when missing, and checks a file can be
/// written in it.
pub(super) fn prepare(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)?;
    }
    tempfile::Builder::new()
        .prefix(".recording-check-")
        .tempfile_in(dir)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::exchange::Dialect;

    #[test]
    fn files_are_named_by_time_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let r = Rendered {
            at_ms: 1_796_224_320_042,
            dialect: Dialect::Capillary,
            operation: "web/otp/generate".into(),
            text: String::new(),
        };
        let stem = file_name(&r, 123);
        assert_eq!(
            stem,
            "20261202T151200.042Z-capillary-web-otp-generate-000123"
        );
        let a = write_file(dir.path(), &stem, "a").unwrap();
        let b = write_file(dir.path(), &stem, "b").unwrap();
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-000123-2.replay.toml"));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "a");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let sub = dir.path().join("new/rec");
            prepare(&sub).unwrap();
            let mode = std::fs::metadata(&sub).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
