//! The user directory's core: password hashing (Argon2id, off the executor and with
//! bounded concurrency) and provisioning.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::PasswordHashing;
pub use crate::db::users::{User, key};

use crate::core::otp::{Channel, Destination, Policy};
use crate::db::users;
use crate::db::{Db, DbConnection, now_ms, write_transaction};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

pub struct Passwords {
    argon: Argon2<'static>,
    slots: Arc<Semaphore>,
    /// Argon2 working memory (`memory_kib` each), reused from one verification to the
    /// next: at most one per slot. Allocating it afresh per login leaves each blocking
    /// thread's malloc arena holding its own copy, and the resident size grew past
    /// 200 MB in a login storm.
    memory: Mutex<Vec<Vec<Block>>>,
    max_concurrent: usize,
    /// A hash to verify against when the user does not exist, so that answering
    /// "unknown user" takes as long as "wrong password".
    decoy: String,
    metrics: Arc<Metrics>,
    /// The threads that verify passwords, at a lower scheduling priority than the
    /// rest of the process (see [`HASHING_NICE`]). None only while dropping.
    hashing: Option<tokio::runtime::Runtime>,
}

/// How much lower the hashing threads run (`nice`, Linux). Password hashes are the
/// costliest work there is, and a login storm (often someone trying stolen
/// passwords) would otherwise take the cores from the OTP requests that need a few
/// hundred microseconds each: at +10 a hash gets about a tenth of a busy core and
/// what is left when the cores are idle, so logins slow down in a storm and codes
/// keep flowing.
pub const HASHING_NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority by [`HASHING_NICE`] (on Linux a
/// thread has its own). Elsewhere, where it would lower the whole process, nothing.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its arguments; gettid cannot fail.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, now + HASHING_NICE);
    }
}

impl Drop for Passwords {
    fn drop(&mut self) {
        // Never wait here: the last owner may be an async task.
        if let Some(rt) = self.hashing.take() {
            rt.shutdown_background();
        }
    }
}

impl Passwords {
    pub fn new(s: &PasswordHashing) -> std::result::Result<Passwords, String> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|e| format!("password_hashing: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let hashing = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(s.max_concurrent.max(1))
            .thread_name("otpgate-hash")
            .on_thread_start(lower_this_threads_priority)
            .build()
            .map_err(|e| format!("password_hashing: threads: {e}"))?;
        let mut p = Passwords {
            argon,
            slots: Arc::new(Semaphore::new(s.max_concurrent)),
            memory: Mutex::new(Vec::new()),
            max_concurrent: s.max_concurrent,
            decoy: String::new(),
            metrics: Metrics::off(),
            hashing: Some(hashing),
        };
        let random = hex::encode(crate::core::keys::random_bytes::<16>());
        p.decoy = p
            .hash(&random)
            .map_err(|e| format!("password_hashing: {e}"))?;
        Ok(p)
    }

    /// The same hasher, recording its queue waits in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Passwords {
        self.metrics = metrics;
        self
    }

    /// Hashes on the calling thread (command-line tools).
    pub fn hash(&self, password: &str) -> std::result::Result<String, String> {
        let salt = SaltString::encode_b64(&crate::core::keys::random_bytes::<16>())
            .map_err(|e| e.to_string())?;
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    }

    fn verify_now(&self, hash: Option<&str>, password: &str) -> bool {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.decoy.as_str(), false),
        };
        let ok = PasswordHash::new(hash).is_ok_and(|h| self.matches(&h, password.as_bytes()));
        ok && real
    }

    /// Whether `password` is the one of the PHC string `h`, under the algorithm,
    /// version and parameters recorded in it, computed in reused working memory and
    /// compared in constant time.
    fn matches(&self, h: &PasswordHash<'_>, password: &[u8]) -> bool {
        let (Some(expected), Some(salt)) = (&h.hash, &h.salt) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(h.algorithm) else {
            return false;
        };
        let version = match h.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let Ok(params) = Params::try_from(h) else {
            return false;
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut memory = self
            .memory
            .lock()
            .ok()
            .and_then(|mut m| m.pop())
            .unwrap_or_default();
        memory.resize(params.block_count(), Block::new());
        let mut out = vec![0u8; expected.len()];
        let computed = Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
            .is_ok();
        if let Ok(mut m) = self.memory.lock()
            && m.len() < self.max_concurrent
        {
            m.push(memory);
        }
        computed && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }

    /// Verifies on the hashing threads, at most `max_concurrent` at once and at a
    /// lower priority ([`HASHING_NICE`]), so a burst of logins can starve neither the
    /// executor threads nor the cores. Waits at most `wait` for a slot: past it the
    /// server is too busy (503), which beats a queue that grows without bound in a
    /// login storm.
    pub async fn verify(
        self: &Arc<Self>,
        hash: Option<String>,
        password: String,
        wait: std::time::Duration,
    ) -> Result<bool> {
        let asked = std::time::Instant::now();
        let permit = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await;
        self.metrics.hashing_wait(asked.elapsed().as_secs_f64());
        let _permit = permit
            .map_err(|_| Error::Unavailable)?
            .map_err(Error::internal)?;
        let me = self.clone();
        let threads = self.hashing.as_ref().ok_or(Error::Unavailable)?.handle();
        threads
            .spawn_blocking(move || me.verify_now(hash.as_deref(), &password))
            .await
            .map_err(Error::internal)
    }
}

/// A user to provision, as `otpgate user add` and `otpgate user import` take it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The numeric UserId; when absent, the LoginUID if it is a whole number no
    /// user has as UserId, else the next free one.
    #[serde(default)]
    pub user_id: Option<i64>,
    pub login_uid: String,
    /// The form login (Frm_UID); defaults to the e-mail address.
    #[serde(default)]
    pub login_name: Option<String>,
    pub user_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub mobile: String,
    #[serde(default)]
    pub country_code: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "one")]
    pub org_id: i64,
    #[serde(default)]
    pub org_name: String,
    #[serde(default = "one")]
    pub domain_id: i64,
    /// LoginApp profile fields (`TimezoneMins`, `Designation`, …): text or null.
    #[serde(default)]
    pub profile: serde_json::Map<String, serde_json::Value>,
}

fn one() -> i64 {
    1
}

impl NewUser {
    /// Checks the fields that can be checked without the database.
    pub fn validate(&self, profile_fields: &[&str]) -> std::result::Result<(), String> {
        let mut problems = Vec::new();
        if self.login_uid.trim().is_empty() {
            problems.push("login_uid is required".to_string());
        }
        if self.user_name.trim().is_empty() {
            problems.push("user_name is required".to_string());
        }
        if self
            .login_name
            .as_deref()
            .unwrap_or(&self.email)
            .trim()
            .is_empty()
        {
            problems.push("login_name (or email) is required".to_string());
        }
        let email = self.email.trim();
        let email_ok = email.is_empty()
            || email
                .rsplit_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
        if !email_ok {
            problems.push(format!("email '{email}' is not an e-mail address"));
        }
        let mobile_ok = self
            .mobile
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c));
        if !mobile_ok
            || (!self.mobile.is_empty()
                && self.mobile.chars().filter(char::is_ascii_digit).count() < 6)
        {
            problems.push("mobile must be a phone number of at least 6 digits".to_string());
        }
        if !self
            .country_code
            .trim_start_matches('+')
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            problems.push("country_code must be digits, e.g. 91".to_string());
        }
        if self.email.trim().is_empty() && self.mobile.trim().is_empty() {
            problems.push("email or mobile is required, or no code can be delivered".to_string());
        }
        if let Some(p) = &self.password
            && p.chars().count() < 8
        {
            problems.push("password must be at least 8 characters".to_string());
        }
        if self.user_id.is_some_and(|id| id <= 0) {
            problems.push("user_id must be positive".to_string());
        }
        for (k, v) in &self.profile {
            if !profile_fields.contains(&k.as_str()) {
                problems.push(format!("profile field '{k}' is not one LoginApp returns"));
            } else if !(v.is_string() || v.is_null()) {
                problems.push(format!("profile field '{k}' must be text or null"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The LoginUID as a UserId, when it is a positive whole number written plainly
/// (`967`, not `0967`): legacy clients send the two as the same number (seed 000).
fn login_uid_as_id(login_uid: &str) -> Option<i64> {
    let uid = login_uid.trim();
    uid.parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && n.to_string() == uid)
}

/// Stores a validated user whose password (if any) is already hashed. Duplicate login
/// uid, login name or e-mail are reported by name.
pub fn insert(conn: &mut DbConnection, u: &NewUser, password_hash: Option<String>) -> Result<User> {
    write_transaction(conn, |conn| -> Result<Result<User>> {
        let login_name = u
            .login_name
            .clone()
            .unwrap_or_else(|| u.email.trim().to_string());
        let id = match u.user_id {
            Some(id) => id,
            None => match login_uid_as_id(&u.login_uid) {
                Some(id) if users::find_by_id(conn, id)?.is_none() => id,
                _ => users::next_id(conn)?,
            },
        };
        let clash = |what: &str| {
            Ok(Err(Error::invalid(format!(
                "a user with this {what} already exists"
            ))))
        };
        if users::find_by_id(conn, id)?.is_some() {
            return clash("user_id");
        }
        if users::find_by_login(conn, &login_name)?.is_some() {
            return clash("login_name");
        }
        if !u.email.trim().is_empty() && users::find_by_email(conn, &u.email)?.is_some() {
            return clash("email");
        }
        let user = User {
            id,
            login_uid: u.login_uid.trim().to_string(),
            login_key: users::key(&login_name),
            login_name,
            user_name: u.user_name.clone(),
            email: u.email.trim().to_string(),
            email_key: users::key(&u.email),
            mobile: u.mobile.trim().to_string(),
            country_code: u.country_code.trim().trim_start_matches('+').to_string(),
            org_id: u.org_id,
            org_name: u.org_name.clone(),
            domain_id: u.domain_id,
            password_hash,
            profile: serde_json::Value::Object(u.profile.clone()).to_string(),
            created_at: now_ms(),
        };
        match users::insert(conn, &user) {
            Ok(_) => Ok(Ok(user)),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => clash("login_uid"),
            Err(e) => Err(e.into()),
        }
    })?
}

/// Checks, hashes (on the calling thread: for the command line and tools) and stores
/// a new user. `profile_fields` are the profile fields a user record may set.
pub fn add(
    db: &Db,
    passwords: &Passwords,
    new: &NewUser,
    profile_fields: &[&str],
) -> std::result::Result<User, String> {
    new.validate(profile_fields)?;
    let hash = new
        .password
        .as_deref()
        .map(|p| passwords.hash(p))
        .transpose()?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    insert(&mut conn, new, hash).map_err(|e| e.to_string())
}

/// Where a user's codes go under a policy: each channel of the policy for which the
/// user has an address. Only the stored record decides: a mobile number without `+`
/// gets the user's country code, or goes out as stored when there is none.
pub fn destinations(user: &User, policy: &Policy) -> Vec<Destination> {
    policy
        .channels
        .iter()
        .filter_map(|ch| match ch {
            Channel::Email if !user.email.trim().is_empty() => Some(Destination {
                channel: Channel::Email,
                address: user.email.trim().to_string(),
            }),
            Channel::Sms if !user.mobile.trim().is_empty() => Some(Destination {
                channel: Channel::Sms,
                address: users::international(&user.mobile, &user.country_code),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHashing {
        PasswordHashing {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
        }
    }

    /// A login storm's hashes give way to the OTP requests: they run on threads of
    /// lower priority than the caller's.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn passwords_are_verified_at_a_lower_priority() {
        fn priority() -> libc::c_int {
            // SAFETY: reads the calling thread's nice value.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        }
        let p = Arc::new(Passwords::new(&fast()).unwrap());
        let threads = p.hashing.as_ref().unwrap().handle().clone();
        let there = threads.spawn_blocking(priority).await.unwrap();
        assert_eq!(there, (priority() + HASHING_NICE).min(19));
        let wait = std::time::Duration::from_secs(5);
        let hash = p.hash("pw").unwrap();
        assert!(p.verify(Some(hash), "pw".into(), wait).await.unwrap());
    }

    #[test]
    fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let p = Passwords::new(&fast()).unwrap();
        let h = p.hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        assert!(p.verify_now(Some(&h), "correct horse"));
        assert!(!p.verify_now(Some(&h), "wrong horse"));
        assert!(!p.verify_now(None, "anything"));
        assert!(!p.verify_now(Some("not a hash"), "correct horse"));
        assert_ne!(h, p.hash("correct horse").unwrap(), "salts differ");
    }

    #[test]
    fn hashes_under_other_parameters_still_verify_and_memory_is_kept_per_slot() {
        let p = Passwords::new(&fast()).unwrap();
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 3, 1, Some(24)).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let h = other.hash_password(b"old one", &salt).unwrap().to_string();
        assert!(h.contains("m=4096,t=3,p=1"));
        assert!(p.verify_now(Some(&h), "old one"));
        assert!(!p.verify_now(Some(&h), "old onE"));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(4096, 1, 1, None).unwrap(),
        );
        let h = argon2i.hash_password(b"older", &salt).unwrap().to_string();
        assert!(h.starts_with("$argon2i$v=16$"));
        assert!(p.verify_now(Some(&h), "older"));
        assert!(!p.verify_now(Some(&h), "olden"));
        let kept = p.memory.lock().unwrap();
        assert!(!kept.is_empty() && kept.len() <= 2, "{}", kept.len());
    }

    #[test]
    fn only_plain_whole_login_uids_are_ids() {
        assert_eq!(login_uid_as_id(" 967 "), Some(967));
        for uid in [
            "0967",
            "0",
            "-4",
            "+5",
            "1xxxx4",
            "",
            "99999999999999999999",
        ] {
            assert_eq!(login_uid_as_id(uid), None, "{uid}");
        }
    }

    #[test]
    fn new_users_are_checked_field_by_field() {
        let ok = NewUser {
            login_uid: "1001".into(),
            user_name: "A B".into(),
            email: "a@b.com".into(),
            mobile: "9876543219".into(),
            country_code: "91".into(),
            ..Default::default()
        };
        assert!(ok.validate(&["TimezoneMins"]).is_ok());
        let mut bad = ok.clone();
        bad.email = "nope".into();
        bad.mobile = "12ab".into();
        bad.password = Some("short".into());
        bad.profile.insert("Bogus".into(), serde_json::json!("x"));
        let e = bad.validate(&["TimezoneMins"]).unwrap_err();
        for part in ["email 'nope'", "mobile", "password", "Bogus"] {
            assert!(e.contains(part), "{e}");
        }
    }
}
