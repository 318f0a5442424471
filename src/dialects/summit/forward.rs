//! ServiceNames otpgate does not serve go to the legacy server, as the client wrote
//! them; a call made with otpgate's session has its `_ProxyDetails` rewritten for the
//! upstream first (the session exchanged for the user's API key).

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use super::envelope::{Out, fault};
use super::errors;
use crate::config::UnknownTokens;
use crate::error::Error;
use crate::services::{self, upstream_session};
use crate::state::AppState;
use crate::upstream::Side;
use crate::wire::Format;
use crate::wire::fields::Fields;
use crate::wire::splice;

const PROXY_PATH: &[&str] = &["objCommonParameters", "_ProxyDetails"];
/// The `_ProxyDetails` members the exchange rewrites.
const REWRITTEN: &[&str] = &["TokenID", "AuthType", "APIKey", "LoginUID", "UserName"];

/// What follows the endpoint's name in the client's path (`_JSON`, `/`, or nothing),
/// kept when forwarding.
fn suffix(path: &str) -> &str {
    const NAME: &str = "commonws_jsonobjcall";
    let lower = path.to_ascii_lowercase();
    match lower.rfind(NAME) {
        Some(i) => &path[i + NAME.len()..],
        None => "",
    }
}

/// Forwards the request, exchanging otpgate's session when it carries one.
pub async fn forward(
    req: &HttpRequest,
    state: &AppState,
    side: &Side,
    body: Bytes,
    params: &Value,
    format: Format,
    out: Out,
) -> HttpResponse {
    let Some(forwarder) = &side.forwarder else {
        return fault(StatusCode::OK, "No upstream server is configured.", out);
    };
    let body = match exchange(state, side, &body, params, format).await {
        Ok(Some(rewritten)) => Bytes::from(rewritten),
        Ok(None) => body,
        Err(e) => {
            if e.is_server_fault() {
                tracing::error!(error = ?e, "session exchange failed");
            }
            let (status, text) = errors::answer(&e);
            return fault(status, &text, out);
        }
    };
    match forwarder.send(req, suffix(req.path()), body).await {
        Ok(answer) => answer.into_response(),
        Err(f) => fault(f.status(), &f.message(), out),
    }
}

/// The body to send instead, when it carries otpgate's session; None to send it as it
/// came. An unknown or dead session of otpgate's is an error, answered locally.
async fn exchange(
    state: &AppState,
    side: &Side,
    body: &[u8],
    params: &Value,
    format: Format,
) -> Result<Option<Vec<u8>>, Error> {
    let cannot = || {
        Error::invalid("The session in _ProxyDetails cannot be exchanged for the upstream server.")
    };
    let Ok(p) = Fields::new("objCommonParameters", params) else {
        return Ok(None);
    };
    let proxy = match p.object("_ProxyDetails") {
        Ok(Some(proxy)) => proxy,
        Ok(None) => return Ok(None),
        // Present but unreadable: it may hold a session, which must not go upstream.
        Err(_) => return Err(cannot()),
    };
    let text = |name: &str| -> Result<Option<String>, Error> {
        Ok(proxy
            .text(name)
            .map_err(|_| cannot())?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()))
    };
    let auth_type = text("AuthType")?.unwrap_or_default();
    // A caller with its own credentials (an API key, or a password: a login routed to
    // the legacy server) is forwarded as it came; a TokenID beside them is not what
    // authenticates it. A session sent with a leftover AuthType is exchanged.
    if (auth_type.eq_ignore_ascii_case("APIKEY") && text("APIKey")?.is_some())
        || (auth_type.eq_ignore_ascii_case("FORM") && text("Password")?.is_some())
    {
        return Ok(None);
    }
    let Some(token) = text("TokenID")? else {
        return Ok(None);
    };
    if !crate::core::sessions::is_own_token(&token) {
        return match side.unknown_tokens {
            UnknownTokens::Forward => Ok(None),
            UnknownTokens::Refuse => Err(Error::InvalidSession),
        };
    }
    let (outcome, _) = services::contained(upstream_session::call(
        state,
        upstream_session::Input {
            token: token.clone(),
            service_key: side.service_api_key.clone(),
        },
    ))
    .await;
    let creds = outcome?;
    let login_uid_was_text = proxy.get("LoginUID").is_some_and(|v| v.is_string());
    let login_uid = match creds.login_uid.trim().parse::<i64>() {
        Ok(n) if !login_uid_was_text => json!(n),
        _ => json!(creds.login_uid),
    };
    let rewritten = match format {
        Format::Json => splice::json_object(body, PROXY_PATH, |m: &mut Map<String, Value>| {
            splice::remove_member(m, "TokenID");
            splice::set_member(m, "AuthType", json!("APIKEY"));
            splice::set_member(m, "APIKey", json!(creds.api_key));
            splice::set_member(m, "LoginUID", login_uid.clone());
            splice::set_member(m, "UserName", json!(creds.user_name));
        }),
        Format::Xml => splice::xml_children(
            body,
            PROXY_PATH,
            REWRITTEN,
            &[
                ("AuthType", "APIKEY".to_string()),
                ("APIKey", creds.api_key.clone()),
                ("LoginUID", creds.login_uid.clone()),
                ("UserName", creds.user_name.clone()),
            ],
        ),
    };
    // Never forward otpgate's token: a body it cannot be taken out of, written out or
    // escaped, is refused.
    match rewritten {
        Some(b) if !contains(&b, token.as_bytes()) && !decoded_contains(&b, format, &token) => {
            Ok(Some(b))
        }
        _ => Err(cannot()),
    }
}

/// Whether any value of the body, as its readers decode it, is the token.
fn decoded_contains(body: &[u8], format: Format, token: &str) -> bool {
    fn walk(v: &Value, token: &str) -> bool {
        match v {
            Value::String(s) => s.trim().eq_ignore_ascii_case(token),
            Value::Array(a) => a.iter().any(|x| walk(x, token)),
            Value::Object(m) => m.values().any(|x| walk(x, token)),
            _ => false,
        }
    }
    let tree = match format {
        Format::Json => crate::wire::parse_json(body).ok().map(|v| match v {
            Value::String(inner) => serde_json::from_str(&inner).unwrap_or(Value::String(inner)),
            other => other,
        }),
        Format::Xml => crate::wire::xml::decode(body, 128).ok().map(|d| d.value),
    };
    // What cannot be read back is not sent.
    tree.is_none_or(|t| walk(&t, token))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_suffix_after_the_endpoint_is_kept() {
        assert_eq!(
            suffix("/a/REST/Summit_RESTWCF.svc/RestService/CommonWS_JsonObjCall_JSON"),
            "_JSON"
        );
        assert_eq!(
            suffix("/REST/Summit_RESTWCF.svc/RESTService/commonws_jsonobjcall/"),
            "/"
        );
        assert_eq!(
            suffix("/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall"),
            ""
        );
    }
}
