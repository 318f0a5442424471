//! The `unknown` phase: the requests that name a user, for registered identifiers and
//! for identifiers nobody has, to compare the two medians. Answers that reveal no
//! user must also take the same time: a known and an unknown identifier are meant to
//! cost the same work (`security.reveal_unknown_users` off, docs/core.md).
//!
//! One request at a time, each followed by a pause of 20 ms, so that latency is not
//! queueing nor the background delivery of a previous code: each round asks, for one
//! client's user and for one made-up address, ADM_GenerateOTP (LOGIN_OTP),
//! CreateOtpForRemindPassword, and Capillary token/generate then otp/generate (USERNAME),
//! and a password login (LoginApp FORM) with a wrong password for the storm's
//! user and for a login nobody has, known and unknown alternating which goes first. Each side cycles through as many
//! identifiers as there are clients, so both supersede a previous code alike. The
//! known users' codes are sent (SMS to the bench's listener) while the round goes on,
//! as they would be.

use super::*;

/// The pause after each request.
const SETTLE: Duration = Duration::from_millis(20);

/// The Capillary brand the phase opens sessions under, added at set-up.
pub(super) const BRAND: &str = "BenchBrand";

/// One operation's two names in the report.
struct Op {
    known: &'static str,
    unknown: &'static str,
}

const SUMMIT: Op = Op {
    known: "ADM_GenerateOTP known",
    unknown: "ADM_GenerateOTP unknown",
};
const REMIND: Op = Op {
    known: "CreateOtpForRemindPassword known",
    unknown: "CreateOtpForRemindPassword unknown",
};
const TOKEN: Op = Op {
    known: "token/generate known",
    unknown: "token/generate unknown",
};
const OTP: Op = Op {
    known: "otp/generate known",
    unknown: "otp/generate unknown",
};
const FORM: Op = Op {
    known: "LoginApp FORM (wrong password) known",
    unknown: "LoginApp FORM (wrong password) unknown",
};

/// Runs rounds until `deadline` or `max` rounds; the clients' SMS inboxes are emptied
/// afterwards (run the phase last, or alone: a known user's SMS may still arrive).
pub(super) async fn unknown_users(
    clients: &mut [VirtualClient],
    http: &reqwest::Client,
    base: &str,
    (run_id, known_login): (&str, &str),
    deadline: Instant,
    max: Option<u64>,
) -> Tally {
    let unknown_login = format!("nobody.{run_id}");
    let mut t = Tally::default();
    let mut round: u64 = 0;
    let n = clients.len().max(1);
    while Instant::now() < deadline && max.is_none_or(|m| round < m) {
        let i = (round as usize) % n;
        let known = clients[i].identity.clone();
        let unknown = format!("nobody{i}.{run_id}@bench.example.com");
        let sides: [(&str, bool); 2] = if round.is_multiple_of(2) {
            [(&known.email, true), (&unknown, false)]
        } else {
            [(&unknown, false), (&known.email, true)]
        };
        let mut ok = true;
        for (email, is_known) in sides {
            if let Err(e) = one_side(&mut t, http, base, email, &known.device, is_known).await {
                t.error(e);
                ok = false;
            }
            let login = if is_known {
                known_login
            } else {
                &unknown_login
            };
            if let Err(e) = wrong_password(&mut t, http, base, login, is_known).await {
                t.error(e);
                ok = false;
            }
        }
        if ok {
            t.cycles_ok += 1;
        } else {
            t.cycles_failed += 1;
        }
        round += 1;
    }
    // Let the last codes arrive, then drop them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in clients.iter_mut() {
        c.drain();
    }
    t
}

/// The four requests for one identifier.
async fn one_side(
    t: &mut Tally,
    http: &reqwest::Client,
    base: &str,
    email: &str,
    device: &str,
    known: bool,
) -> Result<(), String> {
    let name = |op: &Op| if known { op.known } else { op.unknown };
    let summit = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"objUserInformation": {
        "AuthType": "LOGIN_OTP", "CountryCode": "91", "EncryptedEmailID": email, "DeviceId": device}}});
    let v = timed(
        t,
        http,
        name(&SUMMIT),
        &format!("{base}{SUMMIT_PATH}"),
        &summit,
    )
    .await?;
    if v["Errors"] != "" {
        return Err(format!("{}: {}", name(&SUMMIT), summit_error(&v)));
    }
    let remind = json!({"UserName": email});
    let url = format!("{base}{TWOFACTOR_PATH}/CreateOtpForRemindPassword");
    let v = timed(t, http, name(&REMIND), &url, &remind).await?;
    if v["Success"] != true {
        return Err(format!("{}: {}", name(&REMIND), twofactor_error(&v)));
    }
    let mut cap = json!({"identifierType": "USERNAME", "identifierValue": email,
                         "brand": BRAND, "deviceId": device});
    let url = format!("{base}/auth/v1/token/generate");
    let v = timed(t, http, name(&TOKEN), &url, &cap).await?;
    let session = v["user"]["sessionId"]
        .as_str()
        .filter(|_| v["status"]["success"] == true)
        .ok_or_else(|| format!("{}: {}", name(&TOKEN), v["status"]))?;
    cap["sessionId"] = json!(session);
    let url = format!("{base}/auth/v1/otp/generate");
    let v = timed(t, http, name(&OTP), &url, &cap).await?;
    if v["status"]["success"] != true {
        return Err(format!("{}: {}", name(&OTP), v["status"]));
    }
    Ok(())
}

/// A password login with a wrong password: answered alike, with the same work (a
/// hash computed, the failure counted and audited) for a login that exists and one
/// that does not.
async fn wrong_password(
    t: &mut Tally,
    http: &reqwest::Client,
    base: &str,
    login: &str,
    known: bool,
) -> Result<(), String> {
    let name = if known { FORM.known } else { FORM.unknown };
    let form = json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
        "AuthType": "FORM", "UserName": login, "Password": "not-the-password", "ReturnType": "JSON"}}});
    let v = timed(t, http, name, &format!("{base}{SUMMIT_PATH}"), &form).await?;
    if v["Errors"] != "Invalid user name or password." {
        return Err(format!("{name}: {}", summit_error(&v)));
    }
    Ok(())
}

async fn timed(
    t: &mut Tally,
    http: &reqwest::Client,
    op: &'static str,
    url: &str,
    body: &Value,
) -> Result<Value, String> {
    let started = Instant::now();
    t.requests += 1;
    let v = post(http, url, body).await;
    t.time(op, started.elapsed());
    // The known user's code is handed to the SMS provider in the background: let that
    // finish, so that each request is timed on its own work, not on the sending a
    // previous one caused.
    tokio::time::sleep(SETTLE).await;
    v.map_err(|e| format!("{op}: {e}"))
}
