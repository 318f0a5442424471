//! The scenario files: their format (fixtures/README.md), reading and collecting them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name every scenario ends with.
pub const SUFFIX: &str = ".replay.toml";

/// The variable every scenario starts with: six random digits, new for each run.
pub const UNIQUE: &str = "unique";

/// Fields that differ on every run, made holes when an answer is recorded.
pub const VOLATILE: &[&str] = &[
    "TransactionID",
    "TokenID",
    "SessionId",
    "Id",
    "ReferenceCode",
    "OtpIdReference",
    "OtpCode",
    "PasswordChangeRequestId",
    "RemainingExpirationSeconds",
    "RemainingSeconds",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows, one line.
    pub title: String,
    /// Field names whose values become holes when answers are recorded, besides VOLATILE.
    #[serde(default)]
    pub volatile: Vec<String>,
    pub steps: Vec<Step>,
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub request: Request,
    pub response: Expected,
    /// Codes (or any text) taken from the messages this step caused.
    #[serde(default)]
    pub sink: Vec<SinkCapture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "post")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// A file holding the body, relative to the scenario's file (seed samples, kept verbatim).
    pub body_file: Option<PathBuf>,
    /// Literal replacements applied to the body, in order of their keys.
    #[serde(default)]
    pub replace: BTreeMap<String, String>,
    /// The schema the body follows, relative to schemas/ (checked by the test suite).
    pub schema: Option<String>,
    /// The body is deliberately malformed or breaks its schema (the suite checks it
    /// does not validate).
    #[serde(default)]
    pub invalid: bool,
}

fn post() -> String {
    "POST".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub status: u16,
    /// Only the headers listed are compared (names without case), as templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body as a template; absent: not compared.
    pub body: Option<String>,
    pub body_file: Option<PathBuf>,
    pub schema: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkCapture {
    /// The variable that receives the value.
    pub capture: String,
    /// Only messages on this channel (`sms`, `email`).
    pub channel: Option<String>,
    /// Only messages of this transaction id (a template of variables: `${txn}`).
    pub transaction: Option<String>,
    /// Only messages to this destination.
    pub destination: Option<String>,
    /// A regular expression with one group, applied to the message text; default: the
    /// first run of 4 to 10 digits.
    pub pattern: Option<String>,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let mut s: Scenario =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        s.path = path.to_path_buf();
        for step in &s.steps {
            if step.request.body.is_some() && step.request.body_file.is_some() {
                return Err(format!(
                    "{}: step {}: request has both body and body_file",
                    path.display(),
                    step.name
                ));
            }
            if step.response.body.is_some() && step.response.body_file.is_some() {
                return Err(format!(
                    "{}: step {}: response has both body and body_file",
                    path.display(),
                    step.name
                ));
            }
        }
        Ok(s)
    }

    fn resolve(&self, file: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(file)
    }

    /// The request body as written (before `${…}` substitution).
    pub fn request_body(&self, step: &Step) -> Result<String, String> {
        let mut body = match (&step.request.body, &step.request.body_file) {
            (Some(b), _) => b.clone(),
            (None, Some(f)) => read(&self.resolve(f))?,
            (None, None) => String::new(),
        };
        for (from, to) in &step.request.replace {
            if !body.contains(from.as_str()) {
                return Err(format!(
                    "step {}: replace: {from:?} is not in the body",
                    step.name
                ));
            }
            body = body.replace(from.as_str(), to);
        }
        Ok(body)
    }

    /// The expected body template, if the step compares one.
    pub fn expected_body(&self, step: &Step) -> Result<Option<String>, String> {
        match (&step.response.body, &step.response.body_file) {
            (Some(b), _) => Ok(Some(b.clone())),
            (None, Some(f)) => read(&self.resolve(f)).map(Some),
            (None, None) => Ok(None),
        }
    }

    pub(super) fn volatile(&self) -> Vec<String> {
        VOLATILE
            .iter()
            .map(|s| s.to_string())
            .chain(self.volatile.iter().cloned())
            .collect()
    }

    /// A short name: the path below a `scenarios` directory, or the file name.
    pub fn label(&self) -> String {
        let s = self.path.to_string_lossy().replace('\\', "/");
        match s.rfind("scenarios/") {
            Some(i) => s[i + "scenarios/".len()..].to_string(),
            None => s,
        }
    }
}

pub(super) fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// The scenario files among `paths`: files as given, directories searched for
/// `*.replay.toml`, sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
    for e in entries {
        let path = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.to_string_lossy().ends_with(SUFFIX) {
            out.push(path);
        }
    }
    Ok(())
}
