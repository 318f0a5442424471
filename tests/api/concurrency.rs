//! Verification and limits under parallel requests: what the database guarantees,
//! not what one process happens to serialise.

use futures_util::future::join_all;

use crate::both;
use crate::support::*;

async fn parallel_wrong_codes_never_exceed_max_attempts(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    let bad = wrong(&code);
    let answers = join_all((0..24).map(|_| app.login_app(&txn, &bad, "d"))).await;
    let errors: Vec<String> = answers.iter().map(|a| a.errors()).collect();
    let invalid = errors
        .iter()
        .filter(|e| e.starts_with("Invalid OTP."))
        .count();
    let locked = errors
        .iter()
        .filter(|e| e.starts_with("Maximum number of OTP attempts exceeded"))
        .count();
    assert_eq!((invalid, locked), (3, 21), "{errors:?}");
    assert_eq!(
        app.login_app(&txn, &code, "d").await.errors(),
        "Maximum number of OTP attempts exceeded. Please generate a new OTP."
    );
}

async fn parallel_right_codes_succeed_exactly_once(b: Backend) {
    let app = spawn(b).await;
    let txn = app.vishnu_login_otp().await;
    let code = app.code(&txn, "sms").await;
    let answers = join_all((0..24).map(|_| app.login_app(&txn, &code, "d"))).await;
    let ok = answers
        .iter()
        .filter(|a| a.json()["User"].is_object())
        .count();
    let used = answers
        .iter()
        .filter(|a| {
            a.json()["Errors"] == "The OTP has already been used. Please generate a new OTP."
        })
        .count();
    assert_eq!((ok, used), (1, 23));
    assert_eq!(app.count("sessions").await, 1);
}

async fn parallel_generates_respect_the_send_limit(b: Backend) {
    let app = spawn_with(b, |s| s.otp.max_sends = 3).await;
    app.vishnu().await;
    let answers =
        join_all((0..12).map(|_| app.summit(login_otp_request("Vishnu.kumar@syntel.com", "d"))))
            .await;
    let ok = answers.iter().filter(|a| a.json()["Errors"] == "").count();
    let limited = answers
        .iter()
        .filter(|a| a.errors().starts_with("The OTP limit for this destination"))
        .count();
    assert_eq!(
        (ok, limited),
        (3, 9),
        "{:?}",
        answers.iter().map(|a| a.errors()).collect::<Vec<_>>()
    );
    assert_eq!(app.count("challenges").await, 3);
    assert_eq!(app.count("outbox").await, 6);
    // Of the three, only the last is open: each superseded the one before.
    let open = app.count("challenges WHERE superseded_at IS NULL").await;
    assert_eq!(open, 1);
}

both!(
    parallel_wrong_codes_never_exceed_max_attempts,
    parallel_right_codes_succeed_exactly_once,
    parallel_generates_respect_the_send_limit,
);

/// The lock that serialises a subject's issues on PostgreSQL is held from the start of
/// the transaction to its end, and no longer: on its own, and inside a
/// transaction already open, where it lasts until the outer one ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subjects_lock_lasts_as_long_as_its_transaction() {
    use diesel::prelude::*;
    use otpgate::db::{
        ConnectionManager, DatabaseUrl, DbConnection, write_transaction, write_transaction_locked,
    };
    if postgres_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let url = DatabaseUrl::parse(&db.url).unwrap();
    tokio::task::spawn_blocking(move || {
        #[derive(QueryableByName)]
        struct Held {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let held = |c: &mut DbConnection| -> QueryResult<i64> {
            let DbConnection::Pg(c) = c else {
                unreachable!("a PostgreSQL connection")
            };
            let query = "SELECT count(*) AS n FROM pg_locks \
                         WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted";
            Ok(diesel::sql_query(query).get_result::<Held>(c)?.n)
        };
        let mut c = ConnectionManager::new(url).establish().unwrap();
        let inside = write_transaction_locked(&mut c, 42, |c| held(c)).unwrap();
        assert_eq!((inside, held(&mut c).unwrap()), (1, 0), "alone");
        let (inside, after_inner) = write_transaction(&mut c, |c| {
            let inside = write_transaction_locked(c, 43, |c| held(c))?;
            Ok::<_, diesel::result::Error>((inside, held(c)?))
        })
        .unwrap();
        assert_eq!(
            (inside, after_inner, held(&mut c).unwrap()),
            (1, 1, 0),
            "inside a transaction"
        );
    })
    .await
    .unwrap();
}
