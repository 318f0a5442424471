//! Recorded exchanges (`fixtures/scenarios/**/*.replay.toml`, described in
//! fixtures/README.md) replayed against a running gateway over HTTP: by the test
//! suite against otpgate in-process, and by `otpgate replay` against any gateway.
//!
//! A scenario is a list of steps; each sends one request and compares the answer's
//! status, the headers it lists, and its body byte for byte but for the holes
//! (`{{shape}}`) its template marks as volatile. Values captured from an answer
//! (`{{name:shape}}`) or from the delivery sink feed later steps as `${name}`.

pub mod diff;
mod scenario;
pub mod template;

pub use scenario::*;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use regex::Regex;

use template::{Template, Vars};
#[derive(Debug, Clone)]
/// What a step received.
pub struct Actual {
    /// The request body as sent, `${…}` substituted.
    pub request_body: String,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// One difference between what a step expected and what it received.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub step: String,
    /// What differs, with a diff for bodies.
    pub detail: String,
}

/// A scenario's result.
#[derive(Debug, Default)]
pub struct Outcome {
    pub mismatches: Vec<Mismatch>,
    /// The answers received, one per step that ran (for recording).
    pub actual: Vec<Actual>,
    /// Steps that ran.
    pub steps_run: usize,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// The mismatches, as the report prints them.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for m in &self.mismatches {
            out.push_str(&format!("  step {}: {}\n", m.step, m.detail));
        }
        out
    }
}

/// Sends scenarios to one gateway.
pub struct Replayer {
    client: reqwest::Client,
    target: String,
    sink: Option<PathBuf>,
    /// How long to wait for a message in the sink.
    pub sink_timeout: Duration,
}

impl Replayer {
    /// A replayer that sends to `target` (scheme, host, port: the scenarios give the
    /// paths) and reads codes from the file sink `sink`.
    pub fn new(target: &str, sink: Option<PathBuf>) -> Result<Replayer, String> {
        let target = target.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&target).map_err(|e| format!("--target {target}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("--target {target}: not an http(s) URL"));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Replayer {
            client,
            target,
            sink,
            sink_timeout: Duration::from_secs(10),
        })
    }

    /// Runs every step in order. An answer that differs still yields the values its
    /// template captures, from the same fields, so later steps run; a step that cannot
    /// be sent, or whose values cannot be had, ends the scenario.
    pub async fn run(&self, scenario: &Scenario) -> Outcome {
        let mut out = Outcome::default();
        let mut vars = Vars::new();
        // Six random digits per run, for values that must differ between runs against
        // a long-lived gateway (a phone number under a send limit).
        vars.insert(
            UNIQUE.into(),
            format!("{:06}", rand::random_range(0..1_000_000u32)),
        );
        let volatile = scenario.volatile();
        for step in &scenario.steps {
            let fail = |detail: String| Mismatch {
                step: step.name.clone(),
                detail,
            };
            out.steps_run += 1;
            let sink_start = self.sink_len();
            let actual = match self.send(scenario, step, &vars).await {
                Ok(a) => a,
                Err(e) => {
                    out.mismatches.push(fail(e));
                    return out;
                }
            };
            let mut stop = false;
            if actual.status != step.response.status {
                out.mismatches.push(fail(format!(
                    "status: expected {}, got {}",
                    step.response.status, actual.status
                )));
            }
            for (name, want) in &step.response.headers {
                let got = actual.headers.get(&name.to_ascii_lowercase());
                let ok = match (substitute_parse(want, &vars), got) {
                    (Ok(t), Some(g)) => t.matches(g).map(|v| vars.extend(v)).is_some(),
                    (Err(e), _) => {
                        out.mismatches.push(fail(format!("header {name}: {e}")));
                        return out;
                    }
                    (Ok(_), None) => false,
                };
                if !ok {
                    out.mismatches.push(fail(format!(
                        "header {name}: expected {want:?}, got {:?}",
                        got.map_or("(absent)", String::as_str)
                    )));
                }
            }
            match scenario.expected_body(step) {
                Err(e) => {
                    out.mismatches.push(fail(e));
                    return out;
                }
                Ok(None) => {}
                Ok(Some(want)) => match substitute_parse(&want, &vars) {
                    Err(e) => {
                        out.mismatches.push(fail(format!("body: {e}")));
                        return out;
                    }
                    Ok(t) => match t.matches(&actual.body) {
                        Some(captured) => vars.extend(captured),
                        None => {
                            let resolved =
                                template::substitute(&want, &vars).unwrap_or(want.clone());
                            out.mismatches.push(fail(format!(
                                "body differs:\n{}",
                                indent(&diff::render(&resolved, &actual.body))
                            )));
                            let recorded = template::record(&actual.body, &volatile, Some(&t));
                            // The chain goes on with the values the answer holds
                            // where the expected one had them, if it holds them all.
                            let captured = Template::parse(&recorded)
                                .ok()
                                .and_then(|r| r.matches(&actual.body))
                                .unwrap_or_default();
                            if t.names().iter().all(|n| captured.contains_key(*n)) {
                                vars.extend(captured);
                            } else {
                                stop = true;
                            }
                        }
                    },
                },
            }
            for c in &step.sink {
                match self.code_from_sink(c, &vars, sink_start).await {
                    Ok(v) => {
                        vars.insert(c.capture.clone(), v);
                    }
                    Err(e) => {
                        out.mismatches.push(fail(format!("sink: {e}")));
                        stop = true;
                    }
                }
            }
            out.actual.push(actual);
            if stop {
                break;
            }
        }
        out
    }

    async fn send(&self, scenario: &Scenario, step: &Step, vars: &Vars) -> Result<Actual, String> {
        let path = template::substitute(&step.request.path, vars)?;
        if !path.starts_with('/') {
            return Err(format!("request path {path:?} does not start with /"));
        }
        let method = reqwest::Method::from_bytes(step.request.method.trim().as_bytes())
            .map_err(|_| format!("bad method {:?}", step.request.method))?;
        let body = template::substitute(&scenario.request_body(step)?, vars)?;
        let url = reqwest::Url::parse(&format!("{}{}", self.target, path))
            .map_err(|e| format!("request path {path:?}: {e}"))?;
        // Only ever the target: a path cannot name another host.
        if !self.is_target(&url) {
            return Err(format!(
                "request path {path:?} leaves the target {}",
                self.target
            ));
        }
        let mut req = self.client.request(method, url);
        for (k, v) in &step.request.headers {
            req = req.header(k.as_str(), template::substitute(v, vars)?);
        }
        let resp = req
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("request to {}{path} failed: {}", self.target, chain(&e)))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        Ok(Actual {
            request_body: body,
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    fn is_target(&self, url: &reqwest::Url) -> bool {
        reqwest::Url::parse(&self.target).is_ok_and(|t| t.origin() == url.origin())
    }

    fn sink_len(&self) -> u64 {
        self.sink
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    /// Waits for a message written to the sink since `start` that the capture selects.
    async fn code_from_sink(
        &self,
        c: &SinkCapture,
        vars: &Vars,
        start: u64,
    ) -> Result<String, String> {
        let Some(path) = &self.sink else {
            return Err(format!(
                "capturing {} needs the delivery sink: give --sink FILE (the gateway's \
                 delivery.file_path)",
                c.capture
            ));
        };
        let transaction = c
            .transaction
            .as_deref()
            .map(|t| template::substitute(t, vars))
            .transpose()?;
        let destination = c
            .destination
            .as_deref()
            .map(|t| template::substitute(t, vars))
            .transpose()?;
        let pattern = Regex::new(
            c.pattern
                .as_deref()
                .unwrap_or(r"(?:^|\D)(\d{4,10})(?:\D|$)"),
        )
        .map_err(|e| format!("pattern: {e}"))?;
        let deadline = Instant::now() + self.sink_timeout;
        loop {
            let bytes = tokio::fs::read(path).await.unwrap_or_default();
            let new = bytes.get(start as usize..).unwrap_or(&[]);
            for line in String::from_utf8_lossy(new).lines() {
                let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let field = |k: &str| m[k].as_str().unwrap_or("").to_string();
                if c.channel.as_ref().is_some_and(|ch| *ch != field("channel"))
                    || transaction
                        .as_ref()
                        .is_some_and(|t| *t != field("transaction_id"))
                    || destination
                        .as_ref()
                        .is_some_and(|d| *d != field("destination"))
                {
                    continue;
                }
                let text = field("text");
                return pattern
                    .captures(&text)
                    .and_then(|cap| cap.get(1).or_else(|| cap.get(0)))
                    .map(|m| m.as_str().to_string())
                    .ok_or_else(|| {
                        format!(
                            "the message for {} has no text matching {}",
                            c.capture,
                            pattern.as_str()
                        )
                    });
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no message for {} arrived in {} within {} s (channel {:?}, transaction {:?})",
                    c.capture,
                    path.display(),
                    self.sink_timeout.as_secs(),
                    c.channel,
                    transaction
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// An error with its causes: reqwest's own text leaves out why a request failed.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn substitute_parse(text: &str, vars: &Vars) -> Result<Template, String> {
    Template::parse(&template::substitute(text, vars)?)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
}

impl Replayer {
    /// Writes the answers received as the scenario's expected ones: status, the
    /// headers the scenario lists (Content-Type when it lists none) and the body as a
    /// template whose volatile fields are holes, and where the target's own host and
    /// port appear in a URL, `{{host}}`. Comments and the rest of the file stay.
    pub fn write_recorded(&self, scenario: &Scenario, outcome: &Outcome) -> Result<(), String> {
        let host = reqwest::Url::parse(&self.target).ok().and_then(|u| {
            Some(format!(
                "//{}:{}/",
                u.host_str()?,
                u.port_or_known_default()?
            ))
        });
        write_recorded(scenario, outcome, host.as_deref())
    }
}

fn write_recorded(
    scenario: &Scenario,
    outcome: &Outcome,
    host: Option<&str>,
) -> Result<(), String> {
    let text = read(&scenario.path)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", scenario.path.display()))?;
    let volatile = scenario.volatile();
    let steps = doc["steps"]
        .as_array_of_tables_mut()
        .ok_or_else(|| format!("{}: no [[steps]]", scenario.path.display()))?;
    for ((step, table), actual) in scenario
        .steps
        .iter()
        .zip(steps.iter_mut())
        .zip(&outcome.actual)
    {
        let previous = scenario
            .expected_body(step)
            .ok()
            .flatten()
            .and_then(|b| Template::parse(&b).ok());
        let response = table
            .entry("response")
            .or_insert(toml_edit::table())
            .as_table_mut()
            .ok_or_else(|| format!("step {}: response is not a table", step.name))?;
        response["status"] = toml_edit::value(i64::from(actual.status));
        let mut names: Vec<String> = step.response.headers.keys().cloned().collect();
        if names.is_empty() {
            names.push("Content-Type".into());
        }
        let mut headers = toml_edit::InlineTable::new();
        for n in names {
            if let Some(v) = actual.headers.get(&n.to_ascii_lowercase()) {
                headers.insert(&n, v.as_str().into());
            }
        }
        response["headers"] = toml_edit::value(headers);
        response.remove("body_file");
        let mut body = template::record(&actual.body, &volatile, previous.as_ref());
        if let Some(h) = host {
            body = body.replace(h, "//{{host}}/");
        }
        response["body"] = toml_edit::value(body);
    }
    std::fs::write(&scenario.path, doc.to_string())
        .map_err(|e| format!("{}: cannot write: {e}", scenario.path.display()))
}

/// Replays `files` in order, printing a line per scenario and the mismatches, and
/// returns (passed, failed).
pub async fn replay_all(
    replayer: &Replayer,
    files: &[PathBuf],
    record: bool,
    out: &mut impl std::io::Write,
) -> Result<(usize, usize), String> {
    let (mut passed, mut failed) = (0, 0);
    for f in files {
        let scenario = Scenario::load(f)?;
        let outcome = replayer.run(&scenario).await;
        let n = scenario.steps.len();
        let line = if outcome.passed() {
            passed += 1;
            format!("ok    {} ({n} steps)", scenario.label())
        } else {
            failed += 1;
            format!(
                "FAIL  {} ({n} steps): {}\n{}{}",
                scenario.label(),
                scenario.title,
                outcome.report(),
                if outcome.steps_run < n {
                    format!("  stopped after step {} of {n}\n", outcome.steps_run)
                } else {
                    String::new()
                }
            )
        };
        writeln!(out, "{}", line.trim_end()).map_err(|e| e.to_string())?;
        if record && !outcome.passed() {
            if outcome.actual.len() == scenario.steps.len() {
                replayer.write_recorded(&scenario, &outcome)?;
                writeln!(out, "      recorded {}", scenario.path.display())
                    .map_err(|e| e.to_string())?;
            } else {
                writeln!(
                    out,
                    "      not recorded: only {} of {n} steps answered",
                    outcome.actual.len()
                )
                .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok((passed, failed))
}
