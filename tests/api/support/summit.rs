//! The Summit envelope as the tests send it, and the user most of them log in as.

use otpgate::core::users::NewUser;
use otpgate::db::users::User;
use serde_json::{Value, json};

use super::{Answer, TestApp};

pub const ENDPOINT: &str = "/API/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";

impl TestApp {
    /// Posts a JSON envelope to the Summit endpoint.
    pub async fn summit(&self, body: Value) -> Answer {
        self.post_json(ENDPOINT, &body).await
    }

    /// The standard test user: Vishnu, e-mail and mobile, password "Secret#123".
    pub async fn vishnu(&self) -> User {
        self.add_user(NewUser {
            user_id: Some(836),
            login_uid: "1xxxx4".into(),
            login_name: Some("vishnu".into()),
            user_name: "Vishnu Kumar".into(),
            email: "Vishnu.kumar@syntel.com".into(),
            mobile: "9876543219".into(),
            country_code: "91".into(),
            password: Some("Secret#123".into()),
            org_id: 1,
            org_name: "xyz".into(),
            domain_id: 1,
            profile: Default::default(),
        })
        .await
    }

    /// ADM_GenerateOTP, pre-login form; returns the TransactionID.
    pub async fn login_otp(&self, email: &str, device: &str) -> String {
        let a = self.summit(login_otp_request(email, device)).await;
        let v = a.json();
        assert_eq!(v["Errors"], "", "generate failed: {}", a.text);
        transaction_id(&v)
    }

    /// Adds Vishnu, who asks for a login code (pre-login form, device "d"); returns
    /// the TransactionID.
    pub async fn vishnu_login_otp(&self) -> String {
        self.vishnu().await;
        self.login_otp("Vishnu.kumar@syntel.com", "d").await
    }

    pub async fn login_app(&self, transaction_id: &str, code: &str, device: &str) -> Answer {
        self.summit(login_app_request(transaction_id, code, device))
            .await
    }
}

pub fn login_otp_request(email: &str, device: &str) -> Value {
    json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"objUserInformation": {
        "AuthType": "LOGIN_OTP", "CountryCode": "91", "EncryptedEmailID": email, "DeviceId": device}}})
}

pub fn login_app_request(transaction_id: &str, code: &str, device: &str) -> Value {
    json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
        "SAASOrgID": "0", "ProxyID": 0, "MobileVersion": "1.7.1", "TokenID": null, "LoginUID": 0, "OrgID": "0",
        "ReturnType": "JSON", "Password": code, "RequestType": "mobile", "AuthType": "OTP", "UserName": "",
        "TransactionID": transaction_id, "DeviceId": device}}})
}

/// The TransactionID of an ADM_GenerateOTP answer.
pub fn transaction_id(answer: &Value) -> String {
    answer["OutputObject"]["OTP_Communication"][0]["TransactionID"]
        .as_str()
        .unwrap_or_else(|| panic!("no TransactionID: {answer}"))
        .to_string()
}
