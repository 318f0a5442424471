//! Changing one object of a request body and leaving every other byte as it came: the
//! object is found by its path of member (or element) names, compared without case,
//! and only its own text is replaced. Used to rewrite a request before it is
//! forwarded, so the upstream receives what the client wrote, but for that object.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The body with the JSON object at `path` replaced by what `edit` makes of it; None
/// when the body is not JSON or has no object there. A body that is itself a JSON
/// string holding the document (double-encoded) stays so.
pub fn json_object(
    body: &[u8],
    path: &[&str],
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('"') {
        let inner: String = serde_json::from_str(trimmed).ok()?;
        let changed = json_in_text(&inner, path, edit)?;
        return serde_json::to_vec(&changed).ok();
    }
    json_in_text(text, path, edit).map(String::into_bytes)
}

fn json_in_text(
    text: &str,
    path: &[&str],
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Option<String> {
    // Walk down by raw slices of the text, so their offsets are known.
    let mut raw: &str = text;
    for name in path {
        let members: HashMap<String, &RawValue> = serde_json::from_str(raw).ok()?;
        raw = members
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.get())?;
    }
    let mut object: Map<String, Value> = serde_json::from_str(raw).ok()?;
    edit(&mut object);
    let start = raw.as_ptr() as usize - text.as_ptr() as usize;
    let end = start + raw.len();
    let replacement = serde_json::to_string(&object).ok()?;
    Some(format!("{}{replacement}{}", &text[..start], &text[end..]))
}

/// Sets `key` in a JSON object, reusing the spelling of a member that matches it
/// without case.
pub fn set_member(object: &mut Map<String, Value>, key: &str, value: Value) {
    match object.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned() {
        Some(existing) => {
            object.insert(existing, value);
        }
        None => {
            object.insert(key.to_string(), value);
        }
    }
}

/// Removes every member named `key` without case.
pub fn remove_member(object: &mut Map<String, Value>, key: &str) {
    object.retain(|k, _| !k.eq_ignore_ascii_case(key));
}

/// The XML body with the children of the element at the end of `path` (local names,
/// without case; the path may start anywhere below the root, as in a SOAP Body)
/// changed: those named in `remove` go, and `add` (name, text) are appended before
/// its end tag, with the element's own prefix. None when the body has no such
/// element (or is not well-formed).
pub fn xml_children(
    body: &[u8],
    path: &[&str],
    remove: &[&str],
    add: &[(&str, String)],
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    // Byte ranges to drop, and where the new children go.
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut insert: Option<(usize, String)> = None;
    let mut target_depth: Option<usize> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().ok()?;
        match event {
            Event::Start(e) => {
                let qname = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                let local = local(&qname).to_ascii_lowercase();
                if target_depth == Some(stack.len())
                    && remove.iter().any(|r| r.eq_ignore_ascii_case(&local))
                {
                    let end_name = e.name().as_ref().to_vec();
                    reader.read_to_end(quick_xml::name::QName(&end_name)).ok()?;
                    cuts.push((before, reader.buffer_position() as usize));
                    continue;
                }
                stack.push(local);
                if target_depth.is_none() && insert.is_none() && ends_with(&stack, path) {
                    target_depth = Some(stack.len());
                    let prefix = match qname.rfind(':') {
                        Some(i) => qname[..=i].to_string(),
                        None => String::new(),
                    };
                    insert = Some((0, prefix));
                }
            }
            Event::Empty(e) => {
                let qname = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                let local = local(&qname);
                if target_depth == Some(stack.len())
                    && remove.iter().any(|r| r.eq_ignore_ascii_case(local))
                {
                    cuts.push((before, reader.buffer_position() as usize));
                }
            }
            Event::End(_) => {
                if target_depth == Some(stack.len()) {
                    target_depth = None;
                    if let Some((at, _)) = insert.as_mut() {
                        *at = before;
                    }
                }
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let (at, prefix) = insert.filter(|(at, _)| *at > 0)?;
    let mut out = String::with_capacity(text.len() + 128);
    let mut pos = 0;
    for (start, end) in cuts {
        out.push_str(&text[pos..start]);
        pos = end;
    }
    out.push_str(&text[pos..at]);
    for (name, value) in add {
        let value = quick_xml::escape::escape(value.as_str());
        out.push_str(&format!("<{prefix}{name}>{value}</{prefix}{name}>"));
    }
    out.push_str(&text[at..]);
    Some(out.into_bytes())
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn ends_with(stack: &[String], path: &[&str]) -> bool {
    stack.len() >= path.len()
        && stack[stack.len() - path.len()..]
            .iter()
            .zip(path)
            .all(|(s, p)| s.eq_ignore_ascii_case(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(m: &mut Map<String, Value>) {
        remove_member(m, "TokenID");
        set_member(m, "AuthType", json!("APIKEY"));
        set_member(m, "APIKey", json!("K"));
    }

    #[test]
    fn only_the_object_at_the_path_changes_in_json() {
        let body = br#"{ "ServiceName" : "IM_X",
  "objCommonParameters": {"_proxydetails": {"tokenid": "AB", "authtype": "FORM", "OrgID": "1"},
     "Big": 123456789012345678901234567890, "Text": "caf\u00e9" } }"#;
        let out = json_object(body, &["objCommonParameters", "_ProxyDetails"], edit).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            r#"{ "ServiceName" : "IM_X",
  "objCommonParameters": {"_proxydetails": {"authtype":"APIKEY","OrgID":"1","APIKey":"K"},
     "Big": 123456789012345678901234567890, "Text": "caf\u00e9" } }"#
        );
    }

    #[test]
    fn a_double_encoded_json_body_stays_double_encoded() {
        let inner =
            r#"{"ServiceName":"IM_X","objCommonParameters":{"_ProxyDetails":{"TokenID":"AB"}}}"#;
        let body = serde_json::to_vec(inner).unwrap();
        let out = json_object(&body, &["objCommonParameters", "_ProxyDetails"], edit).unwrap();
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            back,
            r#"{"ServiceName":"IM_X","objCommonParameters":{"_ProxyDetails":{"AuthType":"APIKEY","APIKey":"K"}}}"#
        );
    }

    #[test]
    fn json_without_the_object_is_not_rewritten() {
        assert!(json_object(b"{\"a\":1}", &["objCommonParameters"], edit).is_none());
        assert!(json_object(b"<x/>", &["a"], edit).is_none());
    }

    #[test]
    fn only_the_children_named_change_in_xml() {
        let body = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a:CommonWS_JsonObjCall xmlns:a="urn:x">
 <a:ServiceName>IM_X</a:ServiceName>
 <a:objCommonParameters><a:_ProxyDetails>
  <a:TokenID>AB</a:TokenID><a:AuthType>FORM</a:AuthType><a:APIKey/><a:OrgID>1</a:OrgID>
 </a:_ProxyDetails><a:Other>&amp;keep</a:Other></a:objCommonParameters>
</a:CommonWS_JsonObjCall></s:Body></s:Envelope>"#;
        let out = xml_children(
            body.as_bytes(),
            &["objCommonParameters", "_ProxyDetails"],
            &["TokenID", "AuthType", "APIKey"],
            &[("AuthType", "APIKEY".into()), ("APIKey", "K&<".into())],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a:CommonWS_JsonObjCall xmlns:a="urn:x">
 <a:ServiceName>IM_X</a:ServiceName>
 <a:objCommonParameters><a:_ProxyDetails>
  <a:OrgID>1</a:OrgID>
 <a:AuthType>APIKEY</a:AuthType><a:APIKey>K&amp;&lt;</a:APIKey></a:_ProxyDetails><a:Other>&amp;keep</a:Other></a:objCommonParameters>
</a:CommonWS_JsonObjCall></s:Body></s:Envelope>"#
        );
    }

    #[test]
    fn xml_without_the_element_is_not_rewritten() {
        assert!(xml_children(b"<a><b/></a>", &["x"], &[], &[]).is_none());
        assert!(xml_children(b"<a><b>", &["b"], &[], &[]).is_none());
    }
}
