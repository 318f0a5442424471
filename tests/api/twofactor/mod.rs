//! The TwoFactor dialect: every operation on its ASP.NET route (JSON, XML, form) and
//! through the Summit envelope, against the seed's samples.

use otpgate::db::twofactor_configs::TwoFactorConfig;
use serde_json::{Value, json};

use crate::support::*;

mod bad_input;
mod formats;
mod limits;
mod remind_password;
mod validate;

const CUSTOMER: &str = "3698b76f-a5c0-4b04-b579-bc084019fb95";
const API: &str = "/customerservice/api/TwoFactor";

/// Stores TwoFactorConfiguration `id`: the defaults below, as `f` changes them.
async fn config(app: &TestApp, id: i64, f: impl FnOnce(&mut TwoFactorConfig)) {
    let mut c = TwoFactorConfig {
        id,
        name: format!("config {id}"),
        code_length: 6,
        expiry_seconds: 180,
        max_attempts: 3,
        max_sms_count: 5,
        max_sms_interval_seconds: 900,
        return_code: false,
        sms_template: None,
        created_at: 0,
    };
    f(&mut c);
    app.save_twofactor_config(c).await;
}

/// A CreateTwoFactorSmsOtp request for the customer.
fn create(gsm: &str, config_id: i64) -> Value {
    json!({"UserId": CUSTOMER, "GsmNumber": gsm, "TwoFactorConfigurationId": config_id, "MaxSMSCount": 0,
           "MaxSMSInterval": 0, "OtpExpirationPeriod": 0, "IsSync": false, "Source": "web"})
}

impl TestApp {
    async fn tf(&self, op: &str, body: Value) -> Answer {
        self.post_json(&format!("{API}/{op}"), &body).await
    }

    /// CreateTwoFactorSmsOtp in JSON: the answer and its OtpIdReference.
    async fn tf_create(&self, body: Value) -> (Value, String) {
        let a = self.tf("CreateTwoFactorSmsOtp", body).await;
        let v = a.json();
        let reference = v["OtpIdReference"]
            .as_str()
            .unwrap_or_else(|| panic!("no OtpIdReference: {}", a.text))
            .to_string();
        (v, reference)
    }

    /// ValidateTwoFactorSmsOtp by OtpIdReference, in JSON.
    async fn tf_validate(&self, reference: &str, code: &str) -> Value {
        self.tf(
            "ValidateTwoFactorSmsOtp",
            json!({"OtpIdReference": reference, "OtpCode": code}),
        )
        .await
        .json()
    }
}
