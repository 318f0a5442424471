//! The architecture's one statement of which layer may import which (docs/
//! architecture.md). It reads every source file under src/ and fails when a file
//! imports a module its layer may not: a lower layer reaching up, the wire reaching
//! into a dialect, a service reaching into a wire format. Test code (`#[cfg(test)]`
//! modules) is left out: a unit test may build what it checks from anywhere.

use std::path::{Path, PathBuf};

/// Loading and validating the settings may ask the layers they configure.
const CONFIG_LOADING: &[&str] = &[
    "config",
    "error",
    "db",
    "core::keys",
    "core::cipher",
    "delivery",
    "upstream",
];

/// (the files a rule covers, as a path under src/ or its prefix; the crate modules
/// they may import). The most specific prefix applies. `crate::x::y` is checked
/// against entries `x` and `x::y`.
const ALLOWED: &[(&str, &[&str])] = &[
    // The bottom: the error type and the settings' types import nothing.
    ("error.rs", &[]),
    ("config/", &["config", "error"]),
    ("config/load.rs", CONFIG_LOADING),
    // The metrics: counters and gauges anyone below the HTTP side may move.
    ("metrics/", &["metrics", "error"]),
    ("config/validate", CONFIG_LOADING),
    // Storage, then delivery: they know the channels, keys, masks and request ids of
    // the core's primitives and nothing else of it.
    (
        "db/",
        &[
            "db",
            "config",
            "error",
            "metrics",
            "core::channel",
            "core::keys",
            "core::request_id",
        ],
    ),
    (
        "delivery/",
        &[
            "delivery",
            "db",
            "config",
            "error",
            "metrics",
            "core::channel",
            "core::keys",
            "core::mask",
        ],
    ),
    // The engine: no HTTP, no services, no dialect, no wire.
    (
        "core/",
        &["core", "db", "delivery", "config", "error", "metrics"],
    ),
    (
        "state.rs",
        &[
            "state", "core", "db", "delivery", "config", "error", "metrics",
        ],
    ),
    // Operations: typed in, typed out; never a wire format or a dialect.
    (
        "services/",
        &[
            "services", "state", "core", "db", "delivery", "config", "error", "metrics",
        ],
    ),
    // What every dialect shares knows no dialect and no operation.
    // The request id is the one primitive of the core it carries.
    ("wire/", &["wire", "error", "core::request_id"]),
    // Forwarding to the legacy servers: HTTP and the settings, no dialect, no core.
    (
        "upstream/",
        &["upstream", "wire", "config", "error", "metrics"],
    ),
    // Dialects: their wire and the operations; never storage or delivery.
    (
        "dialects/",
        &[
            "dialects", "wire", "upstream", "services", "state", "core", "config", "error",
        ],
    ),
    ("schemas.rs", &[]),
    // Recording traffic: beside the dialects, never known to them; scenarios are the
    // replayer's format.
    (
        "record/",
        &["record", "tools", "config", "core::mask", "error"],
    ),
    (
        "startup.rs",
        &[
            "startup", "dialects", "upstream", "wire", "schemas", "state", "core", "delivery",
            "db", "config", "error", "record",
        ],
    ),
    (
        "startup/",
        &[
            "startup", "dialects", "upstream", "wire", "state", "core", "db", "metrics",
        ],
    ),
    (
        "tools/",
        &[
            "tools", "startup", "dialects", "wire", "services", "state", "core", "delivery", "db",
            "config", "error",
        ],
    ),
    // The command line may use everything.
    ("cli/", &["*"]),
    ("lib.rs", &["*"]),
    ("main.rs", &["*"]),
];

/// Crates only the HTTP side may use.
const HTTP_CRATES: &[&str] = &["actix_web", "actix_http"];
const NO_HTTP: &[&str] = &[
    "metrics/",
    "core/",
    "db/",
    "services/",
    "delivery/",
    "config/",
    "error.rs",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` modules.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i64> = None;
    let mut depth = 0i64;
    let mut test_next = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            test_next = true;
            continue;
        }
        let opens = line.matches('{').count() as i64;
        let closes = line.matches('}').count() as i64;
        if test_next {
            test_next = false;
            if trimmed.starts_with("mod ") || trimmed.starts_with("pub(crate) fn ") {
                if opens > closes {
                    skip_depth = Some(depth);
                }
                depth += opens - closes;
                continue;
            }
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every `crate::a::b` path the code names, as "a" and "a::b"; `use crate::{x, y}`
/// groups name each of their members.
fn imports(code: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(pos) = code[i..].find("crate::") {
        let start = i + pos;
        i = start + "crate::".len();
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue; // `$crate::` or a longer identifier
        }
        if code[i..].starts_with('{') {
            let end = code[i..].find('}').map_or(code.len(), |e| i + e);
            for member in code[i + 1..end].split(',') {
                let first = member.trim().split("::").next().unwrap_or("").trim();
                let second = member.trim().split("::").nth(1).unwrap_or("").trim();
                if !first.is_empty() {
                    found.push((first.to_string(), second.to_string()));
                }
            }
            continue;
        }
        let path: String = code[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        if code[i + path.len()..].starts_with('!') {
            continue; // a macro exported at the crate root (`crate::per_backend!`)
        }
        let mut parts = path.split("::").filter(|p| !p.is_empty());
        let first = parts.next().unwrap_or("").to_string();
        let second = parts.next().unwrap_or("").to_string();
        found.push((first, second));
    }
    found
}

fn rule_for(relative: &str) -> &'static [&'static str] {
    ALLOWED
        .iter()
        .filter(|(prefix, _)| relative.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, allowed)| *allowed)
        .unwrap_or_else(|| panic!("src/{relative}: no layer rule covers this file"))
}

/// The arrows that break the rules, as "file -> module" lines.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let allowed = rule_for(&relative);
        let code = code(&std::fs::read_to_string(&file).unwrap());
        for (first, second) in imports(&code) {
            let full = format!("{first}::{second}");
            let ok = allowed.contains(&"*")
                || allowed.contains(&first.as_str())
                || allowed.contains(&full.as_str());
            if !ok {
                bad.push(format!("src/{relative} -> crate::{full}"));
            }
        }
        if NO_HTTP.iter().any(|p| relative.starts_with(p)) {
            for krate in HTTP_CRATES {
                if code.contains(&format!("{krate}::")) {
                    bad.push(format!("src/{relative} -> {krate}"));
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports against the layering (docs/architecture.md):\n{}",
        bad.join("\n")
    );
}

/// The checker itself finds an arrow pointing up, in every spelling of an import.
#[test]
fn an_arrow_pointing_up_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("core")).unwrap();
    std::fs::create_dir_all(src.join("services")).unwrap();
    std::fs::write(
        src.join("core/otp.rs"),
        "use crate::db::users;\nuse crate::{error, services::login_app};\n\
         // use crate::dialects::summit; (a comment)\n\
         #[cfg(test)]\nmod tests {\n    use crate::dialects::summit;\n}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("services/login_app.rs"),
        "fn f() { let _ = crate::wire::fields::Fields::new; }\nuse actix_web::HttpResponse;\n",
    )
    .unwrap();
    assert_eq!(
        violations(src),
        vec![
            "src/core/otp.rs -> crate::services::login_app",
            "src/services/login_app.rs -> actix_web",
            "src/services/login_app.rs -> crate::wire::fields",
        ]
    );
}
