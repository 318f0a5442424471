//! `otpgate user add|import|set`: provisioning the user directory.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::args::{AddUser, SetUser, UserCommand};
use crate::config::Settings;
use crate::core::users::{NewUser, Passwords, insert};
use crate::db::users;
use crate::dialects::summit::user_document::profile_fields;
use crate::state::AppState;

pub(super) fn run(command: UserCommand, settings: Settings) -> Result<(), String> {
    let app = AppState::new(settings)?;
    match command {
        UserCommand::Add(a) => add(&app, a),
        UserCommand::Import { file } => import(&app, &file),
        UserCommand::Set(s) => set(&app, s),
    }
}

fn set(app: &AppState, s: SetUser) -> Result<(), String> {
    let key = if s.upstream_api_key_stdin {
        Some(read_stdin_line("the upstream API key")?)
    } else {
        None
    };
    let mut conn = app.db.get().map_err(|e| e.to_string())?;
    crate::core::upstream_keys::set(&mut conn, &app.keys, &s.login, key.as_deref())
        .map_err(|e| e.to_string())?;
    match key {
        Some(_) => println!("set the upstream API key of {}", s.login),
        None => println!("removed the upstream API key of {}", s.login),
    }
    Ok(())
}

fn read_stdin_line(what: &str) -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn add(app: &AppState, a: AddUser) -> Result<(), String> {
    let password = if a.password_stdin {
        Some(read_stdin_line("the password")?)
    } else {
        a.password
    };
    let mut profile = serde_json::Map::new();
    for kv in &a.profile {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--profile '{kv}' is not KEY=VALUE"))?;
        profile.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let user = add_user(
        app,
        &NewUser {
            user_id: a.user_id,
            login_uid: a.login_uid,
            login_name: a.login_name,
            user_name: a.user_name,
            email: a.email,
            mobile: a.mobile,
            country_code: a.country_code,
            password,
            org_id: a.org_id,
            org_name: a.org_name,
            domain_id: a.domain_id,
            profile,
        },
    )?;
    println!(
        "added user {} (UserId {}, login {})",
        user.user_name, user.id, user.login_name
    );
    Ok(())
}

fn import(app: &AppState, file: &Path) -> Result<(), String> {
    let report = import_users(
        app,
        file,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    for (n, e) in &report.failed {
        eprintln!("record {n}: {e}");
    }
    println!(
        "{} users added, {} failed",
        report.added,
        report.failed.len()
    );
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} records were not imported", report.failed.len()))
    }
}

/// Validates, hashes and stores one user.
pub fn add_user(app: &AppState, new: &NewUser) -> Result<users::User, String> {
    crate::core::users::add(&app.db, &app.passwords, new, &profile_fields())
}

pub struct ImportReport {
    pub added: usize,
    /// (record number from 1, what was wrong)
    pub failed: Vec<(usize, String)>,
}

/// Imports a JSON array of users. A bad record is reported and skipped; the others
/// are stored. Passwords are hashed in parallel on every core.
pub fn import_users(app: &AppState, file: &Path, progress: bool) -> Result<ImportReport, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let records: Vec<serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a JSON array of users: {e}", file.display()))?;
    let bar = if progress {
        ProgressBar::new(records.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} users  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = std::sync::mpsc::channel();
    let chunks: Vec<Vec<(usize, serde_json::Value)>> = {
        let mut c: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, r) in records.into_iter().enumerate() {
            c[i % workers].push((i + 1, r));
        }
        c
    };
    std::thread::scope(|s| {
        for chunk in chunks {
            let tx = tx.clone();
            let passwords: &Passwords = &app.passwords;
            s.spawn(move || {
                for (n, record) in chunk {
                    let prepared = serde_json::from_value::<NewUser>(record)
                        .map_err(|e| e.to_string())
                        .and_then(|u| u.validate(&profile_fields()).map(|_| u))
                        .and_then(|u| {
                            let hash = u
                                .password
                                .as_deref()
                                .map(|p| passwords.hash(p))
                                .transpose()?;
                            Ok((u, hash))
                        });
                    let _ = tx.send((n, prepared));
                }
            });
        }
        drop(tx);
        let mut report = ImportReport {
            added: 0,
            failed: Vec::new(),
        };
        let mut conn = app.db.get().map_err(|e| e.to_string())?;
        for (n, prepared) in rx {
            match prepared
                .and_then(|(u, hash)| insert(&mut conn, &u, hash).map_err(|e| e.to_string()))
            {
                Ok(_) => report.added += 1,
                Err(e) => report.failed.push((n, e)),
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        report.failed.sort_by_key(|(n, _)| *n);
        Ok(report)
    })
}
