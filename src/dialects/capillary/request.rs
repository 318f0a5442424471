//! Reading an /auth/v1 request: a JSON object, with the older `mobile` shape and the
//! `cap_*` headers clients send alongside (or instead of) body fields.

use serde_json::Value;

use super::codes::Failure;
use crate::core::brands::{Identifier, IdentifierKind};
use crate::wire::fields::Fields;

/// The `cap_*` headers clients send alongside (or instead of) body fields.
#[derive(Debug, Clone, Default)]
pub struct CapHeaders {
    pub brand: Option<String>,
    pub device_id: Option<String>,
    pub mobile: Option<String>,
}

/// One request as the dialect decoded it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The JSON body, an object.
    pub body: Value,
    /// Came in on a /web/ route.
    pub web: bool,
    pub headers: CapHeaders,
}

/// The kind an `identifierType` names, in any case.
pub fn identifier_kind(s: &str) -> Option<IdentifierKind> {
    match s.trim().to_ascii_uppercase().as_str() {
        "MOBILE" => Some(IdentifierKind::Mobile),
        "EMAIL" => Some(IdentifierKind::Email),
        "USERNAME" => Some(IdentifierKind::Username),
        _ => None,
    }
}

fn nonblank(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Call {
    pub fn fields(&self) -> Result<Fields<'_>, Failure> {
        Fields::new("the request", &self.body).map_err(Failure::invalid)
    }

    fn text(&self, key: &str) -> Result<Option<String>, Failure> {
        self.fields()?
            .text(key)
            .map(nonblank)
            .map_err(Failure::invalid)
    }

    /// `brand`, else the `cap_brand` header.
    pub fn brand_name(&self) -> Result<String, Failure> {
        self.text("brand")?
            .or_else(|| nonblank(self.headers.brand.clone()))
            .ok_or_else(|| Failure::invalid("brand is required."))
    }

    /// `deviceId`, else the `cap_device_id` header; required on the mobile routes, not
    /// used on the web ones.
    pub fn device_id(&self) -> Result<Option<String>, Failure> {
        if self.web {
            return Ok(None);
        }
        let d = self
            .text("deviceId")?
            .or_else(|| nonblank(self.headers.device_id.clone()))
            .ok_or_else(|| Failure::invalid("deviceId is required by the mobile API."))?;
        if d.len() > 200 {
            return Err(Failure::invalid("deviceId is longer than 200 characters."));
        }
        Ok(Some(d))
    }

    pub fn session_id(&self) -> Result<String, Failure> {
        self.text("sessionId")?
            .ok_or_else(|| Failure::invalid("sessionId is required."))
    }

    /// `identifierType` + `identifierValue`; or, in the older shape, `mobile`,
    /// `mobile_temp`, `mobileTemp` or the `cap_mobile` header as a MOBILE identifier.
    pub fn identifier(&self) -> Result<Identifier, Failure> {
        let kind = self.text("identifierType")?;
        let value = self.text("identifierValue")?;
        let (kind, value) = match kind {
            Some(k) => (
                identifier_kind(&k).ok_or_else(|| Failure::of(1546))?,
                value.ok_or_else(|| Failure::invalid("identifierValue is required."))?,
            ),
            None => {
                let mut alias = None;
                for key in ["mobile", "mobile_temp", "mobileTemp"] {
                    alias = alias.or(self.text(key)?);
                }
                match alias.or_else(|| nonblank(self.headers.mobile.clone())) {
                    Some(m) => (IdentifierKind::Mobile, m),
                    None if value.is_some() => {
                        return Err(Failure::invalid(
                            "identifierType is required with identifierValue.",
                        ));
                    }
                    None => {
                        return Err(Failure::invalid(
                            "identifierType and identifierValue are required.",
                        ));
                    }
                }
            }
        };
        Ok(Identifier {
            kind,
            value: normalise(kind, &value)?,
        })
    }
}

fn normalise(kind: IdentifierKind, value: &str) -> Result<String, Failure> {
    let v = value.trim();
    match kind {
        IdentifierKind::Mobile => {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            let allowed = v
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            if !allowed || !(6..=15).contains(&digits.len()) {
                return Err(Failure::invalid(
                    "identifierValue must be a mobile number of 6 to 15 digits.",
                ));
            }
            Ok(digits)
        }
        IdentifierKind::Email => {
            let ok = v.len() <= 254
                && !v.chars().any(char::is_whitespace)
                && v.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.contains('@')
                });
            if !ok {
                return Err(Failure::invalid(
                    "identifierValue must be an e-mail address.",
                ));
            }
            Ok(v.to_lowercase())
        }
        IdentifierKind::Username => {
            if v.len() > 254 {
                return Err(Failure::invalid(
                    "identifierValue is longer than 254 characters.",
                ));
            }
            Ok(crate::core::users::key(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_normalised_and_checked() {
        assert_eq!(
            normalise(IdentifierKind::Mobile, "+62 812-3456-789").unwrap(),
            "628123456789"
        );
        assert_eq!(
            normalise(IdentifierKind::Mobile, "12ab45")
                .unwrap_err()
                .code,
            1519
        );
        assert_eq!(
            normalise(IdentifierKind::Email, " A@B.com").unwrap(),
            "a@b.com".to_string()
        );
        assert!(normalise(IdentifierKind::Email, "a@b").is_err());
        assert_eq!(identifier_kind("username"), Some(IdentifierKind::Username));
        assert_eq!(identifier_kind("EXTERNALID"), None);
    }
}
