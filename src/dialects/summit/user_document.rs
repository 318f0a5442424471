//! The user document LoginApp answers (seed 001), field for field in the legacy
//! order and types: almost every value a string, the booleans spelt as the legacy
//! system spells each one, `UserLicenseDetails` with real JSON types.
//!
//! A typed document rather than a `serde_json::Value`: it is written straight to the
//! answer's bytes, without first inserting some sixty keys into maps (building that
//! tree alone was 4 % of a summit cycle's instructions, before writing and dropping it).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

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
#[derive(Serialize)]
pub struct Document {
    #[serde(rename = "User")]
    user: UserPart,
}

#[derive(Serialize)]
struct UserPart {
    #[serde(rename = "UserDetails")]
    details: [Details; 1],
    #[serde(rename = "DBDetails")]
    db_details: [(); 0],
}

/// A profile field: the user's own text, null, or the field's default.
type Profile = Option<Cow<'static, str>>;

#[derive(Serialize)]
struct Details {
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "EmailId")]
    email_id: String,
    #[serde(rename = "UserName")]
    user_name: String,
    #[serde(rename = "TimezoneMins")]
    timezone_mins: Profile,
    #[serde(rename = "CustomLogo")]
    custom_logo: Profile,
    #[serde(rename = "IsExecutive")]
    is_executive: Profile,
    #[serde(rename = "HasNTID")]
    has_ntid: Profile,
    #[serde(rename = "Org_Id")]
    org_id: String,
    #[serde(rename = "Org_Name")]
    org_name: String,
    #[serde(rename = "Designation")]
    designation: Profile,
    #[serde(rename = "Location")]
    location: Profile,
    #[serde(rename = "Location_Name")]
    location_name: Profile,
    #[serde(rename = "WsVersion")]
    ws_version: String,
    #[serde(rename = "CallMe")]
    call_me: Profile,
    #[serde(rename = "GPS")]
    gps: Profile,
    #[serde(rename = "Feedback_IM&SR")]
    feedback_im_sr: Profile,
    #[serde(rename = "RPT_Widgets_Access")]
    rpt_widgets_access: Profile,
    #[serde(rename = "InstanceLable")]
    instance_lable: String,
    #[serde(rename = "Feature")]
    feature: Profile,
    #[serde(rename = "UserProfileImage")]
    user_profile_image: Profile,
    #[serde(rename = "DisplayDateFormat")]
    display_date_format: Profile,
    #[serde(rename = "DisplayDateTimeFormat")]
    display_date_time_format: Profile,
    #[serde(rename = "ExpiryTime")]
    expiry_time: String,
    #[serde(rename = "SessionIdleTimeout")]
    session_idle_timeout: String,
    #[serde(rename = "IsAppLogEnabled")]
    is_app_log_enabled: Profile,
    #[serde(rename = "License_Modules")]
    license_modules: Profile,
    #[serde(rename = "PM_ApproveRecords_Access")]
    pm_approve_records_access: Profile,
    #[serde(rename = "UserLicenseDetails")]
    license: License,
    #[serde(rename = "LoginUID")]
    login_uid: String,
    #[serde(rename = "IsMultiLogin")]
    is_multi_login: Profile,
    #[serde(rename = "IsGDPRAccepted")]
    is_gdpr_accepted: Profile,
    #[serde(rename = "IsGDPREnabled")]
    is_gdpr_enabled: Profile,
    #[serde(rename = "mPIN_SkipCount")]
    mpin_skip_count: Profile,
    #[serde(rename = "Is_mPIN_Set")]
    is_mpin_set: Profile,
    #[serde(rename = "MobileNo")]
    mobile_no: String,
    #[serde(rename = "Domain_ID")]
    domain_id: String,
    #[serde(rename = "NT_UID")]
    nt_uid: Profile,
    #[serde(rename = "Frm_UID")]
    frm_uid: String,
    #[serde(rename = "OTPLength")]
    otp_length: String,
    #[serde(rename = "OTPExpiryInMinutes")]
    otp_expiry_in_minutes: String,
    #[serde(rename = "MaxAttempts")]
    max_attempts: String,
}

/// `UserLicenseDetails`: real JSON types, all fixed but the edition and the session.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct License {
    license_edition: Profile,
    is_concurrent_analyst: bool,
    is_logged_in_as_end_user: bool,
    concurrent_license_count: u32,
    is_session_killed: bool,
    domain_id: (),
    sup_fun: (),
    workgroup_id: (),
    limitation_count: (),
    is_pool_lic_considered: bool,
    session_id: String,
    is_session_expired: bool,
    #[serde(rename = "WorkgroupParentID")]
    workgroup_parent_id: (),
}

/// The document for a logged-in user.
pub fn document(
    user: &User,
    policy: &Policy,
    settings: &Settings,
    session_token: &str,
) -> Document {
    let profile: Map<String, Value> = serde_json::from_str(&user.profile).unwrap_or_default();
    let p = |key: &str| -> Profile {
        match profile.get(key) {
            Some(Value::String(s)) => Some(Cow::Owned(s.clone())),
            Some(Value::Null) => None,
            _ => PROFILE_DEFAULTS
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, d)| d.map(Cow::Borrowed)),
        }
    };
    let details = Details {
        user_id: user.id.to_string(),
        email_id: user.email.clone(),
        user_name: user.user_name.clone(),
        timezone_mins: p("TimezoneMins"),
        custom_logo: p("CustomLogo"),
        is_executive: p("IsExecutive"),
        has_ntid: p("HasNTID"),
        org_id: user.org_id.to_string(),
        org_name: user.org_name.clone(),
        designation: p("Designation"),
        location: p("Location"),
        location_name: p("Location_Name"),
        ws_version: settings.summit.ws_version.clone(),
        call_me: p("CallMe"),
        gps: p("GPS"),
        feedback_im_sr: p("Feedback_IM&SR"),
        rpt_widgets_access: p("RPT_Widgets_Access"),
        instance_lable: settings.summit.instance_label.clone(),
        feature: p("Feature"),
        user_profile_image: p("UserProfileImage"),
        display_date_format: p("DisplayDateFormat"),
        display_date_time_format: p("DisplayDateTimeFormat"),
        expiry_time: settings.session.lifetime_seconds.to_string(),
        session_idle_timeout: settings.session.idle_timeout_minutes.to_string(),
        is_app_log_enabled: p("IsAppLogEnabled"),
        license_modules: p("License_Modules"),
        pm_approve_records_access: p("PM_ApproveRecords_Access"),
        license: License {
            license_edition: p("LicenseEdition"),
            is_concurrent_analyst: false,
            is_logged_in_as_end_user: false,
            concurrent_license_count: 0,
            is_session_killed: false,
            domain_id: (),
            sup_fun: (),
            workgroup_id: (),
            limitation_count: (),
            is_pool_lic_considered: false,
            session_id: session_token.to_string(),
            is_session_expired: false,
            workgroup_parent_id: (),
        },
        login_uid: user.login_uid.to_string(),
        is_multi_login: p("IsMultiLogin"),
        is_gdpr_accepted: p("IsGDPRAccepted"),
        is_gdpr_enabled: p("IsGDPREnabled"),
        mpin_skip_count: p("mPIN_SkipCount"),
        is_mpin_set: p("Is_mPIN_Set"),
        mobile_no: user.mobile.to_string(),
        domain_id: user.domain_id.to_string(),
        nt_uid: p("NT_UID"),
        frm_uid: user.login_name.to_string(),
        otp_length: policy.length.to_string(),
        otp_expiry_in_minutes: policy.expiry_minutes().to_string(),
        max_attempts: policy.max_attempts.to_string(),
    };
    Document {
        user: UserPart {
            details: [details],
            db_details: [],
        },
    }
}
