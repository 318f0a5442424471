//! What every dialect shares on the wire: body reading and limits, format sniffing,
//! JSON parsing as legacy clients write it, the tolerant field reader, and the XML codec.

pub mod access;
pub mod client;
pub mod fields;
pub mod request_id;
pub mod routes;
pub mod splice;
pub mod xml;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::StreamExt;

/// The two body formats every dialect speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The format a Content-Type names, if it names one.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime.ends_with("/json") || mime.ends_with("+json") {
            Some(Format::Json)
        } else if mime.ends_with("/xml") || mime.ends_with("+xml") {
            Some(Format::Xml)
        } else {
            None
        }
    }

    /// The body's format: from its Content-Type, or (missing or other) from its first
    /// byte that is not white space.
    pub fn of_request(req: &HttpRequest, body: &[u8]) -> Format {
        let declared = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::from_content_type);
        declared.unwrap_or_else(|| Format::sniff(body))
    }

    pub fn sniff(body: &[u8]) -> Format {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => Format::Xml,
            _ => Format::Json,
        }
    }

    /// The format the Accept header prefers, if it prefers one of the two.
    pub fn from_accept(req: &HttpRequest) -> Option<Format> {
        let accept = req
            .headers()
            .get(header::ACCEPT)?
            .to_str()
            .ok()?
            .to_ascii_lowercase();
        let json = accept.contains("json");
        let xml = accept.contains("xml");
        match (json, xml) {
            (true, false) => Some(Format::Json),
            (false, true) => Some(Format::Xml),
            _ => None,
        }
    }
}

/// The HTTP status every dialect answers an error with: business outcomes 200 (the
/// failure is in the dialect's own shape), a throttled client 429, a busy server 503,
/// an internal fault 500.
pub fn fault_status(e: &crate::error::Error) -> actix_web::http::StatusCode {
    use actix_web::http::StatusCode;
    match e {
        crate::error::Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        crate::error::Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        e if e.is_server_fault() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    }
}

/// An answer to `e` with the `Retry-After` header when the error has a wait to tell
/// (the throttle's 429).
pub fn retry_after(
    mut answer: actix_web::HttpResponse,
    e: &crate::error::Error,
) -> actix_web::HttpResponse {
    use actix_web::http::header;
    if let Some(secs) = e.retry_after_secs() {
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    answer
}

/// A 405 answer, with the `Allow: POST` header the dialects' routes all have.
pub fn allow_post(mut answer: actix_web::HttpResponse) -> actix_web::HttpResponse {
    use actix_web::http::header;
    answer
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    answer
}

pub enum BodyError {
    TooLarge,
    Unreadable,
    /// Not all there by the deadline.
    TimedOut,
}

impl BodyError {
    /// The HTTP status and the text every dialect answers a body it could not read
    /// with, in its own shape.
    pub fn answer(&self, limit: usize) -> (actix_web::http::StatusCode, String) {
        use actix_web::http::StatusCode;
        match self {
            BodyError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than {limit} bytes."),
            ),
            BodyError::Unreadable => (
                StatusCode::BAD_REQUEST,
                "The request body could not be read.".to_string(),
            ),
            BodyError::TimedOut => (
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time.".to_string(),
            ),
        }
    }
}

/// How much of a body is read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// From the end of the headers to the body's last byte.
    pub deadline: std::time::Duration,
}

impl BodyLimits {
    /// At most `max_bytes`, all there within `timeout_seconds` (the settings'
    /// `body_timeout_seconds`).
    pub fn new(max_bytes: usize, timeout_seconds: u64) -> BodyLimits {
        BodyLimits {
            max_bytes,
            deadline: std::time::Duration::from_secs(timeout_seconds),
        }
    }
}

/// Reads a request body within `limits`, refusing early when Content-Length already
/// says it is larger. A body still arriving at the deadline (a client that sends a
/// byte now and then, or stops) is `TimedOut`.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limits: BodyLimits,
) -> Result<Bytes, BodyError> {
    let limit = limits.max_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(limits.deadline, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

/// A JSON value as the bytes of an answer's body, written straight into a buffer: about
/// half the instructions of `to_string`, whose `Display` passes every fragment through
/// a formatter. Writing a `Value` into memory cannot fail; if it ever did, `to_string`
/// gives the same text.
pub fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|_| v.to_string().into_bytes())
}

/// The depth of a JSON value, counted without recursion.
pub fn json_depth(v: &serde_json::Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            serde_json::Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            serde_json::Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

/// Parses JSON as Json.NET reads it: besides ASCII white space, any Unicode space
/// character may stand between tokens (documents copied from web pages carry U+00A0 or
/// U+202F as indentation). Strict parsing first; the lenient pass only runs when it fails.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(strict) => match std::str::from_utf8(body) {
            Ok(text) if text.chars().any(is_unicode_space) => {
                serde_json::from_str(&spaces_outside_strings(text))
            }
            _ => Err(strict),
        },
    }
}

fn is_unicode_space(c: char) -> bool {
    !c.is_ascii() && (c.is_whitespace() || c == '\u{FEFF}')
}

fn spaces_outside_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            let was_escaped = escaped;
            escaped = !was_escaped && c == '\\';
            in_string = was_escaped || c != '"';
            out.push(c);
        } else if is_unicode_space(c) {
            out.push(' ');
        } else {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// A JSON body that must be an object, with the dialects' own words for what is wrong:
/// not JSON, nested deeper than `max_depth`, or not an object.
pub fn json_object(body: &[u8], max_depth: usize) -> Result<serde_json::Value, String> {
    let v = parse_json(body).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            format!("The JSON is nested more than {max_depth} levels deep.")
        } else {
            "The request body is not valid JSON.".to_string()
        }
    })?;
    if json_depth(&v) > max_depth {
        return Err(format!(
            "The JSON is nested more than {max_depth} levels deep."
        ));
    }
    if !v.is_object() {
        return Err("The request body must be a JSON object.".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_spaces_between_tokens_are_white_space_but_kept_inside_strings() {
        let v =
            parse_json("{\u{202F}\"a\":\u{00A0}\"x\u{202F}y\",\"b\\\"\":1}".as_bytes()).unwrap();
        assert_eq!(v["a"], "x\u{202F}y");
        assert_eq!(v["b\""], 1);
        // An escaped quote does not end the string.
        let v = parse_json("{\"P\":\"a\\\"b\",\u{00A0}\"D\":\"x\u{00A0}y\"}".as_bytes()).unwrap();
        assert_eq!(
            (v["P"].as_str(), v["D"].as_str()),
            (Some("a\"b"), Some("x\u{00A0}y"))
        );
        assert!(parse_json("{\"a\": 1,}".as_bytes()).is_err());
        assert!(parse_json("\u{202F}".as_bytes()).is_err());
    }

    #[test]
    fn formats_come_from_content_type_or_the_first_byte() {
        assert_eq!(
            Format::from_content_type("text/json; charset=utf-8"),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_content_type("application/soap+xml"),
            Some(Format::Xml)
        );
        assert_eq!(Format::from_content_type("text/plain"), None);
        assert_eq!(Format::sniff(b"  \n<a/>"), Format::Xml);
        assert_eq!(Format::sniff(b"\xEF\xBB\xBF{}"), Format::Json);
    }
}
