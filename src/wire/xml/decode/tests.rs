//! Tests of reading: document shapes, entities, limits, malformed input and
//! SOAP unwrapping.

use super::*;
use crate::wire::xml::SOAP11_NS;
use serde_json::json;

fn dec(xml: &str) -> Result<XmlDocument, XmlError> {
    decode(xml.as_bytes(), 64)
}

#[test]
fn elements_with_too_many_attributes_are_refused() {
    let many: String = (0..10_000).map(|i| format!(" a{i}=\"\"")).collect();
    let doc = format!("<R{many}/>");
    assert_eq!(decode(doc.as_bytes(), 64).unwrap_err(), XmlError::Malformed);
    let few: String = (0..32).map(|i| format!(" a{i}=\"\"")).collect();
    assert!(decode(format!("<R{few}/>").as_bytes(), 64).is_ok());
}

#[test]
fn decodes_plain_document() {
    let doc = dec(r#"<?xml version="1.0" encoding="utf-8"?>
        <!-- leading comment -->
        <a:Req xmlns:a="urn:otp" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
            <a:Org_Id>42</a:Org_Id>
            <a:Feedback_IM_x0026_SR> spaced </a:Feedback_IM_x0026_SR>
            <a:Empty/>
            <a:Empty2></a:Empty2>
            <a:Gone i:nil="true"/>
            <?pi ignored?>
        </a:Req>
        "#)
    .unwrap();
    assert_eq!(doc.root_name, "Req");
    assert_eq!(doc.root_namespace.as_deref(), Some("urn:otp"));
    assert_eq!(doc.soap, None);
    assert_eq!(
        doc.value,
        json!({"Org_Id": "42", "Feedback_IM&SR": " spaced ", "Empty": "", "Empty2": "", "Gone": null})
    );
}

#[test]
fn accepts_bom_and_strips_prefixes() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(
        b"<p:R xmlns:p='urn:p'><q:X xmlns:q='urn:q'>1</q:X><undeclared:Y>2</undeclared:Y></p:R>",
    );
    let doc = decode(&bytes, 4).unwrap();
    assert_eq!(doc.root_name, "R");
    assert_eq!(doc.value, json!({"X": "1", "Y": "2"}));
    let doc = dec("<R xmlns='urn:default'/>").unwrap();
    assert_eq!(doc.root_namespace.as_deref(), Some("urn:default"));
    assert_eq!(doc.value, json!(""));
    assert_eq!(dec("<R/>").unwrap().root_namespace, None);
}

#[test]
fn nil_attribute_with_any_prefix() {
    let doc = dec(concat!(
        r#"<R xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:p2="http://www.w3.org/2001/XMLSchema-instance">"#,
        r#"<A xsi:nil="true"/><B p2:nil="true"></B><C xsi:nil="false">text</C><D i:nil="true">ignored</D></R>"#
    ))
    .unwrap();
    assert_eq!(
        doc.value,
        json!({"A": null, "B": null, "C": "text", "D": null})
    );
    assert_eq!(dec(r#"<R i:nil="true"/>"#).unwrap().value, Value::Null);
}

#[test]
fn repeated_children_become_arrays() {
    let doc = dec("<R><A>1</A><B>x</B><A>2</A>\n<A>3</A><C><Item>only</Item></C><D><Item>1</Item><Other/></D></R>").unwrap();
    assert_eq!(
        doc.value,
        json!({"A": ["1", "2", "3"], "B": "x", "C": ["only"], "D": {"Item": "1", "Other": ""}})
    );
    let keys: Vec<&String> = doc.value.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["A", "B", "C", "D"]);
    assert_eq!(
        dec("<R><Item>a</Item><Item/></R>").unwrap().value,
        json!(["a", ""])
    );
    // `item` is not `Item`.
    assert_eq!(
        dec("<R><item>a</item></R>").unwrap().value,
        json!({"item": "a"})
    );
}

#[test]
fn text_entities_and_cdata() {
    let doc = dec("<R><T>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42;&#x1F600;</T><C><![CDATA[<raw> & ]]>tail</C><M>x<!-- c -->y</M></R>").unwrap();
    assert_eq!(
        doc.value,
        json!({"T": "a <b> & \"c\" 'd' AB\u{1F600}", "C": "<raw> & tail", "M": "xy"})
    );
    // Text mixed with child elements is ignored.
    assert_eq!(
        dec("<R>junk<A>1</A>more</R>").unwrap().value,
        json!({"A": "1"})
    );
    // Line breaks are normalised; an escaped carriage return survives.
    assert_eq!(
        dec("<R>a\r\nb\rc&#13;</R>").unwrap().value,
        json!("a\nb\nc\r")
    );
    // Whitespace-only text is kept for leaf elements.
    assert_eq!(dec("<R>  </R>").unwrap().value, json!("  "));
}

#[test]
fn bad_references_are_malformed() {
    assert_eq!(dec("<R>&nbsp;</R>"), Err(XmlError::Malformed));
    assert_eq!(dec("<R>&undefined;</R>"), Err(XmlError::Malformed));
    assert_eq!(dec("<R>a & b</R>"), Err(XmlError::Malformed));
    assert_eq!(dec("<R>&#;</R>"), Err(XmlError::Malformed));
    assert_eq!(dec("<R>&#x;</R>"), Err(XmlError::Malformed));
    assert_eq!(dec("<R>&#0;</R>"), Err(XmlError::Malformed));
    assert_eq!(dec("<R>&#xD800;</R>"), Err(XmlError::Malformed));
    assert_eq!(dec("<R>&#x110000;</R>"), Err(XmlError::Malformed));
    assert_eq!(
        dec("<R>&#99999999999999999999;</R>"),
        Err(XmlError::Malformed)
    );
    assert_eq!(dec("<R>&#+65;</R>"), Err(XmlError::Malformed));
    assert_eq!(dec(r#"<R a="&bogus;"/>"#), Err(XmlError::Malformed));
}

#[test]
fn doctype_is_rejected() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"#;
    assert_eq!(dec(billion_laughs), Err(XmlError::Dtd));
    assert_eq!(dec("<!DOCTYPE R><R/>"), Err(XmlError::Dtd));
    assert_eq!(dec("<!doctype R><R/>"), Err(XmlError::Dtd));
    assert_eq!(
        dec(r#"<!DOCTYPE R SYSTEM "file:///etc/passwd"><R>&xxe;</R>"#),
        Err(XmlError::Dtd)
    );
    assert_eq!(dec("<!DOCTYPE R [ <!ENTITY x 'y'>"), Err(XmlError::Dtd));
    assert_eq!(dec("<R><!DOCTYPE R></R>"), Err(XmlError::Dtd));
}

#[test]
fn depth_limit() {
    assert!(decode(b"<a><b><c>x</c></b></a>", 3).is_ok());
    assert_eq!(
        decode(b"<a><b><c>x</c></b></a>", 2),
        Err(XmlError::TooDeep(2))
    );
    assert_eq!(decode(b"<a><b><c/></b></a>", 2), Err(XmlError::TooDeep(2)));
    assert_eq!(decode(b"<a/>", 0), Err(XmlError::TooDeep(0)));
    // The SOAP envelope counts: Envelope=1, Body=2, payload=3.
    let soap =
        format!(r#"<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body><R>x</R></s:Body></s:Envelope>"#);
    assert!(decode(soap.as_bytes(), 3).is_ok());
    assert_eq!(decode(soap.as_bytes(), 2), Err(XmlError::TooDeep(2)));
}

#[test]
fn malformed_inputs() {
    let cases: &[&[u8]] = &[
        b"",
        b"   \n ",
        b"<!-- only a comment -->",
        b"<R>",
        b"<R><A>1</A>",
        b"<R><A>1</R>",
        b"<R></A>",
        b"</R>",
        b"<R/><S/>",
        b"<R></R><R></R>",
        b"text<R/>",
        b"<R/>text",
        b"<R/>&amp;",
        b"<![CDATA[x]]><R/>",
        b"<R attr=unquoted/>",
        b"<R a='1' a='2'/>",
        b"<R a='<'/>",
        b"<R",
        b"<R><![CDATA[open</R>",
        b"<R><!-- open </R>",
        b"\x00\x01\x02\x03",
        b"\xFF\xFE<\x00R\x00/\x00>\x00",
        b"<R>\xC3\x28</R>",
        b"<R>\x01</R>",
        b"<R/><?xml version='1.0'?>",
        b" <?xml version='1.0'?><R/>",
        b"garbage",
        b"<>",
        b"< />",
    ];
    for case in cases {
        assert_eq!(
            decode(case, 64),
            Err(XmlError::Malformed),
            "input {:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn soap11_unwrapping_with_header_and_prefixes() {
    let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tem="http://tempuri.org/">
  <soapenv:Header>
<tem:Auth><tem:Token>secret</tem:Token></tem:Auth>
  </soapenv:Header>
  <soapenv:Body>
<tem:ValidateOtp>
  <tem:Org_Id>4000</tem:Org_Id>
  <tem:Otp>123456</tem:Otp>
</tem:ValidateOtp>
  </soapenv:Body>
</soapenv:Envelope>"#;
    let doc = dec(xml).unwrap();
    assert_eq!(doc.soap, Some(SoapVersion::V11));
    assert_eq!(doc.root_name, "ValidateOtp");
    assert_eq!(doc.root_namespace.as_deref(), Some("http://tempuri.org/"));
    assert_eq!(doc.value, json!({"Org_Id": "4000", "Otp": "123456"}));

    let xml = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><GetStatus xmlns="urn:otp"/></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    let doc = dec(xml).unwrap();
    assert_eq!(
        (doc.root_name.as_str(), doc.root_namespace.as_deref()),
        ("GetStatus", Some("urn:otp"))
    );
    assert_eq!(doc.value, json!(""));
}

#[test]
fn soap12_unwrapping_with_default_namespace() {
    let xml = r#"<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope">
  <Header><Action>urn:x</Action></Header>
  <Body>
<Generate xmlns="http://tempuri.org/"><Org_Id>7</Org_Id></Generate>
<Ignored xmlns="urn:other"/>
  </Body>
</Envelope>"#;
    let doc = dec(xml).unwrap();
    assert_eq!(doc.soap, Some(SoapVersion::V12));
    assert_eq!(doc.root_name, "Generate");
    assert_eq!(doc.root_namespace.as_deref(), Some("http://tempuri.org/"));
    assert_eq!(doc.value, json!({"Org_Id": "7"}));

    let xml = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><m:Item xmlns:m="urn:m"><m:Item>1</m:Item></m:Item></env:Body></env:Envelope>"#;
    let doc = dec(xml).unwrap();
    assert_eq!(doc.root_name, "Item");
    assert_eq!(doc.value, json!(["1"]));
}

#[test]
fn empty_or_missing_soap_body() {
    let ns = SOAP11_NS;
    for xml in [
        format!(r#"<s:Envelope xmlns:s="{ns}"><s:Body/></s:Envelope>"#),
        format!(r#"<s:Envelope xmlns:s="{ns}"><s:Body>  text only </s:Body></s:Envelope>"#),
        format!(r#"<s:Envelope xmlns:s="{ns}"><s:Header><X/></s:Header></s:Envelope>"#),
        format!(r#"<s:Envelope xmlns:s="{ns}"></s:Envelope>"#),
    ] {
        assert_eq!(dec(&xml), Err(XmlError::EmptySoapBody), "{xml}");
    }
    // A malformed envelope is malformed, not empty.
    assert_eq!(
        dec(&format!(r#"<s:Envelope xmlns:s="{ns}"><s:Body/>"#)),
        Err(XmlError::Malformed)
    );
}

#[test]
fn envelope_in_another_namespace_is_not_soap() {
    let doc = dec(r#"<Envelope xmlns="urn:not-soap"><Body><X>1</X></Body></Envelope>"#).unwrap();
    assert_eq!(doc.soap, None);
    assert_eq!(doc.root_name, "Envelope");
    assert_eq!(doc.value, json!({"Body": {"X": "1"}}));
}
