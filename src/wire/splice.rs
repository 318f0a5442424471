//! Changing one object of a request body and leaving every other byte as it came: the
//! object is found by its path of member (or element) names, compared without case,
//! and only its own text is replaced. Used to rewrite a request before it is
//! forwarded, so the upstream receives what the client wrote, but for that object.

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// An object's members in the order written, duplicates kept, each value as its raw
/// text (a slice of the input, so its offset is known).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// How many members of the top-level JSON object are named `name` (without case);
/// None when the body is not a JSON object (a double-encoded one is looked into).
pub fn json_member_count(body: &[u8], name: &str) -> Option<usize> {
    let text = std::str::from_utf8(body).ok()?;
    let text = text.trim_start_matches('\u{feff}').trim();
    let inner: String;
    let text = if text.starts_with('"') {
        inner = serde_json::from_str(text).ok()?;
        inner.as_str()
    } else {
        text
    };
    let members: Members = serde_json::from_str(text).ok()?;
    Some(
        members
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count(),
    )
}

/// How many elements anywhere in an XML body have the local name `name` (without
/// case); None when it is not well-formed.
pub fn xml_element_count(body: &[u8], name: &str) -> Option<usize> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = Reader::from_str(text);
    let mut n = 0;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                let qname = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                if local(&qname).eq_ignore_ascii_case(name) {
                    n += 1;
                }
            }
            Event::Eof => return Some(n),
            _ => {}
        }
    }
}

/// The body with the JSON object at `path` replaced by what `edit` makes of it; None
/// when the body is not JSON or has no object there. A body that is itself a JSON
/// string holding the document (double-encoded) stays so.
pub fn json_object(
    body: &[u8],
    path: &[&str],
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    // A byte order mark stays where it was.
    let (bom, text) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let trimmed = text.trim();
    let changed = if trimmed.starts_with('"') {
        let inner: String = serde_json::from_str(trimmed).ok()?;
        serde_json::to_string(&json_in_text(&inner, path, edit)?).ok()?
    } else {
        json_in_text(text, path, edit)?
    };
    Some(format!("{bom}{changed}").into_bytes())
}

fn json_in_text(
    text: &str,
    path: &[&str],
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Option<String> {
    // Walk down by raw slices of the text, so their offsets are known.
    // Each step must name exactly one member: with two, which one the reader of the
    // body takes is its own choice.
    let mut raw: &str = text;
    for name in path {
        let members: Members = serde_json::from_str(raw).ok()?;
        let mut found = members
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let (_, value) = found.next()?;
        if found.next().is_some() {
            return None;
        }
        raw = value.get();
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
                if ends_with(&stack, path) && (target_depth.is_some() || insert.is_some()) {
                    // A second element at the path: which one counts is the reader's choice.
                    return None;
                }
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
                let mut at = stack.clone();
                at.push(local.to_ascii_lowercase());
                if insert.is_some() && ends_with(&at, path) {
                    return None;
                }
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
    let (end, prefix) = insert.filter(|(at, _)| *at > 0)?;
    // The new children take the place of the first one removed (members of a WCF
    // DataContract are read in order), else go before the end tag.
    let at = cuts.first().map_or(end, |(start, _)| *start);
    let mut out = String::with_capacity(text.len() + 128);
    let mut added = String::new();
    for (name, value) in add {
        let value = quick_xml::escape::escape(value.as_str());
        added.push_str(&format!("<{prefix}{name}>{value}</{prefix}{name}>"));
    }
    let mut pos = 0;
    let mut placed = false;
    for (start, stop) in cuts {
        out.push_str(&text[pos..start]);
        if !placed {
            out.push_str(&added);
            placed = true;
        }
        pos = stop;
    }
    if !placed {
        out.push_str(&text[pos..at]);
        out.push_str(&added);
        pos = at;
    }
    out.push_str(&text[pos..]);
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
  <a:AuthType>APIKEY</a:AuthType><a:APIKey>K&amp;&lt;</a:APIKey><a:OrgID>1</a:OrgID>
 </a:_ProxyDetails><a:Other>&amp;keep</a:Other></a:objCommonParameters>
</a:CommonWS_JsonObjCall></s:Body></s:Envelope>"#
        );
    }

    #[test]
    fn a_path_that_names_two_objects_is_not_rewritten() {
        let json = br#"{"o":{"_ProxyDetails":{"TokenID":"A"},"_proxydetails":{"TokenID":"A"}}}"#;
        assert!(json_object(json, &["o", "_ProxyDetails"], edit).is_none());
        let dup = br#"{"o":{"p":{"TokenID":"A"},"p":{"TokenID":"B"}}}"#;
        assert!(json_object(dup, &["o", "p"], edit).is_none());
        let xml = b"<r><o><p><T>A</T></p><p><T>A</T></p></o></r>";
        assert!(xml_children(xml, &["o", "p"], &["T"], &[]).is_none());
        assert_eq!(
            json_member_count(br#"{"ServiceName":"a","servicename":"b"}"#, "ServiceName"),
            Some(2)
        );
        assert_eq!(
            xml_element_count(
                b"<a><ServiceName/><b><x:servicename>y</x:servicename></b></a>",
                "ServiceName"
            ),
            Some(2)
        );
    }

    #[test]
    fn a_byte_order_mark_is_kept() {
        let body = "\u{feff}{\"o\":{\"p\":{\"TokenID\":\"A\"}}}";
        let out = json_object(body.as_bytes(), &["o", "p"], edit).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\u{feff}{\"o\":{\"p\":{\"AuthType\":\"APIKEY\",\"APIKey\":\"K\"}}}"
        );
    }

    #[test]
    fn xml_without_the_element_is_not_rewritten() {
        assert!(xml_children(b"<a><b/></a>", &["x"], &[], &[]).is_none());
        assert!(xml_children(b"<a><b>", &["b"], &[], &[]).is_none());
    }
}
