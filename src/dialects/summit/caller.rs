//! Who the caller of an operation that needs one is, from `_ProxyDetails`: AuthType
//! FORM with UserName and Password, AuthType APIKEY (any case) with APIKey, or the
//! TokenID of a session. The same for every ServiceName otpgate answers itself;
//! forwarded ServiceNames keep their own credentials (forward.rs).

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::services::caller::Caller;
use crate::wire::fields::Fields;

/// The caller of a request from the client at `client`.
pub fn decode(proxy: &Fields<'_>, client: IpAddr) -> Result<Caller> {
    let auth_type = proxy.text("AuthType")?.unwrap_or_default();
    let auth_type = auth_type.trim();
    if auth_type.eq_ignore_ascii_case("FORM") {
        return Ok(Caller::Password {
            login: proxy.required_text("UserName")?,
            password: proxy.required_text("Password")?,
            client,
        });
    }
    if auth_type.eq_ignore_ascii_case("APIKEY") {
        return Ok(Caller::ApiKey {
            key: proxy.required_text("APIKey")?,
        });
    }
    match proxy.text("TokenID")?.filter(|t| !t.trim().is_empty()) {
        Some(token) => Ok(Caller::Session { token }),
        None => Err(Error::invalid(format!(
            "AuthType '{auth_type}' is not supported in _ProxyDetails: use FORM with UserName and Password, APIKEY with APIKey, or send the TokenID of a session."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caller(proxy: serde_json::Value) -> Result<Caller> {
        decode(
            &Fields::new("_ProxyDetails", &proxy)?,
            IpAddr::from([192, 0, 2, 1]),
        )
    }

    #[test]
    fn api_keys_are_read_with_authtype_in_any_case() {
        for spelling in ["APIKEY", "APIKey", "apikey", " ApiKey "] {
            let c = caller(json!({"AuthType": spelling, "apikey": "k=", "TokenID": "AB"}));
            assert!(
                matches!(c, Ok(Caller::ApiKey { key }) if key == "k="),
                "{spelling}"
            );
        }
        let missing = caller(json!({"AuthType": "APIKEY", "APIKey": ""}));
        assert_eq!(
            missing.err().map(|e| e.to_string()).as_deref(),
            Some("APIKey is required in _ProxyDetails.")
        );
    }

    #[test]
    fn form_then_token() {
        assert!(matches!(
            caller(json!({"AuthType": "form", "UserName": "u", "Password": "p"})),
            Ok(Caller::Password { .. })
        ));
        assert!(matches!(
            caller(json!({"AuthType": "", "TokenID": "AB"})),
            Ok(Caller::Session { .. })
        ));
        assert!(caller(json!({"AuthType": "NTLM"})).is_err());
    }
}
