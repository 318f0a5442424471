//! Reading TwoFactor requests: the body (JSON, DataContract XML with any member order
//! and with or without its namespace, or form data) as a field tree, then each
//! action's members into its service's input.

use actix_web::HttpRequest;
use actix_web::http::header;
use serde_json::{Map, Value};

use crate::core::ids::{ChallengeId, is_nil_guid, parse_guid};
use crate::error::{Error, Result};
use crate::services::create_otp_for_remind_password as remind;
use crate::services::create_two_factor_sms_otp as create;
use crate::services::validate_two_factor_sms_oto_by_reference_id as by_reference;
use crate::services::validate_two_factor_sms_otp::{self as validate, OtpRef};
use crate::wire::fields::Fields;
use crate::wire::{Format, json_object, xml};

/// What the body is, by Content-Type; without one, by its first byte.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Json,
    Xml,
    Form,
}

pub fn body_kind(req: &HttpRequest, body: &[u8]) -> Body {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Body::Form;
    }
    match Format::from_content_type(ct).unwrap_or_else(|| Format::sniff(body)) {
        Format::Xml => Body::Xml,
        Format::Json
            if ct.is_empty()
                && body.contains(&b'=')
                && !body.trim_ascii_start().starts_with(b"{") =>
        {
            Body::Form
        }
        Format::Json => Body::Json,
    }
}

/// The request as a field tree.
pub fn decode(req: &HttpRequest, body: &[u8], max_depth: usize) -> Result<Value, String> {
    let kind = body_kind(req, body);
    if body.iter().all(u8::is_ascii_whitespace) {
        // An empty form is a form without fields, answered as `{}` is; an empty JSON
        // or XML body is no document at all.
        if kind == Body::Form {
            return Ok(Value::Object(Map::new()));
        }
        return Err("The request body is empty.".into());
    }
    match kind {
        Body::Json => json_object(body, max_depth),
        Body::Xml => {
            let doc = xml::decode(body, max_depth).map_err(|e| match e {
                xml::XmlError::Malformed => "The request body is not well-formed XML.".to_string(),
                other => format!("The XML request was refused: {other}."),
            })?;
            match doc.value {
                v @ Value::Object(_) => Ok(v),
                Value::String(s) if s.trim().is_empty() => Ok(Value::Object(Map::new())),
                _ => Err("The XML request must hold the DTO's members as elements.".into()),
            }
        }
        Body::Form => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|_| "The request body is not valid form data.".to_string())?;
            Ok(Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ))
        }
    }
}

pub fn create(f: &Fields<'_>) -> Result<create::Input> {
    let customer = guid(f, "UserId")?.ok_or_else(|| Error::invalid("UserId is required."))?;
    let phone = gsm_number(f, "GsmNumber")?;
    let configuration_id = f.int("TwoFactorConfigurationId")?.unwrap_or(0);
    let max_sends = limit(f, "MaxSMSCount", 1..=1000)?;
    let send_window_minutes = limit(f, "MaxSMSInterval", 1..=1440)?;
    let expiry_minutes = limit(f, "OtpExpirationPeriod", 1..=1440)?;
    let wait_for_delivery = f.bool("IsSync")?.unwrap_or(false);
    // Accepted and not used.
    f.text("Source")?;
    if configuration_id < 0 {
        return Err(Error::invalid(
            "TwoFactorConfigurationId must not be negative.",
        ));
    }
    Ok(create::Input {
        customer,
        phone,
        configuration_id: (configuration_id != 0).then_some(configuration_id),
        max_sends,
        send_window_minutes,
        expiry_minutes,
        wait_for_delivery,
    })
}

pub fn validate(f: &Fields<'_>) -> Result<validate::Input> {
    let customer = guid(f, "UserId")?;
    // Accepted and not used.
    f.text("Email")?;
    let reference = f.text("OtpIdReference")?;
    let otp_id = f.int("OtpId")?.filter(|n| *n != 0);
    let code = f.required_text("OtpCode")?;
    let allow_revalidate = f.bool("IsReValidate")?.unwrap_or(false);
    let want_change_request_id = f.bool("IsReturnChangeRequestId")?.unwrap_or(false);
    let otp = match (reference, otp_id) {
        (Some(r), _) => OtpRef::Transaction(reference_id(&r)?),
        (None, None) => return Err(Error::invalid("OtpIdReference or OtpId is required.")),
        // Numeric ids are sequential: found by one, the OTP must also be the caller's.
        (None, Some(id)) => OtpRef::Numeric {
            id,
            customer: customer.clone().ok_or_else(|| {
                Error::invalid("UserId is required when the OTP is named by OtpId.")
            })?,
        },
    };
    Ok(validate::Input {
        customer,
        otp,
        code,
        allow_revalidate,
        want_change_request_id,
    })
}

pub fn by_reference(f: &Fields<'_>) -> Result<by_reference::Input> {
    let customer = guid(f, "UserId")?.ok_or_else(|| Error::invalid("UserId is required."))?;
    let reference = f.required_text("OtpIdReference")?;
    // Accepted and without effect: otpgate keeps no customer-to-GSM registry.
    f.bool("DeleteGsmFromOtherCustomers")?;
    Ok(by_reference::Input {
        customer,
        transaction_id: reference_id(&reference)?,
    })
}

pub fn remind_password(f: &Fields<'_>) -> Result<remind::Input> {
    Ok(remind::Input {
        login: f.required_text("UserName")?,
    })
}

fn reference_id(text: &str) -> Result<ChallengeId> {
    ChallengeId::parse(text).ok_or_else(|| Error::invalid("OtpIdReference must be a GUID."))
}

/// A GUID field, canonical; the empty GUID (what .NET sends for "none") reads as absent.
fn guid(f: &Fields<'_>, key: &str) -> Result<Option<String>> {
    let Some(text) = f.text(key)? else {
        return Ok(None);
    };
    let id = parse_guid(&text).ok_or_else(|| Error::invalid(format!("{key} must be a GUID.")))?;
    Ok((!is_nil_guid(&id)).then_some(id))
}

/// A whole number within `range`; 0 or absent is None ("use the configuration's").
fn limit(f: &Fields<'_>, key: &str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>> {
    match f.int(key)? {
        None | Some(0) => Ok(None),
        Some(n) if range.contains(&n) => Ok(Some(n)),
        Some(_) => Err(Error::invalid(format!(
            "{key} must be between 0 and {}.",
            range.end()
        ))),
    }
}

/// A GSM number: digits, optionally with `+`, spaces, dashes or brackets; 6 to 15 digits.
pub fn gsm_number(f: &Fields<'_>, key: &str) -> Result<String> {
    let raw = f.required_text(key)?;
    let raw = raw.trim();
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    let allowed = raw
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if !allowed || !(6..=15).contains(&digits) || raw[1..].contains('+') {
        return Err(Error::invalid(format!(
            "{key} must be a phone number of 6 to 15 digits."
        )));
    }
    Ok(raw.to_string())
}
