//! One exchange as the capture takes it: the request as it came, the answer as it
//! left, nothing redacted yet (that is the writer's work, off the request path), and
//! what little the selection needs: the dialect and the operation's name.

use std::sync::LazyLock;

use actix_web::web::Bytes;

/// A request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// When the request arrived, in milliseconds since the epoch.
    pub at_ms: i64,
    pub dialect: Dialect,
    pub method: String,
    pub path: String,
    /// The query string, without `?` (empty: none).
    pub query: String,
    /// The request headers worth replaying, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub status: u16,
    pub content_type: Option<String>,
    pub response: Bytes,
    /// Chosen by `names` and `sample`; an exchange that was not is kept only when it
    /// continues a scenario already recorded.
    pub selected: bool,
}

/// The dialect a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Summit,
    TwoFactor,
    Capillary,
}

impl Dialect {
    /// The dialect whose area a path is in (the same tests the dialects make, any
    /// prefix, without case), or None for the gateway's own routes and the rest.
    pub fn of_path(path: &str) -> Option<Dialect> {
        let lower = path.to_ascii_lowercase();
        if lower.contains("/summit_restwcf.svc") {
            Some(Dialect::Summit)
        } else if lower.contains("/api/twofactor/") {
            Some(Dialect::TwoFactor)
        } else if lower.contains("/auth/v1/") || lower.ends_with("/auth/v1") {
            Some(Dialect::Capillary)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Summit => "summit",
            Dialect::TwoFactor => "twofactor",
            Dialect::Capillary => "capillary",
        }
    }
}

/// Request headers a replay needs (the others are left out): the formats, SOAP's
/// action, Capillary's `cap_*` headers, and the credentials (whose values are
/// redacted when the scenario is written).
pub fn worth_replaying(name: &str, extra: &[String]) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "content-type" | "accept" | "soapaction" | "authorization" | "cookie" | "x-api-key"
    ) || n.starts_with("cap_")
        || n.starts_with("cap-")
        || extra.iter().any(|e| e.eq_ignore_ascii_case(&n))
}

/// The operation a request names: the ServiceName of a Summit envelope, the action
/// of a TwoFactor path, the route below /auth/v1/ of a Capillary one.
pub fn operation(dialect: Dialect, path: &str, body: &[u8]) -> String {
    let lower = path.to_ascii_lowercase();
    let trimmed = path.trim_end_matches('/');
    match dialect {
        Dialect::TwoFactor => lower
            .rfind("/api/twofactor/")
            .map(|i| trimmed.get(i + "/api/twofactor/".len()..).unwrap_or(""))
            .unwrap_or("")
            .to_string(),
        Dialect::Capillary => lower
            .rfind("/auth/v1/")
            .map(|i| trimmed.get(i + "/auth/v1/".len()..).unwrap_or(""))
            .unwrap_or("")
            .to_string(),
        Dialect::Summit => service_name(body).unwrap_or_default(),
    }
}

/// The ServiceName of a Summit body (JSON, XML or SOAP), found without parsing it.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, exercised by the tests"
)]
fn service_name(body: &[u8]) -> Option<String> {
    static NAME: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
        regex::bytes::Regex::new(
            r#"(?i)"ServiceName"\s*:\s*"([^"\\]{1,100})"|<(?:[\w.-]+:)?ServiceName(?:\s[^<>]*)?>\s*([^<\s]{1,100})\s*<"#,
        )
        .expect("service name pattern")
    });
    let c = NAME.captures(body)?;
    let m = c.get(1).or_else(|| c.get(2))?;
    Some(String::from_utf8_lossy(m.as_bytes()).into_owned())
}

/// Whether an operation is among `names` (without case; a Capillary web route also
/// answers to its mobile twin's name).
pub fn named(op: &str, names: &[String]) -> bool {
    names.is_empty()
        || names.iter().any(|n| {
            let n = n.trim().trim_matches('/');
            n.eq_ignore_ascii_case(op)
                || op.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("web/"))
                    && op.get(4..).is_some_and(|rest| n.eq_ignore_ascii_case(rest))
        })
}

/// Whether a request may continue a scenario: it names a transaction, OTP or session
/// id. Such requests always go to the writer, which keeps them only when they do.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, exercised by the tests"
)]
pub fn may_continue(body: &[u8]) -> bool {
    static IDS: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
        regex::bytes::Regex::new(r"(?i)transaction_?id|otp_?id|session_?id|token_?id|reference_?id")
            .expect("ids pattern")
    });
    IDS.is_match(body)
}

/// A file name part made of the operation: letters, digits, `_` and `-`.
pub fn file_part(op: &str) -> String {
    let s: String = op
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "request".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_and_operations_from_paths_and_bodies() {
        let summit = "/API/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";
        assert_eq!(Dialect::of_path(summit), Some(Dialect::Summit));
        assert_eq!(
            operation(
                Dialect::Summit,
                summit,
                br#"{ "ServiceName" : "ADM_GenerateOTP" }"#
            ),
            "ADM_GenerateOTP"
        );
        assert_eq!(
            operation(
                Dialect::Summit,
                summit,
                b"<s:Envelope><s:Body><X><a:ServiceName>LoginApp</a:ServiceName></X></s:Body></s:Envelope>"
            ),
            "LoginApp"
        );
        let tf = "/customerservice/api/TwoFactor/CreateTwoFactorSmsOtp/";
        assert_eq!(Dialect::of_path(tf), Some(Dialect::TwoFactor));
        assert_eq!(
            operation(Dialect::TwoFactor, tf, b""),
            "CreateTwoFactorSmsOtp"
        );
        let cap = "/gw/auth/v1/web/otp/generate";
        assert_eq!(Dialect::of_path(cap), Some(Dialect::Capillary));
        assert_eq!(operation(Dialect::Capillary, cap, b""), "web/otp/generate");
        assert_eq!(Dialect::of_path("/healthz"), None);
        assert_eq!(
            Dialect::of_path("/schemas/summit/request.schema.json"),
            None
        );
    }

    #[test]
    fn names_select_without_case_and_web_routes_answer_to_their_twins() {
        let names = vec!["adm_generateotp".to_string(), "otp/generate".to_string()];
        assert!(named("ADM_GenerateOTP", &names));
        assert!(named("otp/generate", &names) && named("web/otp/generate", &names));
        assert!(!named("otp/validate", &names) && !named("LoginApp", &names));
        assert!(named("anything", &[]));
        assert!(may_continue(br#"{"OtpIdReference":"x"}"#));
        assert!(may_continue(b"<TransactionID>1</TransactionID>"));
        assert!(!may_continue(br#"{"GsmNumber":"905321234567"}"#));
        assert_eq!(file_part("web/otp/generate"), "web-otp-generate");
        assert_eq!(file_part("../"), "request");
        assert!(worth_replaying("cap_brand", &[]) && worth_replaying("SOAPAction", &[]));
        assert!(!worth_replaying("user-agent", &[]));
    }
}
