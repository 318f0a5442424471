//! Reading the Summit request: `{"ServiceName": …, "objCommonParameters": {…}}` as
//! JSON (possibly double-encoded as a JSON string), or the same as XML, plain or in a
//! SOAP 1.1/1.2 Body, possibly wrapped in an operation element.

use actix_web::HttpRequest;
use serde_json::Value;

use crate::wire::fields::Fields;
use crate::wire::xml::{self, SoapVersion, XmlError};
use crate::wire::{Format, json_depth, parse_json};

/// The request as a field tree, and the SOAP version around it, if any.
pub fn decode(
    req: &HttpRequest,
    body: &[u8],
    max_depth: usize,
) -> Result<(Value, Option<SoapVersion>), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("The request body is empty.".into());
    }
    match Format::of_request(req, body) {
        Format::Json => {
            let too_deep = || format!("The JSON is nested more than {max_depth} levels deep.");
            let mut v: Value = parse_json(body).map_err(|e| {
                if e.to_string().contains("recursion limit") {
                    too_deep()
                } else {
                    "The request body is not valid JSON.".to_string()
                }
            })?;
            // Some clients send the envelope double-encoded, as a JSON string.
            if let Value::String(s) = &v {
                v = serde_json::from_str(s)
                    .map_err(|_| "The request body is not valid JSON.".to_string())?;
            }
            if json_depth(&v) > max_depth {
                return Err(too_deep());
            }
            Ok((v, None))
        }
        Format::Xml => {
            let doc = xml::decode(body, max_depth).map_err(|e| match e {
                XmlError::Malformed => "The request body is not well-formed XML.".to_string(),
                other => format!("The XML request was refused: {other}."),
            })?;
            Ok((unwrap_request(doc.value), doc.soap))
        }
    }
}

/// XML requests may wrap the envelope in an operation element
/// (`<CommonWS_JsonObjCall><request>…`): the envelope is the first object, breadth
/// first, that has a ServiceName.
fn unwrap_request(root: Value) -> Value {
    let mut queue = std::collections::VecDeque::from([(root.clone(), 0)]);
    while let Some((v, depth)) = queue.pop_front() {
        if let Value::Object(m) = &v {
            if m.keys().any(|k| k.eq_ignore_ascii_case("ServiceName")) {
                return v;
            }
            if depth < 3 {
                queue.extend(
                    m.values()
                        .filter(|c| c.is_object())
                        .map(|c| (c.clone(), depth + 1)),
                );
            }
        }
    }
    root
}

/// The AuthType a request names: `_ProxyDetails.AuthType`, else
/// `objUserInformation.AuthType`; trimmed, None when empty.
pub fn auth_type(params: &Value) -> Option<String> {
    let p = Fields::new("objCommonParameters", params).ok()?;
    ["_ProxyDetails", "objUserInformation"]
        .iter()
        .find_map(|o| {
            let text = p.object(o).ok()??.text("AuthType").ok()??;
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_string())
        })
}

/// `_ProxyDetails.ReturnType`, when it names JSON or XML.
pub fn return_type(params: &Value) -> Option<Format> {
    let p = Fields::new("objCommonParameters", params).ok()?;
    let proxy = p.object("_ProxyDetails").ok()??;
    match proxy
        .text("ReturnType")
        .ok()??
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "JSON" => Some(Format::Json),
        "XML" => Some(Format::Xml),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrapped_xml_requests_are_found() {
        let v = json!({"request": {"ServiceName": "LoginApp", "objCommonParameters": {}}});
        assert_eq!(unwrap_request(v)["ServiceName"], "LoginApp");
    }

    #[test]
    fn return_type_is_read_in_any_case() {
        let p = json!({"_proxydetails": {"returntype": "xml"}});
        assert_eq!(return_type(&p), Some(Format::Xml));
        assert_eq!(return_type(&json!({"_ProxyDetails": {}})), None);
    }
}
