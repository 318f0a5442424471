//! The TwoFactor response DTOs: their members in the C# declaration order that Json.NET
//! writes, the two Code enums, and the DataContractSerializer form of each.
//!
//! Only `MaxOtpRequestExceededCode = 4000` and `InvalidOtpCode = 6000` are known from
//! the legacy system (each its enum's lowest member); the other members are ours,
//! above them, and stable: docs/dialects/twofactor.md lists them.

use serde_json::{Map, Value, json};

use crate::services::create_otp_for_remind_password as remind;
use crate::services::create_two_factor_sms_otp as create;
use crate::services::validate_two_factor_sms_otp as validate;
use crate::wire::xml::{self, EncodeOptions};

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

pub const RESPONSE_NS: &str = "http://schemas.datacontract.org/2004/07/BusinessLayer.Dto.Response";

/// A response DTO: its class name, its members in declaration order (Code as the
/// enum's number), and the enum it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Dto {
    pub name: &'static str,
    pub fields: Map<String, Value>,
    pub codes: &'static [(i64, &'static str)],
}

impl Dto {
    pub fn new(name: &'static str, codes: &'static [(i64, &'static str)], fields: Value) -> Dto {
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

pub fn created(o: &create::Outcome) -> Dto {
    let mut d = Dto::new(
        "CreateTwoFactorSmsOtpResponse",
        CREATE_CODES,
        json!({
            "Id": o.numeric_id,
            "OtpIdReference": o.transaction_id.as_str(),
            "ReferenceCode": o.reference,
            "OtpCode": o.code,
            "RemainingExpirationSeconds": o.remaining_seconds,
            "GsmNumber": o.phone_masked,
            "ExceptionMessage": null,
            "Success": true,
            "Code": 4001,
        }),
    );
    if o.delivery_failed {
        // The OTP exists (the caller may still validate it if the SMS arrives late),
        // so its Id and references are given.
        let message = "The OTP could not be sent: no SMS provider accepted the message.";
        d.fields.insert("ExceptionMessage".into(), json!(message));
        d.fields.insert("Success".into(), json!(false));
        d.fields.insert("Code".into(), json!(4005));
    }
    d
}

pub fn remind_password_created(o: &remind::Outcome) -> Dto {
    Dto::new(
        "CreateOtpForRemindPasswordResponse",
        CREATE_CODES,
        json!({
            "Success": true,
            "OtpIdReference": o.transaction_id.as_str(),
            "ReferenceCode": o.reference,
            "RemainingSeconds": o.remaining_seconds,
            "GsmNumber": o.phone_masked,
            "OtpCode": null,
            "Code": 4001,
            "UserType": 0,
        }),
    )
}

pub fn validated(o: &validate::Outcome) -> Dto {
    Dto::new(
        "ValidateTwoFactorSmsOtpResponse",
        VALIDATE_CODES,
        json!({
            "IsValid": true,
            "ExceptionMessage": null,
            "GsmNumber": o.destination_masked,
            "Code": 6001,
            "PasswordChangeRequestId": o.change_request_id,
            "UserType": 0,
        }),
    )
}

pub fn by_reference(valid: bool, message: Option<&str>, code: i64) -> Dto {
    Dto::new(
        "ValidateTwoFactorSmsOtpByRefIdResponse",
        VALIDATE_CODES,
        json!({"IsValid": valid, "ExceptionMessage": message, "Code": code}),
    )
}

/// As Json.NET writes the DTO: declaration order, Code as a number.
pub fn to_json(dto: &Dto) -> String {
    Value::Object(dto.fields.clone()).to_string()
}

/// As DataContractSerializer writes the DTO: members in ordinal order, Code as the
/// enum member's name, the response namespace.
pub fn to_xml(dto: &Dto) -> String {
    let mut members: Vec<(&String, &Value)> = dto.fields.iter().collect();
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let sorted: Map<String, Value> = members
        .into_iter()
        .map(|(k, v)| {
            let v = match (k.as_str(), v.as_i64()) {
                ("Code", Some(n)) => dto.code_name(n).map_or(v.clone(), |name| json!(name)),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    xml::encode(
        dto.name,
        &Value::Object(sorted),
        &EncodeOptions {
            namespace: Some(RESPONSE_NS),
            declare_xsi: true,
            soap: None,
        },
    )
}
