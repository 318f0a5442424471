//! The user document LoginApp answers (seed 001), field for field in the legacy
//! order and types: almost every value a string, the booleans spelt as the legacy
//! system spells each one, `UserLicenseDetails` with real JSON types.

use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::core::otp::Policy;
use crate::core::users::User;

/// Profile fields a user record may set, with the value used when it does not.
pub const PROFILE_DEFAULTS: &[(&str, Option<&str>)] = &[
    ("TimezoneMins", Some("0")),
    ("CustomLogo", Some("")),
    ("IsExecutive", Some("False")),
    ("HasNTID", Some("0")),
    ("Designation", None),
    ("Location", Some("")),
    ("Location_Name", Some("")),
    ("CallMe", Some("FALSE")),
    ("GPS", Some("FALSE")),
    ("Feedback_IM&SR", Some("NULL")),
    ("RPT_Widgets_Access", Some("False")),
    ("Feature", Some("")),
    ("UserProfileImage", Some("")),
    ("DisplayDateFormat", Some("yyyy-MM-dd")),
    ("DisplayDateTimeFormat", Some("yyyy-MM-dd hh:mm:ss tt")),
    ("IsAppLogEnabled", Some("false")),
    ("License_Modules", Some("")),
    ("PM_ApproveRecords_Access", Some("False")),
    ("LicenseEdition", Some("")),
    ("IsMultiLogin", Some("False")),
    ("IsGDPRAccepted", Some("False")),
    ("IsGDPREnabled", Some("False")),
    ("mPIN_SkipCount", Some("0")),
    ("Is_mPIN_Set", Some("False")),
    ("NT_UID", None),
];

pub fn profile_fields() -> Vec<&'static str> {
    PROFILE_DEFAULTS.iter().map(|(k, _)| *k).collect()
}

/// `{"User":{"UserDetails":[{…}],"DBDetails":[]}}` for a logged-in user.
pub fn document(user: &User, policy: &Policy, settings: &Settings, session_token: &str) -> Value {
    let profile: Map<String, Value> = serde_json::from_str(&user.profile).unwrap_or_default();
    let p = |key: &str| -> Value {
        match profile.get(key) {
            Some(Value::String(s)) => Value::String(s.clone()),
            Some(Value::Null) => Value::Null,
            _ => PROFILE_DEFAULTS
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, d)| d.map(|s| Value::String(s.to_string())))
                .unwrap_or(Value::Null),
        }
    };
    let s = |v: &dyn ToString| Value::String(v.to_string());
    let mut d = Map::new();
    d.insert("UserId".into(), s(&user.id));
    d.insert("EmailId".into(), s(&user.email));
    d.insert("UserName".into(), s(&user.user_name));
    for k in ["TimezoneMins", "CustomLogo", "IsExecutive", "HasNTID"] {
        d.insert(k.into(), p(k));
    }
    d.insert("Org_Id".into(), s(&user.org_id));
    d.insert("Org_Name".into(), s(&user.org_name));
    for k in ["Designation", "Location", "Location_Name"] {
        d.insert(k.into(), p(k));
    }
    d.insert("WsVersion".into(), s(&settings.summit.ws_version));
    for k in ["CallMe", "GPS", "Feedback_IM&SR", "RPT_Widgets_Access"] {
        d.insert(k.into(), p(k));
    }
    d.insert("InstanceLable".into(), s(&settings.summit.instance_label));
    for k in [
        "Feature",
        "UserProfileImage",
        "DisplayDateFormat",
        "DisplayDateTimeFormat",
    ] {
        d.insert(k.into(), p(k));
    }
    d.insert("ExpiryTime".into(), s(&settings.session.lifetime_seconds));
    d.insert(
        "SessionIdleTimeout".into(),
        s(&settings.session.idle_timeout_minutes),
    );
    for k in [
        "IsAppLogEnabled",
        "License_Modules",
        "PM_ApproveRecords_Access",
    ] {
        d.insert(k.into(), p(k));
    }
    d.insert(
        "UserLicenseDetails".into(),
        json!({
            "LicenseEdition": p("LicenseEdition"),
            "IsConcurrentAnalyst": false,
            "IsLoggedInAsEndUser": false,
            "ConcurrentLicenseCount": 0,
            "IsSessionKilled": false,
            "DomainId": null,
            "SupFun": null,
            "WorkgroupId": null,
            "LimitationCount": null,
            "IsPoolLicConsidered": false,
            "SessionId": session_token,
            "IsSessionExpired": false,
            "WorkgroupParentID": null,
        }),
    );
    d.insert("LoginUID".into(), s(&user.login_uid));
    for k in [
        "IsMultiLogin",
        "IsGDPRAccepted",
        "IsGDPREnabled",
        "mPIN_SkipCount",
        "Is_mPIN_Set",
    ] {
        d.insert(k.into(), p(k));
    }
    d.insert("MobileNo".into(), s(&user.mobile));
    d.insert("Domain_ID".into(), s(&user.domain_id));
    d.insert("NT_UID".into(), p("NT_UID"));
    d.insert("Frm_UID".into(), s(&user.login_name));
    d.insert("OTPLength".into(), s(&policy.length));
    d.insert("OTPExpiryInMinutes".into(), s(&policy.expiry_minutes()));
    d.insert("MaxAttempts".into(), s(&policy.max_attempts));
    // Moved in, not interpolated: `json!` would copy the whole document through
    // `to_value`.
    let mut user = Map::new();
    user.insert("UserDetails".into(), Value::Array(vec![Value::Object(d)]));
    user.insert("DBDetails".into(), Value::Array(Vec::new()));
    let mut document = Map::new();
    document.insert("User".into(), Value::Object(user));
    Value::Object(document)
}
