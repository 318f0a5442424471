//! What is stored, and how: secrets at rest, the outbox, housekeeping.

use std::time::Duration;

use diesel::prelude::*;
use otpgate::db::challenges::{self as challenge_rows, Challenge};
use otpgate::db::outbox::{self, OutboxRow};
use otpgate::db::schema::{audit_events, challenges, outbox as outbox_t};
use otpgate::db::{ConnectionManager, DatabaseUrl, DbConnection, now_ms};

use crate::both;
use crate::support::*;

/// Neither the database nor the audit trail holds a code in clear; a message's sealed
/// text is dropped once it is sent.
async fn codes_are_not_stored_in_clear(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    let t = txn.clone();
    let (hash, payloads, audit) = app
        .app
        .db
        .run(move |c| {
            let hash: Vec<u8> = challenges::table
                .find(&t)
                .select(challenges::code_hash)
                .first(c)?;
            let payloads: Vec<Option<Vec<u8>>> =
                outbox_t::table.select(outbox_t::payload).load(c)?;
            let audit: Vec<(String, String, Option<String>)> = audit_events::table
                .select((
                    audit_events::event,
                    audit_events::outcome,
                    audit_events::destination_masked,
                ))
                .load(c)?;
            Ok((hash, payloads, audit))
        })
        .await
        .unwrap();
    assert_eq!(hash.len(), 32);
    assert!(!hash.windows(code.len()).any(|w| w == code.as_bytes()));
    assert_eq!(hash, app.app.keys.code_hash(&txn, &code));
    // Sent: both messages' sealed texts are gone.
    assert_eq!(payloads.len(), 2);
    eventually(Duration::from_secs(5), || async {
        let payloads: Vec<Option<Vec<u8>>> = app
            .app
            .db
            .run(|c| Ok(outbox_t::table.select(outbox_t::payload).load(c)?))
            .await
            .unwrap();
        match payloads[..] {
            [None, None] => Ok(()),
            _ => Err(format!("sealed texts kept: {payloads:?}")),
        }
    })
    .await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&app.sink).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the delivery file holds live codes");
    }
    assert_eq!(
        audit,
        vec![(
            "otp.generate".into(),
            "ok".into(),
            Some("Vis*********@sy****.com and *********219".into())
        )]
    );
    let dump = format!("{audit:?}");
    assert!(!dump.contains(&code) && !dump.contains("9876543219"));
}

fn queued(id: &str, now: i64) -> OutboxRow {
    let to = ("+10000000000".to_string(), "*********000".to_string());
    OutboxRow::queued(id.into(), None, "sms", to, vec![0; 40], now)
}

/// Concurrent claimers share the due messages without overlap; a lease that ran out
/// (its dispatcher died) is claimed again.
async fn outbox_claims_are_exclusive_leases(b: Backend) {
    let (app, _db, _dir) = open_app(b).await;
    let db = app.db.clone();
    let now = now_ms() - 1000;
    db.run(move |c| {
        for i in 0..120 {
            outbox::insert(c, &queued(&format!("m{i:03}"), now))?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let claims = futures_util::future::join_all((0..4).map(|k| {
        let db = db.clone();
        async move {
            let mut mine = Vec::new();
            loop {
                let id = format!("claimer-{k}-{}", mine.len());
                let got = db
                    .run(move |c| Ok(outbox::claim_due(c, &id, now_ms(), now_ms() + 60_000, 7)?))
                    .await
                    .unwrap();
                if got.taken() == 0 {
                    return mine;
                }
                mine.extend(got.live.into_iter().map(|c| c.row.id));
            }
        }
    }))
    .await;
    let mut all: Vec<String> = claims.concat();
    all.sort();
    let total = all.len();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (120, 120),
        "every message claimed exactly once"
    );

    // A lease that has run out is taken over, along with messages that have come due,
    // and a claim takes no more than its limit of the two together.
    let later = now_ms() + 61_000;
    db.run(move |c| {
        for i in 0..5 {
            outbox::insert(c, &queued(&format!("n{i:03}"), later))?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let taken = db
        .run(move |c| {
            let first = outbox::claim_due(c, "late-1", later, later + 60_000, 100)?;
            let second = outbox::claim_due(c, "late-2", later, later + 60_000, 500)?;
            let third = outbox::claim_due(c, "late-3", later, later + 60_000, 500)?;
            Ok([first.live.len(), second.live.len(), third.live.len()])
        })
        .await
        .unwrap();
    assert_eq!(taken, [100, 25, 0]);
}

/// PostgreSQL's claim, planned as it is kept after a few runs (for any values, on
/// tables without statistics, as in the first minute of a new database), reads the
/// due messages in index order and each message's code by key. A bitmap scan would
/// visit every old version of a message until vacuum; a sequential scan of the codes
/// would grow with the table, for as long as the plan is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_claim_reads_by_index_however_the_tables_grow() {
    if postgres_url().is_none() {
        return;
    }
    let (app, _db, _dir) = open_app(Backend::Postgres).await;
    let plan = app
        .db
        .run(|c| match c {
            DbConnection::Pg(c) => Ok(outbox::claim_plan_pg(c)?),
            DbConnection::Sqlite(_) => unreachable!("a PostgreSQL app"),
        })
        .await
        .unwrap()
        .join("\n");
    assert!(!plan.contains("Bitmap"), "{plan}");
    assert!(!plan.contains("Seq Scan on challenges"), "{plan}");
    assert_eq!(
        plan.matches("Index Scan using outbox_due").count(),
        2,
        "{plan}"
    );
    assert!(plan.contains("Index Scan using challenges_pkey"), "{plan}");
}

/// An issue's statement is planned once per connection and kept, not planned again for
/// every code: PostgreSQL, left to choose, planned it on every run once its tables were
/// large, which cost a quarter of a millisecond of the server's time per code. On one
/// pooled connection, seven codes run the kept plan every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_issue_runs_one_kept_plan() {
    if postgres_url().is_none() {
        return;
    }
    let app = spawn_with(Backend::Postgres, |s| {
        s.pool_size = 1;
        s.otp.max_sends = 100;
    })
    .await;
    app.vishnu().await;
    for i in 0..7 {
        app.login_otp("Vishnu.kumar@syntel.com", &format!("d{i}"))
            .await;
    }
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Plans {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic_plans: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        custom_plans: i64,
    }
    let plans: Vec<Plans> = app
        .app
        .db
        .run(|c| {
            Ok(diesel::sql_query(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
                 WHERE statement LIKE 'WITH superseded AS%'",
            )
            .load(c)?)
        })
        .await
        .unwrap();
    assert_eq!(
        plans,
        [Plans {
            generic_plans: 7,
            custom_plans: 0
        }]
    );
}

/// A claim fails, instead of returning, the due messages whose code can no longer be
/// used, saying why for each (used, superseded, expired) after the last attempt's
/// error, and drops their text. It takes no more than its limit: the dead ones count,
/// so the dispatcher knows to claim again, and repeated claims reach every message.
async fn a_claim_fails_the_messages_whose_code_is_dead(b: Backend) {
    let (app, _db, _dir) = open_app(b).await;
    let now = now_ms() - 1000;
    let challenge = |id: &str, expires_at: i64, consumed: bool, superseded: bool| Challenge {
        id: id.into(),
        reference: format!("ref-{id}"),
        subject: format!("subject-{id}"),
        purpose: "login".into(),
        user_id: None,
        org_id: 7,
        channels: "sms".into(),
        destination_masked: "*********000".into(),
        device_id: None,
        code_hash: vec![1; 32],
        created_at: now,
        expires_at,
        attempts: 0,
        max_attempts: 5,
        consumed_at: consumed.then_some(now),
        superseded_at: superseded.then_some(now),
        numeric_id: None,
        change_request_id: None,
    };
    let later = now_ms() + 600_000;
    let codes = [
        ("live", challenge("live", later, false, false)),
        ("used", challenge("used", later, true, false)),
        ("superseded", challenge("superseded", later, false, true)),
        ("expired", challenge("expired", now, false, false)),
    ];
    app.db
        .run(move |c| {
            for (name, ch) in &codes {
                challenge_rows::insert(c, ch)?;
                let mut m = queued(&format!("m-{name}"), now);
                m.challenge_id = Some(ch.id.clone());
                m.last_error = Some("gateway: 127.0.0.1 answered HTTP 503".into());
                outbox::insert(c, &m)?;
            }
            outbox::insert(c, &queued("m-none", now))?;
            Ok(())
        })
        .await
        .unwrap();

    let mut live = Vec::new();
    let mut claims = 0;
    loop {
        let got = app
            .db
            .run(|c| {
                Ok(outbox::claim_due(
                    c,
                    &format!("c{}", now_ms()),
                    now_ms(),
                    now_ms() + 60_000,
                    2,
                )?)
            })
            .await
            .unwrap();
        assert!(got.taken() <= 2, "{got:#?}");
        if got.taken() == 0 {
            break;
        }
        claims += 1;
        live.extend(got.live.into_iter().map(|c| (c.row.id, c.code)));
    }
    assert_eq!(claims, 3, "five due messages, two per claim");
    live.sort();
    assert_eq!(
        live,
        vec![
            ("m-live".to_string(), Some((7, later))),
            ("m-none".to_string(), None)
        ]
    );
    let rows: Vec<(String, String, Option<String>, bool)> = app
        .db
        .run(|c| {
            Ok(outbox_t::table
                .filter(outbox_t::state.eq("failed"))
                .select((
                    outbox_t::id,
                    outbox_t::state,
                    outbox_t::last_error,
                    outbox_t::payload.is_not_null(),
                ))
                .order(outbox_t::id)
                .load(c)?)
        })
        .await
        .unwrap();
    let last = "; last attempt: gateway: 127.0.0.1 answered HTTP 503";
    assert_eq!(
        rows,
        vec![
            (
                "m-expired".into(),
                "failed".into(),
                Some(format!("{}{last}", outbox::CODE_EXPIRED)),
                false
            ),
            (
                "m-superseded".into(),
                "failed".into(),
                Some(format!("{}{last}", outbox::CODE_SUPERSEDED)),
                false
            ),
            (
                "m-used".into(),
                "failed".into(),
                Some(format!("{}{last}", outbox::CODE_USED)),
                false
            ),
        ]
    );
}

/// A transport that keeps failing: retried with backoff, then failed with the error
/// kept. The sealed text stays while the code works, for `otpgate outbox retry`.
async fn failing_deliveries_are_retried_then_marked_failed(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let not_a_file = dir.path().to_path_buf();
    let app = spawn_with(b, move |s| {
        s.delivery.file_path = not_a_file;
        s.delivery.max_attempts = 3;
        s.delivery.retry_base_ms = 20;
    })
    .await;
    app.vishnu_login_otp().await;
    type Row = (String, i64, Option<String>, Option<Vec<u8>>);
    let rows: Vec<Row> = eventually(Duration::from_secs(10), || async {
        let rows: Vec<Row> = app
            .app
            .db
            .run(|c| {
                Ok(outbox_t::table
                    .select((
                        outbox_t::state,
                        outbox_t::attempts,
                        outbox_t::last_error,
                        outbox_t::payload,
                    ))
                    .load(c)?)
            })
            .await
            .unwrap();
        if rows.iter().all(|r| r.0 == "failed") {
            Ok(rows)
        } else {
            Err(format!("not failed in time: {rows:?}"))
        }
    })
    .await;
    for (_, attempts, error, payload) in rows {
        assert_eq!(attempts, 3);
        assert!(
            error
                .unwrap()
                .starts_with("file: file transport: cannot open")
        );
        assert!(payload.is_some());
    }
}

both!(
    codes_are_not_stored_in_clear,
    outbox_claims_are_exclusive_leases,
    failing_deliveries_are_retried_then_marked_failed,
);

/// `sslmode` in the URL reaches libpq: with `require`, the session is encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_follows_sslmode() {
    if postgres_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        #[derive(QueryableByName)]
        struct Ssl {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            ssl: bool,
        }
        let query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        for (mode, encrypted) in [("require", true), ("disable", false)] {
            let sep = if url.contains('?') { '&' } else { '?' };
            let with_mode = format!("{url}{sep}sslmode={mode}");
            let mut c = ConnectionManager::new(DatabaseUrl::parse(&with_mode).unwrap())
                .establish()
                .unwrap();
            let ssl = otpgate::per_backend!(&mut c, |c| diesel::sql_query(query)
                .get_result::<Ssl>(c))
            .unwrap()
            .ssl;
            assert_eq!(ssl, encrypted, "sslmode={mode}");
        }
    })
    .await
    .unwrap();
}

/// Waits for the housekeeping the gateway runs once as it starts: a test that counts
/// what its own run removes would otherwise race it for the rows.
async fn startup_housekeeping_done(app: &TestApp) {
    eventually(Duration::from_secs(10), || async {
        let a = app
            .request(reqwest::Method::GET, "/metrics", &[], String::new())
            .await;
        let ran = a.text.lines().any(|l| {
            l.starts_with("otpgate_housekeeping_duration_seconds_count ") && !l.ends_with(" 0")
        });
        if ran {
            Ok(())
        } else {
            Err("the start-up housekeeping has not run yet".to_string())
        }
    })
    .await;
}

/// Housekeeping removes the rows of destinations not sent to within any window, dead
/// sessions, failed logins outside the lockout window, and challenges and messages
/// past retention; it keeps what still counts, and the audit trail.
async fn housekeeping_keeps_only_what_still_counts(b: Backend) {
    use otpgate::db::schema::{send_limits, sessions};
    let app = spawn(b).await;
    startup_housekeeping_done(&app).await;
    let old = app.vishnu_login_otp().await;
    app.code(&old, "sms").await;
    let fresh = app.login_otp("Vishnu.kumar@syntel.com", "d").await;
    app.code(&fresh, "sms").await;
    let a = app
        .login_app(&fresh, &app.code(&fresh, "sms").await, "d")
        .await;
    assert!(a.json()["User"].is_object());
    let settings = app.app.settings.clone();
    let now = now_ms();
    app.app
        .db
        .run(move |c| {
            let long_ago = now - 8 * 86_400_000;
            diesel::update(challenges::table.find(&old))
                .set(challenges::expires_at.eq(long_ago))
                .execute(c)?;
            diesel::update(outbox_t::table.filter(outbox_t::challenge_id.eq(&old)))
                .set((
                    outbox_t::created_at.eq(long_ago),
                    outbox_t::updated_at.eq(long_ago),
                ))
                .execute(c)?;
            // The destinations last sent to a day and a second ago.
            let day_ago = now - 86_401_000;
            diesel::update(send_limits::table)
                .set((
                    send_limits::last_sent_at.eq(day_ago),
                    send_limits::recent_sends.eq(day_ago.to_string()),
                ))
                .execute(c)?;
            diesel::update(sessions::table)
                .set(sessions::expires_at.eq(now - 1))
                .execute(c)?;
            // A failed login from before the lockout window, and one within it.
            otpgate::db::login_failures::record(c, &["old"], now - 901_000)?;
            otpgate::db::login_failures::record(c, &["recent"], now - 1_000)?;
            Ok(())
        })
        .await
        .unwrap();
    let removed = otpgate::core::housekeeping::run(&app.app.db, &settings, now)
        .await
        .unwrap();
    assert_eq!(
        removed,
        otpgate::core::housekeeping::Removed {
            // Subjects are locked without a row (an advisory lock on PostgreSQL, the
            // write lock on SQLite): the rows are the user's two destinations', the
            // mobile number's and the email address's.
            limit_rows: 2,
            sessions: 1,
            capillary_sessions: 0,
            challenges: 1,
            messages: 2,
            login_failures: 1,
        }
    );
    assert_eq!(app.count("login_failures").await, 1);
    assert_eq!(app.count("challenges").await, 1);
    assert_eq!(app.count("outbox").await, 2);
    assert_eq!(app.count("audit_events").await, 3);
    // With its sends forgotten, the destination may receive codes again at once.
    app.login_otp("Vishnu.kumar@syntel.com", "d").await;
}

both!(housekeeping_keeps_only_what_still_counts);

/// Housekeeping deletes in bounded batches, and goes on until nothing is left: more
/// old rows than several batches hold are all removed, the recent ones kept.
async fn housekeeping_removes_more_than_a_batch(b: Backend) {
    use otpgate::core::housekeeping::{BATCH_ROWS, run};
    use otpgate::db::schema::send_limits;
    let app = spawn(b).await;
    startup_housekeeping_done(&app).await;
    let now = now_ms();
    let old = 2 * BATCH_ROWS as usize + 7;
    app.app
        .db
        .run(move |c| {
            let rows: Vec<_> = (0..old + 3)
                .map(|i| {
                    let at = if i < old { now - 30 * 86_400_000 } else { now };
                    (
                        send_limits::destination_key.eq(format!("d{i}")),
                        send_limits::last_sent_at.eq(at),
                        send_limits::recent_sends.eq(at.to_string()),
                    )
                })
                .collect();
            // Chunks stay below SQLite's limit on bound values per statement.
            for chunk in rows.chunks(300) {
                otpgate::per_backend!(c, |c| diesel::insert_into(send_limits::table)
                    .values(chunk)
                    .execute(c))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let settings = app.app.settings.clone();
    let removed = run(&app.app.db, &settings, now).await.unwrap();
    assert_eq!(removed.limit_rows, old);
    assert_eq!(app.count("send_limits").await, 3);
    assert_eq!(
        run(&app.app.db, &settings, now).await.unwrap().limit_rows,
        0
    );
}

both!(housekeeping_removes_more_than_a_batch);

/// On PostgreSQL, a housekeeping run does not read again the rows earlier runs deleted:
/// they stay in the table until vacuum (held off here, as it is for hours on a large
/// table), and a run that gathered every entry below its cutoff visited each of them
/// every time. Walking the index in order, a run that meets them marks them dead in
/// the index, and the runs after it skip them. (`pg_stat_force_next_flush` needs
/// PostgreSQL 15.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_housekeeping_does_not_read_what_it_deleted_before() {
    use otpgate::core::housekeeping::run;
    if postgres_url().is_none() {
        return;
    }
    let app = spawn_with(Backend::Postgres, |s| s.pool_size = 1).await;
    startup_housekeeping_done(&app).await;
    let now = now_ms();
    let month_ago = now - 30 * 86_400_000;
    app.app
        .db
        .run(move |c| {
            for sql in [
                "ALTER TABLE send_limits SET (autovacuum_enabled = false)".to_string(),
                format!(
                    "INSERT INTO send_limits (destination_key, last_sent_at) \
                     SELECT 'd' || i, CASE WHEN i % 2 = 0 THEN {month_ago} ELSE {now} END \
                     FROM generate_series(1, 40000) AS i"
                ),
                "ANALYZE send_limits".to_string(),
            ] {
                diesel::sql_query(sql).execute(c)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // Pages of send_limits read so far, as this one pooled connection reported them.
    let pages_read = || async {
        #[derive(QueryableByName)]
        struct Pages {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            pages: i64,
        }
        app.app
            .db
            .run(|c| {
                diesel::sql_query("SELECT pg_stat_force_next_flush()").execute(c)?;
                diesel::sql_query("SELECT pg_stat_clear_snapshot()").execute(c)?;
                let read: Pages = diesel::sql_query(
                    "SELECT (heap_blks_read + heap_blks_hit)::bigint AS pages \
                     FROM pg_statio_user_tables WHERE relname = 'send_limits'",
                )
                .get_result(c)?;
                Ok(read.pages)
            })
            .await
            .unwrap()
    };
    let settings = app.app.settings.clone();
    let first = run(&app.app.db, &settings, now).await.unwrap();
    assert_eq!(first.limit_rows, 20_000);
    // PostgreSQL marks an entry dead once no transaction anywhere on the server could
    // still see its row, and other tests' transactions come and go meanwhile: a run
    // that reads few pages must come, and then it has skipped every deleted row. A
    // run that gathers a bitmap never marks an entry, and reads them all every time.
    eventually(Duration::from_secs(60), || async {
        let before = pages_read().await;
        let again = run(&app.app.db, &settings, now).await.unwrap();
        let pages = pages_read().await - before;
        assert_eq!(again.limit_rows, 0);
        if pages < 20 {
            Ok(())
        } else {
            Err(format!("a run that deleted nothing read {pages} pages"))
        }
    })
    .await;
    assert_eq!(app.count("send_limits").await, 20_000);
}

/// The log transport takes messages (marked sent) without writing them anywhere a
/// code could be read back.
async fn log_transport_sends_without_keeping_text(b: Backend) {
    let app = spawn_with(b, |s| {
        s.delivery.email = vec!["log".into()];
        s.delivery.sms = vec!["log".into()];
    })
    .await;
    app.vishnu_login_otp().await;
    let states: Vec<(String, Option<Vec<u8>>)> = eventually(Duration::from_secs(5), || async {
        let states: Vec<(String, Option<Vec<u8>>)> = app
            .app
            .db
            .run(|c| {
                Ok(outbox_t::table
                    .select((outbox_t::state, outbox_t::payload))
                    .load(c)?)
            })
            .await
            .unwrap();
        if states.iter().all(|(s, p)| s == "sent" && p.is_none()) {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    assert_eq!(states.len(), 2);
    assert!(!app.sink.exists());
}

both!(log_transport_sends_without_keeping_text);

/// A superseded challenge's messages that are still queued are cancelled, not sent
/// later with a code that no longer works.
async fn superseding_cancels_queued_messages(b: Backend) {
    use otpgate::core::otp::issue;
    let (app, _db, _dir) = open_app(b).await;
    let settings = app.settings.clone();
    let mk = move || sms_issue_request(&settings, "user:1", "+15550001");
    let (keys, templates) = (app.keys.clone(), app.templates.clone());
    let (first, second) = app
        .db
        .run(move |c| {
            Ok((
                issue(c, &keys, &templates, &mk())?,
                issue(c, &keys, &templates, &mk())?,
            ))
        })
        .await
        .unwrap();
    type Row = (Option<String>, String, Option<String>, bool);
    let rows: Vec<Row> = app
        .db
        .run(|c| {
            Ok(outbox_t::table
                .order(outbox_t::created_at)
                .select((
                    outbox_t::challenge_id,
                    outbox_t::state,
                    outbox_t::last_error,
                    outbox_t::payload.is_not_null(),
                ))
                .load(c)?)
        })
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                Some(first.transaction_id.into_string()),
                "cancelled".into(),
                Some("cancelled: a newer code superseded it".into()),
                false
            ),
            (
                Some(second.transaction_id.into_string()),
                "queued".into(),
                None,
                true
            ),
        ]
    );
}

both!(superseding_cancels_queued_messages);
both!(a_claim_fails_the_messages_whose_code_is_dead);
