//! What the four TwoFactor operations share: their response DTOs (fields in the C#
//! declaration order that Json.NET writes), the two Code enums, and the reading of
//! their request fields.
//!
//! Only `MaxOtpRequestExceededCode = 4000` and `InvalidOtpCode = 6000` are known from
//! the legacy system (each its enum's lowest member); the other members are ours,
//! above them, and stable: schemas/ and the README list them.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::wire::fields::Fields;

/// `CreateTwoFactorSmsOtpResponseCode`, also used by CreateOtpForRemindPassword.
pub const CREATE_CODES: &[(i64, &str)] = &[
    (4000, "MaxOtpRequestExceededCode"),
    (4001, "Success"),
    (4002, "InvalidRequest"),
    (4003, "ConfigurationNotFound"),
    (4004, "UserNotFound"),
    (4005, "SmsSendFailed"),
    (4006, "ResendTooSoon"),
    (4007, "ServiceUnavailable"),
];

/// `ValidateTwoFactorSmsOtpResponseCode`.
pub const VALIDATE_CODES: &[(i64, &str)] = &[
    (6000, "InvalidOtpCode"),
    (6001, "Success"),
    (6002, "OtpExpired"),
    (6003, "OtpAlreadyValidated"),
    (6004, "MaxAttemptsExceeded"),
    (6005, "OtpNotFound"),
    (6006, "OtpSuperseded"),
    (6007, "InvalidRequest"),
    (6008, "OtpNotValidated"),
    (6009, "ServiceUnavailable"),
];

/// A response DTO: its class name, its members in declaration order (Code as the
/// enum's number), and the enum it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Dto {
    pub name: &'static str,
    pub fields: Map<String, Value>,
    pub codes: &'static [(i64, &'static str)],
}

impl Dto {
    /// Whether the operation succeeded (`Success` or `IsValid`).
    pub fn ok(&self) -> bool {
        self.fields
            .get("Success")
            .or_else(|| self.fields.get("IsValid"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn exception_message(&self) -> Option<&str> {
        self.fields.get("ExceptionMessage").and_then(Value::as_str)
    }

    /// The enum member name of a Code number.
    pub fn code_name(&self, code: i64) -> Option<&'static str> {
        self.codes
            .iter()
            .find(|(n, _)| *n == code)
            .map(|(_, name)| *name)
    }
}

fn dto(name: &'static str, codes: &'static [(i64, &'static str)], fields: Value) -> Dto {
    let fields = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Dto {
        name,
        fields,
        codes,
    }
}

pub const CREATE: &str = "CreateTwoFactorSmsOtp";
pub const VALIDATE: &str = "ValidateTwoFactorSmsOtp";
pub const VALIDATE_BY_REFERENCE: &str = "ValidateTwoFactorSmsOtoByReferenceId";
pub const REMIND_PASSWORD: &str = "CreateOtpForRemindPassword";

pub struct Created {
    pub id: i64,
    pub otp_id_reference: String,
    pub reference_code: String,
    pub otp_code: Option<String>,
    pub remaining_seconds: i64,
    pub gsm_number: String,
}

pub fn create_response(r: &Created) -> Dto {
    dto(
        "CreateTwoFactorSmsOtpResponse",
        CREATE_CODES,
        json!({
            "Id": r.id,
            "OtpIdReference": r.otp_id_reference,
            "ReferenceCode": r.reference_code,
            "OtpCode": r.otp_code,
            "RemainingExpirationSeconds": r.remaining_seconds,
            "GsmNumber": r.gsm_number,
            "ExceptionMessage": null,
            "Success": true,
            "Code": 4001,
        }),
    )
}

/// A created OTP whose synchronous send failed: the OTP exists (the caller may still
/// validate it if the SMS arrives late), so its Id and references are given.
pub fn create_send_failed(r: &Created, message: &str) -> Dto {
    let mut d = create_response(r);
    d.fields.insert("ExceptionMessage".into(), json!(message));
    d.fields.insert("Success".into(), json!(false));
    d.fields.insert("Code".into(), json!(4005));
    d
}

pub fn remind_password_response(r: &Created) -> Dto {
    dto(
        "CreateOtpForRemindPasswordResponse",
        CREATE_CODES,
        json!({
            "Success": true,
            "OtpIdReference": r.otp_id_reference,
            "ReferenceCode": r.reference_code,
            "RemainingSeconds": r.remaining_seconds,
            "GsmNumber": r.gsm_number,
            "OtpCode": r.otp_code,
            "Code": 4001,
            "UserType": 0,
        }),
    )
}

pub fn validate_response(gsm_number: &str, change_request_id: Option<String>) -> Dto {
    dto(
        "ValidateTwoFactorSmsOtpResponse",
        VALIDATE_CODES,
        json!({
            "IsValid": true,
            "ExceptionMessage": null,
            "GsmNumber": gsm_number,
            "Code": 6001,
            "PasswordChangeRequestId": change_request_id,
            "UserType": 0,
        }),
    )
}

pub fn by_reference_response(valid: bool, message: Option<&str>, code: i64) -> Dto {
    dto(
        "ValidateTwoFactorSmsOtpByRefIdResponse",
        VALIDATE_CODES,
        json!({"IsValid": valid, "ExceptionMessage": message, "Code": code}),
    )
}

/// Runs a TwoFactor operation on its request fields: business failures become the
/// operation's failure DTO; faults of the server stay errors (the dialect gives them
/// their HTTP status). `gsm_number` is what a failure names, masked, if anything.
pub async fn answer<'a, F, Fut>(
    service: &str,
    params: &'a Value,
    gsm_number: Option<String>,
    run: F,
) -> Result<crate::services::Reply>
where
    F: FnOnce(Fields<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<Dto>>,
{
    let f = Fields::new("the request", params)?;
    match run(f).await {
        Ok(dto) => Ok(crate::services::Reply::Dto(dto)),
        Err(e) if e.is_server_fault() => Err(e),
        Err(e) => Ok(crate::services::Reply::Dto(failure(
            service,
            &e,
            gsm_number.as_deref(),
        ))),
    }
}

/// The failure DTO of an operation for an error (business or transport).
pub fn failure(service: &str, e: &Error, gsm_number: Option<&str>) -> Dto {
    // In this dialect an OTP is named by OtpIdReference or OtpId, not TransactionID.
    let message = match (e, service) {
        (Error::UnknownTransaction, VALIDATE_BY_REFERENCE) => {
            "No OTP with this OtpIdReference was created for this user.".to_string()
        }
        (Error::UnknownTransaction, _) => {
            "No OTP was found for this OtpIdReference or OtpId.".to_string()
        }
        _ => e.to_string(),
    };
    match service {
        CREATE => dto(
            "CreateTwoFactorSmsOtpResponse",
            CREATE_CODES,
            json!({
                "Id": 0, "OtpIdReference": null, "ReferenceCode": null, "OtpCode": null,
                "RemainingExpirationSeconds": 0, "GsmNumber": gsm_number, "ExceptionMessage": message,
                "Success": false, "Code": create_code(e),
            }),
        ),
        REMIND_PASSWORD => dto(
            "CreateOtpForRemindPasswordResponse",
            CREATE_CODES,
            json!({
                "Success": false, "OtpIdReference": null, "ReferenceCode": null, "RemainingSeconds": 0,
                "GsmNumber": gsm_number, "OtpCode": null, "Code": create_code(e), "UserType": 0,
            }),
        ),
        VALIDATE_BY_REFERENCE => by_reference_response(false, Some(&message), validate_code(e)),
        _ => dto(
            "ValidateTwoFactorSmsOtpResponse",
            VALIDATE_CODES,
            json!({
                "IsValid": false, "ExceptionMessage": message, "GsmNumber": gsm_number,
                "Code": validate_code(e), "PasswordChangeRequestId": null, "UserType": 0,
            }),
        ),
    }
}

fn create_code(e: &Error) -> i64 {
    match e {
        Error::SendLimitReached { .. } => 4000,
        Error::ConfigurationNotFound => 4003,
        Error::UserNotFound => 4004,
        Error::DeliveryFailed(_) => 4005,
        Error::ResendCooldown { .. } => 4006,
        Error::Unavailable | Error::Internal(_) => 4007,
        _ => 4002,
    }
}

fn validate_code(e: &Error) -> i64 {
    match e {
        Error::WrongCode { .. } => 6000,
        Error::CodeExpired => 6002,
        Error::CodeAlreadyUsed => 6003,
        Error::TooManyAttempts => 6004,
        Error::UnknownTransaction => 6005,
        Error::CodeSuperseded => 6006,
        Error::NotValidated => 6008,
        Error::Unavailable | Error::Internal(_) => 6009,
        _ => 6007,
    }
}

/// A GUID field: hyphenated or not, in braces, any case; answered lower-case and
/// hyphenated. The empty GUID
/// (what .NET sends for "none") reads as absent.
pub fn guid(f: &Fields<'_>, key: &str) -> Result<Option<String>> {
    let Some(text) = f.text(key)? else {
        return Ok(None);
    };
    let id = uuid::Uuid::try_parse(text.trim())
        .map_err(|_| Error::invalid(format!("{key} must be a GUID.")))?;
    Ok((!id.is_nil()).then(|| id.hyphenated().to_string()))
}

/// A whole number within `range`; 0 or absent is None ("use the configuration's").
pub fn limit(
    f: &Fields<'_>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>> {
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
