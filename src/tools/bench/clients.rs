//! The virtual clients: the healthz flood and the OTP cycles, each request timed.

use super::*;

pub(super) async fn healthz(
    client: &reqwest::Client,
    bases: &[String],
    n: usize,
    deadline: Instant,
) -> Tally {
    let client = client.clone();
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}/healthz")).collect();
    hammer(n, deadline, "GET /healthz", move |i| {
        client.get(&urls[i % urls.len()])
    })
    .await
}

/// A ServiceName otpgate does not serve: the forward phase's request.
const FORWARDED: &str = r#"{"ServiceName":"IM_LogOrUpdateIncident","objCommonParameters":{"_ProxyDetails":{"AuthType":"APIKEY","APIKey":"bench","ReturnType":"JSON"},"objIncident":{"Description":"bench","Priority":3}}}"#;

/// `n` clients post an unserved ServiceName to `urls` (round-robin) until
/// `deadline`, timed as `op`.
pub(super) async fn forwarded(
    client: &reqwest::Client,
    urls: &[String],
    n: usize,
    deadline: Instant,
    op: &'static str,
) -> Tally {
    let (client, urls) = (client.clone(), urls.to_vec());
    hammer(n, deadline, op, move |i| {
        client
            .post(&urls[i % urls.len()])
            .header("content-type", "application/json")
            .body(FORWARDED)
    })
    .await
}

/// `n` clients, each a task of its own, send what `request` builds (given the
/// client's number) one after another until `deadline`; a 2xx answer is timed as
/// `op`, anything else counted as an error.
async fn hammer(
    n: usize,
    deadline: Instant,
    op: &'static str,
    request: impl Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Tally {
    let request = std::sync::Arc::new(request);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut t = Tally::default();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    t.requests += 1;
                    match request(i).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            t.time(op, started.elapsed());
                        }
                        Ok(r) => t.error(format!("{op}: HTTP {}", r.status().as_u16())),
                        Err(e) => t.error(format!("{op}: {}", transport_error(&e))),
                    }
                }
                t
            })
        })
        .collect();
    let mut all = Tally::default();
    for t in futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
    {
        all.merge(t);
    }
    all
}

pub(super) struct VirtualClient {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) identity: Identity,
    pub(super) sms: mpsc::UnboundedReceiver<String>,
}

/// Runs the clients through cycles of `phase` until the deadline or `max` cycles in
/// all; with `storm`, password logins run alongside. Returns the clients, the tally
/// of the cycles (storm logins under their own operation name) and the seconds taken.
pub(super) async fn cycles(
    clients: Vec<VirtualClient>,
    phase: Phase,
    deadline: Instant,
    max: Option<u64>,
    storm: Option<(usize, String, String)>,
    http: &reqwest::Client,
    bases: &[String],
) -> (Vec<VirtualClient>, Tally, f64) {
    let started = Instant::now();
    let tickets = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let tickets = tickets.clone();
            tokio::spawn(async move {
                let mut t = Tally::default();
                while Instant::now() < deadline
                    && max.is_none_or(|m| tickets.fetch_add(1, Ordering::Relaxed) < m)
                {
                    let result = match phase {
                        Phase::Twofactor => c.twofactor_cycle(&mut t).await,
                        _ => c.summit_cycle(&mut t).await,
                    };
                    match result {
                        Ok(()) => t.cycles_ok += 1,
                        Err(kind) => {
                            t.cycles_failed += 1;
                            t.error(kind);
                        }
                    }
                }
                (c, t)
            })
        })
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storm_tasks: Vec<_> = storm
        .into_iter()
        .flat_map(|(n, login, password)| {
            (0..n).map(move |_| (login.clone(), password.clone()))
        })
        .enumerate()
        .map(|(i, (login, password))| {
            let base = &bases[i % bases.len()];
            let (http, url, stop) = (http.clone(), format!("{base}{SUMMIT_PATH}"), stop.clone());
            tokio::spawn(async move {
                let mut t = Tally::default();
                let body = json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
                    "AuthType": "FORM", "UserName": login, "Password": password, "ReturnType": "JSON"}}});
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let started = Instant::now();
                    t.requests += 1;
                    match post(&http, &url, &body).await {
                        Ok(v) if v["User"].is_object() => {
                            t.time("LoginApp FORM (storm)", started.elapsed())
                        }
                        Ok(v) => t.error(format!("storm LoginApp FORM: {}", summit_error(&v))),
                        Err(e) => t.error(format!("storm LoginApp FORM: {e}")),
                    }
                }
                t
            })
        })
        .collect();
    let mut all = Tally::default();
    let mut back = Vec::new();
    for (c, t) in futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
    {
        all.merge(t);
        back.push(c);
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut logins = Tally::default();
    for t in futures_util::future::join_all(storm_tasks)
        .await
        .into_iter()
        .flatten()
    {
        logins.merge(t);
    }
    // Storm logins are requests and latencies of the phase, not cycles.
    all.requests += logins.requests;
    logins.requests = 0;
    all.merge(logins);
    (back, all, seconds)
}

impl VirtualClient {
    /// Drops SMS left over from a cycle that gave up waiting, so that a late one is
    /// not taken for the next cycle's.
    pub(super) fn drain(&mut self) {
        while self.sms.try_recv().is_ok() {}
    }

    async fn wait_code(&mut self, t: &mut Tally) -> Result<String, String> {
        let started = Instant::now();
        let text = tokio::time::timeout(SMS_TIMEOUT, self.sms.recv())
            .await
            .map_err(|_| format!("no SMS within {} s", SMS_TIMEOUT.as_secs()))?
            .ok_or("the SMS listener stopped")?;
        t.time("SMS delivery", started.elapsed());
        let code: String = text.chars().take_while(char::is_ascii_digit).collect();
        if code.is_empty() {
            return Err("an SMS without a code".into());
        }
        Ok(code)
    }

    async fn call(
        &self,
        t: &mut Tally,
        op: &'static str,
        url: &str,
        body: &Value,
    ) -> Result<Value, String> {
        let started = Instant::now();
        t.requests += 1;
        let v = post(&self.http, url, body)
            .await
            .map_err(|e| format!("{op}: {e}"))?;
        t.time(op, started.elapsed());
        Ok(v)
    }

    async fn summit_cycle(&mut self, t: &mut Tally) -> Result<(), String> {
        self.drain();
        let url = format!("{}{SUMMIT_PATH}", self.base);
        let id = &self.identity;
        let generate = json!({"ServiceName": "ADM_GenerateOTP", "objCommonParameters": {"objUserInformation": {
            "AuthType": "LOGIN_OTP", "CountryCode": "91", "EncryptedEmailID": id.email, "DeviceId": id.device}}});
        let v = self.call(t, "ADM_GenerateOTP", &url, &generate).await?;
        let txn = v["OutputObject"]["OTP_Communication"][0]["TransactionID"]
            .as_str()
            .filter(|_| v["Errors"] == "")
            .ok_or_else(|| format!("ADM_GenerateOTP: {}", summit_error(&v)))?
            .to_string();
        let code = self.wait_code(t).await?;
        let id = &self.identity;
        let login = json!({"ServiceName": "LoginApp", "objCommonParameters": {"_ProxyDetails": {
            "AuthType": "OTP", "TransactionID": txn, "Password": code, "DeviceId": id.device,
            "ReturnType": "JSON", "UserName": "", "TokenID": null}}});
        let v = self.call(t, "LoginApp OTP", &url, &login).await?;
        if !v["User"].is_object() {
            return Err(format!("LoginApp OTP: {}", summit_error(&v)));
        }
        Ok(())
    }

    async fn twofactor_cycle(&mut self, t: &mut Tally) -> Result<(), String> {
        self.drain();
        let id = &self.identity;
        let create = json!({"UserId": id.customer, "GsmNumber": format!("+{}", id.sms_key()),
            "TwoFactorConfigurationId": 0, "IsSync": false, "Source": "bench"});
        let url = format!("{}{TWOFACTOR_PATH}/CreateTwoFactorSmsOtp", self.base);
        let v = self.call(t, "CreateTwoFactorSmsOtp", &url, &create).await?;
        let otp_id = v["Id"]
            .as_i64()
            .filter(|_| v["Success"] == true)
            .ok_or_else(|| format!("CreateTwoFactorSmsOtp: {}", twofactor_error(&v)))?;
        let code = self.wait_code(t).await?;
        let validate = json!({"UserId": self.identity.customer, "OtpId": otp_id, "OtpCode": code,
            "IsReValidate": false});
        let url = format!("{}{TWOFACTOR_PATH}/ValidateTwoFactorSmsOtp", self.base);
        let v = self
            .call(t, "ValidateTwoFactorSmsOtp", &url, &validate)
            .await?;
        if v["IsValid"] != true {
            return Err(format!("ValidateTwoFactorSmsOtp: {}", twofactor_error(&v)));
        }
        Ok(())
    }
}

pub(super) async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<Value, String> {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| transport_error(&e))?;
    let status = r.status();
    let bytes = r.bytes().await.map_err(|e| transport_error(&e))?;
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    serde_json::from_slice(&bytes).map_err(|_| "an answer that is not JSON".to_string())
}

pub(super) fn transport_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection error"
    }
}

pub(super) fn summit_error(v: &Value) -> String {
    match v["Errors"].as_str() {
        Some(e) if !e.is_empty() => e.chars().take(120).collect(),
        _ => "an answer without the expected fields".into(),
    }
}

pub(super) fn twofactor_error(v: &Value) -> String {
    format!(
        "Code {} {}",
        v["Code"],
        v["ExceptionMessage"].as_str().unwrap_or_default()
    )
}
