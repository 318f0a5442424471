//! Delivery through real servers on loopback, started by the tests: an SMTP server
//! that keeps what it receives, and HTTP SMS endpoints that fail a given number of
//! times before they accept.

use otpgate::config::DeliverySettings;
use otpgate::db::outbox::Listing;

use crate::support::sms::{self, SmsEndpoint};

mod http_sms;
mod outage;
mod outbox;
mod smtp;
mod sync;

const VISHNU: &str = "Vishnu.kumar@syntel.com";
const VISHNU_MOBILE: &str = "+919876543219";

/// Retries come quickly, and a provider that failed is skipped for a long time.
fn fast(d: &mut DeliverySettings) {
    d.max_attempts = 3;
    d.retry_base_ms = 10;
    d.provider_cooldown_seconds = 600;
}

/// SMS go through `endpoint` alone, as the provider "gateway".
fn sms_through(d: &mut DeliverySettings, endpoint: &SmsEndpoint) {
    d.providers = vec![sms::json_provider("gateway", endpoint)];
    d.sms = vec!["gateway".into()];
}

fn any_sms_sent(rows: &[Listing]) -> bool {
    rows.iter().any(|m| m.channel == "sms" && m.state == "sent")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
