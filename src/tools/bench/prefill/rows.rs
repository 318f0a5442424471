//! The rows of a prefill, made as the gateway makes them: one Summit login cycle
//! (ADM_GenerateOTP LOGIN_OTP, its SMS, LoginApp OTP) per history cycle, in time order.
//!
//! What a site running housekeeping every five minutes holds: every challenge, message
//! and audit event of the history (challenges and messages go only after
//! `retention_days`, audit events never), the send-limit rows of destinations sent to
//! within the longest send window, each with its sends within it, and the sessions
//! still live at the end.

use diesel::prelude::*;
use rand::Rng;

use crate::config::Settings;
use crate::core::keys::Keys;
use crate::core::otp::{Channel, Destination, generate_code, generate_reference};
use crate::core::sessions;
use crate::db::audit::AuditEvent;
use crate::db::challenges::Challenge;
use crate::db::outbox::{OutboxRow, SENT};
use crate::db::schema::{audit_destinations, outbox, send_limits};
use crate::db::sessions::Session;
use crate::db::users::{self, User};

/// The password of every prefilled user (one Argon2id hash, shared).
pub const PASSWORD: &str = "prefill-password";
/// Share of codes that are used; the others expire or are superseded unused.
const VERIFIED: f64 = 0.92;
/// The SMS provider named in sent messages (the bench's own).
const PROVIDER: &str = "bench";

/// A sent message, with the provider that took it (columns [`OutboxRow`] leaves out).
#[derive(Insertable)]
#[diesel(table_name = outbox)]
pub struct SentMessage {
    #[diesel(embed)]
    pub row: OutboxRow,
    pub provider: Option<String>,
    pub provider_ref: Option<String>,
}

/// A destination row of an audit event, as `db::audit::insert` writes it.
#[derive(Insertable)]
#[diesel(table_name = audit_destinations)]
pub struct AuditDestination {
    pub destination_key: String,
    pub at: i64,
    pub event_id: String,
    pub transaction_id: Option<String>,
}

/// A destination's send-limit row, as `db::limits::record_send` writes it: its last
/// send, and its sends within the longest window, as a policy of that window keeps
/// them.
#[derive(Insertable)]
#[diesel(table_name = send_limits)]
pub struct LimitRow {
    pub destination_key: String,
    pub last_sent_at: i64,
    pub recent_sends: String,
    pub sends_window_ms: i64,
    pub sends_max: i64,
}

/// What the writer inserts, a block at a time.
pub enum Block {
    Users(Vec<User>),
    History(History),
    Limits(Vec<LimitRow>),
}

#[derive(Default)]
pub struct History {
    pub challenges: Vec<Challenge>,
    pub messages: Vec<SentMessage>,
    pub events: Vec<AuditEvent>,
    pub destinations: Vec<AuditDestination>,
    pub sessions: Vec<Session>,
}

/// The user of prefilled user number `n` (0-based) with id `id`.
pub fn user(n: u64, id: i64, password_hash: &str, created_at: i64) -> User {
    let email = format!("user{n}@prefill.example.com");
    User {
        id,
        login_uid: format!("prefill-{n}"),
        login_name: email.clone(),
        login_key: users::key(&email),
        user_name: format!("Prefill User {n}"),
        email_key: users::key(&email),
        email,
        mobile: mobile(n),
        country_code: "91".into(),
        org_id: 1,
        org_name: "prefill".into(),
        domain_id: 1,
        password_hash: Some(password_hash.to_string()),
        profile: "{}".into(),
        created_at,
    }
}

/// Ten digits starting with 6: the bench's own clients' numbers start with 7.
fn mobile(n: u64) -> String {
    format!("6{n:09}")
}

/// The history's plan: which user asks at which cycle, and when that user asks next.
pub struct Plan {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Milliseconds between two cycles.
    pub gap_ms: f64,
    /// The user (0-based) of each cycle.
    pub user_of: Vec<u32>,
    /// The next cycle of the same user, or u32::MAX.
    pub next: Vec<u32>,
}

impl Plan {
    pub fn new(users: u64, days: u32, rate: f64, end_ms: i64) -> Plan {
        let span_ms = i64::from(days) * 86_400_000;
        let cycles = (rate * span_ms as f64 / 1000.0).round() as usize;
        let mut rng = rand::rng();
        let user_of: Vec<u32> = (0..cycles)
            .map(|_| rng.random_range(0..users) as u32)
            .collect();
        let mut next = vec![u32::MAX; cycles];
        let mut seen = vec![u32::MAX; users as usize];
        for i in (0..cycles).rev() {
            let u = user_of[i] as usize;
            next[i] = seen[u];
            seen[u] = i as u32;
        }
        Plan {
            start_ms: end_ms - span_ms,
            end_ms,
            gap_ms: 1000.0 / rate,
            user_of,
            next,
        }
    }

    pub fn cycles(&self) -> usize {
        self.user_of.len()
    }

    /// When cycle `i` asks for its code (the cycles are evenly spread).
    pub fn at(&self, i: usize) -> i64 {
        self.start_ms + (i as f64 * self.gap_ms) as i64
    }
}

/// A UUIDv7 of a past moment, as the gateway's ids made then would be.
fn v7(ms: i64) -> uuid::Uuid {
    let ms = ms.max(0) as u64;
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
    uuid::Uuid::new_v7(ts)
}

/// The settings the history follows.
pub struct Rules {
    pub keys: Keys,
    pub length: u32,
    pub expiry_ms: i64,
    pub max_attempts: i64,
    pub lifetime_ms: i64,
    pub idle_ms: i64,
    /// Sends older than this are gone (housekeeping's window).
    pub keep_sends_from: i64,
    /// The send limit the rows were counted under.
    pub max_sends: i64,
}

impl Rules {
    pub fn new(s: &Settings, end_ms: i64) -> Rules {
        let keep_sends_ms = s.longest_send_window_seconds().max(86_400) * 1000;
        Rules {
            keys: Keys::from_secrets(&crate::core::keys::random_bytes::<32>(), &[]),
            length: s.otp.length,
            expiry_ms: s.otp.expiry_seconds * 1000,
            max_attempts: s.otp.max_attempts,
            lifetime_ms: s.session.lifetime_seconds * 1000,
            idle_ms: s.session.idle_timeout_minutes * 60_000,
            keep_sends_from: end_ms - keep_sends_ms,
            max_sends: s.otp.max_sends,
        }
    }
}

/// Cycles `range` of the plan; `first_id` is the id of user 0, `numeric_id` the first
/// numeric Id to hand out.
pub fn history(
    plan: &Plan,
    rules: &Rules,
    range: std::ops::Range<usize>,
    first_id: i64,
    numeric_id: i64,
) -> History {
    let mut rng = rand::rng();
    let mut h = History::default();
    for i in range {
        let n = u64::from(plan.user_of[i]);
        let user_id = first_id + n as i64;
        let at = plan.at(i);
        let next = plan.next[i];
        let next_at = (next != u32::MAX).then(|| plan.at(next as usize));
        let dest = Destination {
            channel: Channel::Sms,
            address: users::international(&mobile(n), "91"),
        };
        let masked = dest.masked();
        // A TransactionID as the gateway makes it (`ChallengeId`): in time order.
        let id = v7(at).to_string();
        let expires_at = at + rules.expiry_ms;
        let verified_at = at + rng.random_range(8_000..60_000);
        let verified = rng.random_bool(VERIFIED) && next_at.is_none_or(|t| t > verified_at);
        // Unused: superseded by the user's next code, else still open (expired).
        let superseded_at = if verified { None } else { next_at };
        let (verify_at, verify_outcome) = match superseded_at {
            _ if verified => (verified_at, "ok"),
            Some(t) if t < expires_at => (t + rng.random_range(5_000..30_000), "superseded"),
            _ => (expires_at + rng.random_range(1_000..300_000), "expired"),
        };
        h.challenges.push(Challenge {
            reference: generate_reference(),
            subject: format!("user:{user_id}"),
            purpose: "login".into(),
            user_id: Some(user_id),
            org_id: 1,
            channels: "sms".into(),
            destination_masked: masked.clone(),
            device_id: Some(format!("device-{n}")),
            code_hash: rules.keys.code_hash(&id, &generate_code(rules.length)),
            created_at: at,
            expires_at,
            attempts: i64::from(verified),
            max_attempts: rules.max_attempts,
            consumed_at: verified.then_some(verified_at),
            superseded_at,
            numeric_id: Some(numeric_id + (i as i64)),
            change_request_id: None,
            id: id.clone(),
        });
        let delivered_at = at + rng.random_range(200..2_000);
        let mut row = OutboxRow::queued(
            v7(at).to_string(),
            Some(id.clone()),
            "sms",
            (dest.address.clone(), masked.clone()),
            Vec::new(),
            at,
        );
        // As the dispatcher leaves a sent message: its sealed text dropped.
        row.payload = None;
        row.state = SENT.into();
        row.attempts = 1;
        row.claimed_by = Some(uuid::Uuid::new_v4().to_string());
        row.updated_at = delivered_at;
        h.messages.push(SentMessage {
            row,
            provider: Some(PROVIDER.into()),
            provider_ref: None,
        });
        let generate = AuditEvent {
            id: v7(at).to_string(),
            at,
            event: "otp.generate".into(),
            outcome: "ok".into(),
            user_id: Some(user_id),
            transaction_id: Some(id.clone()),
            destination_masked: Some(masked.clone()),
            channel: Some("sms".into()),
            request_id: Some(v7(at).simple().to_string()),
        };
        h.destinations.push(AuditDestination {
            destination_key: dest.audit_key(&rules.keys),
            at,
            event_id: generate.id.clone(),
            transaction_id: Some(id.clone()),
        });
        h.events.push(generate);
        h.events.push(AuditEvent {
            id: v7(verify_at).to_string(),
            at: verify_at,
            event: "otp.verify".into(),
            outcome: verify_outcome.into(),
            user_id: Some(user_id),
            transaction_id: Some(id),
            destination_masked: Some(masked),
            channel: None,
            request_id: Some(v7(verify_at).simple().to_string()),
        });
        let session_live = verified_at + rules.lifetime_ms > plan.end_ms
            && verified_at + rules.idle_ms > plan.end_ms;
        if verified && session_live {
            h.sessions.push(Session {
                token_hash: sessions::key(&sessions::new_token(verified_at)),
                user_id,
                device_id: Some(format!("device-{n}")),
                created_at: verified_at,
                expires_at: verified_at + rules.lifetime_ms,
                last_seen_at: verified_at,
                idle_timeout_ms: rules.idle_ms,
            });
        }
    }
    h
}

/// The send-limit rows: each user's sends inside the window, when there are any.
pub fn limits(plan: &Plan, rules: &Rules) -> Vec<LimitRow> {
    let mut sent: std::collections::HashMap<u32, Vec<i64>> = Default::default();
    for i in (0..plan.cycles()).rev() {
        let at = plan.at(i);
        if at < rules.keep_sends_from {
            break;
        }
        sent.entry(plan.user_of[i]).or_default().push(at);
    }
    let window_ms = plan.end_ms - rules.keep_sends_from;
    let mut rows: Vec<LimitRow> = sent
        .into_iter()
        .map(|(n, mut times)| {
            times.reverse();
            let text: Vec<String> = times.iter().map(i64::to_string).collect();
            LimitRow {
                destination_key: Destination {
                    channel: Channel::Sms,
                    address: users::international(&mobile(u64::from(n)), "91"),
                }
                .limit_key(None),
                last_sent_at: times.last().copied().unwrap_or_default(),
                recent_sends: text.join(","),
                sends_window_ms: window_ms,
                sends_max: rules.max_sends,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.destination_key.cmp(&b.destination_key));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_spreads_the_cycles_and_links_each_to_the_users_next() {
        let plan = Plan::new(10, 1, 0.01, 86_400_000 * 100);
        assert_eq!(plan.cycles(), 864);
        assert_eq!(plan.at(0), plan.start_ms);
        assert!(plan.at(863) < plan.end_ms);
        for (i, &n) in plan.next.iter().enumerate() {
            if n != u32::MAX {
                assert!(n as usize > i);
                assert_eq!(plan.user_of[n as usize], plan.user_of[i]);
                let between = &plan.user_of[i + 1..n as usize];
                assert!(!between.contains(&plan.user_of[i]));
            }
        }
    }

    #[test]
    fn each_limit_row_holds_its_users_sends_of_the_window() {
        // Two days of 5 users: only the last day's sends are kept.
        let end = 86_400_000 * 100;
        let plan = Plan::new(5, 2, 0.01, end);
        let rules = Rules::new(&Settings::default(), end);
        let rows = limits(&plan, &rules);
        assert_eq!(rows.len(), 5);
        let mut kept = 0;
        for r in &rows {
            let times: Vec<i64> = r
                .recent_sends
                .split(',')
                .map(|t| t.parse().unwrap())
                .collect();
            assert!(times.is_sorted(), "{}", r.recent_sends);
            assert!(times.iter().all(|t| *t >= rules.keep_sends_from));
            assert_eq!(times.last(), Some(&r.last_sent_at));
            assert_eq!(r.sends_window_ms, end - rules.keep_sends_from);
            kept += times.len();
        }
        let inside = (0..plan.cycles())
            .filter(|i| plan.at(*i) >= rules.keep_sends_from)
            .count();
        assert_eq!(kept, inside);
        assert!(inside > 0 && inside < plan.cycles());
    }

    #[test]
    fn at_most_the_last_code_of_a_user_is_open() {
        let end = 86_400_000 * 100;
        let plan = Plan::new(5, 1, 0.01, end);
        let rules = Rules::new(&Settings::default(), end);
        let h = history(&plan, &rules, 0..plan.cycles(), 1, 1);
        let mut open = std::collections::HashSet::new();
        for c in &h.challenges {
            if c.consumed_at.is_none() && c.superseded_at.is_none() {
                assert!(
                    open.insert(c.subject.clone()),
                    "two open codes: {}",
                    c.subject
                );
            }
        }
        assert_eq!(h.events.len(), 2 * h.challenges.len());
        assert_eq!(h.destinations.len(), h.challenges.len());
        assert!(
            h.messages
                .iter()
                .all(|m| m.row.payload.is_none() && m.row.state == SENT)
        );
        // Only live sessions are kept.
        assert!(h.sessions.iter().all(|s| s.expires_at > end));
    }
}
