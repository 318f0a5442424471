//! Capillary brands: the tenants of the /auth/v1 API, each with its own limits,
//! validities, channels and payload-hash setting.

use diesel::prelude::*;

use super::DbConnection;
use super::native::Native;
use super::schema::capillary_brands;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = capillary_brands, treat_none_as_null = true)]
pub struct Brand {
    pub brand_key: String,
    pub name: String,
    pub org_id: i64,
    pub otp_max_count: Option<i64>,
    pub otp_timeout_minutes: Option<i64>,
    pub max_otp_retries: i64,
    pub otp_length: i64,
    pub otp_validity_seconds: i64,
    pub session_validity_seconds: i64,
    pub token_validity_seconds: i64,
    pub key_validity_seconds: i64,
    pub channels: String,
    pub sms_template: Option<String>,
    pub hash_key: Option<String>,
    pub hash_window_seconds: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The look-up form of a brand name: brands are matched without case.
pub fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Brand {
    /// A brand with the defaults: no OTP limit of its own, 5 retries, 6 digits, OTP and session
    /// valid 15 minutes, token 15 minutes, key 60 minutes, SMS and e-mail, no hash check.
    pub fn new(name: &str, now: i64) -> Brand {
        Brand {
            brand_key: key(name),
            name: name.trim().to_string(),
            org_id: 0,
            otp_max_count: None,
            otp_timeout_minutes: None,
            max_otp_retries: 5,
            otp_length: 6,
            otp_validity_seconds: 900,
            session_validity_seconds: 900,
            token_validity_seconds: 900,
            key_validity_seconds: 3600,
            channels: "sms,email".into(),
            sms_template: None,
            hash_key: None,
            hash_window_seconds: 300,
            created_at: now,
            updated_at: now,
        }
    }

    /// The OTP limit, when the brand has one: (OTPs, window in minutes).
    pub fn otp_limit(&self) -> Option<(i64, i64)> {
        self.otp_max_count.zip(self.otp_timeout_minutes)
    }

    pub fn channels(&self) -> Vec<crate::core::channel::Channel> {
        self.channels
            .split(',')
            .filter_map(crate::core::channel::Channel::parse)
            .collect()
    }
}

pub fn find(conn: &mut DbConnection, name: &str) -> QueryResult<Option<Brand>> {
    crate::per_backend!(conn, |c| capillary_brands::table
        .find(key(name))
        .select(Brand::as_select())
        .get_result(c))
    .optional()
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<Brand>> {
    crate::per_backend!(conn, |c| capillary_brands::table
        .order(capillary_brands::brand_key)
        .select(Brand::as_select())
        .load(c))
}

pub fn insert(conn: &mut DbConnection, b: &Brand) -> QueryResult<usize> {
    diesel::insert_into(capillary_brands::table)
        .values(b)
        .exec(conn)
}

pub fn update(conn: &mut DbConnection, b: &Brand) -> QueryResult<usize> {
    diesel::update(capillary_brands::table.find(&b.brand_key))
        .set(b)
        .exec(conn)
}

/// The longest otpTimeOut of any brand, in minutes (None when no brand has one).
pub fn longest_otp_timeout_minutes(conn: &mut DbConnection) -> QueryResult<Option<i64>> {
    capillary_brands::table
        .select(diesel::dsl::max(capillary_brands::otp_timeout_minutes))
        .one(conn)
}
