//! Capillary sessions: their validity and their OTPs' expiry, and how a session's
//! latest OTP is found.

use diesel::prelude::*;
use otpgate::cli::BrandSettings;
use otpgate::core::brands;
use otpgate::db::now_ms;
use otpgate::db::schema::capillary_sessions as sessions_t;

use super::{body, failed, route, with_otp};
use crate::both;
use crate::support::*;

async fn sessions_expire(b: Backend) {
    let app = spawn(b).await;
    app.add_brand(
        "DocDemo",
        BrandSettings {
            session_validity: Some(20),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "DocDemo", "MOBILE", "919999999993")
        .await;
    let s = app.cap_session_row(&sid).await;
    assert_eq!(s.expires_at - s.created_at, 20 * 60_000);
    let req = body("MOBILE", "919999999993", "DocDemo", &sid);
    app.cap(&route(false, "otp/generate"), req.clone()).await;
    let first = app.cap_code(&sid, "sms").await;
    // A code past its validity: generate again.
    let subject = brands::subject(&sid);
    app.app
        .db
        .run(move |c| {
            use otpgate::db::schema::challenges as ch;
            diesel::update(ch::table.filter(ch::subject.eq(&subject)))
                .set(ch::expires_at.eq(now_ms() - 1))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    failed(
        &app.cap(&route(false, "otp/validate"), with_otp(req.clone(), first))
            .await,
        1537,
    );
    app.cap(&route(false, "otp/generate"), req.clone()).await;
    let code = app.cap_code(&sid, "sms").await;
    // The session's validity runs out.
    let id = sid.clone();
    app.app
        .db
        .run(move |c| {
            diesel::update(sessions_t::table.find(&id))
                .set(sessions_t::expires_at.eq(now_ms() - 1))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    failed(
        &app.cap(&route(false, "otp/validate"), with_otp(req.clone(), code))
            .await,
        1505,
    );
    failed(&app.cap(&route(false, "otp/generate"), req).await, 1505);
}

/// A session's latest OTP (what otp/validate checks) is found through an index that
/// holds Capillary's challenges alone, not by reading every challenge, in a statement
/// planned before the session is known (as the gateway's are kept prepared).
async fn the_latest_otp_of_a_session_is_found_by_index(b: Backend) {
    use diesel::sql_types::Text;
    use otpgate::db::DbConnection;

    #[derive(QueryableByName)]
    struct SqlitePlan {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    #[derive(QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let app = spawn(b).await;
    let query = |subject: &str| {
        format!(
            "SELECT id FROM challenges WHERE subject = {subject} AND purpose = 'capillary' \
             ORDER BY created_at DESC, (superseded_at IS NULL) DESC LIMIT 1"
        )
    };
    let plan: Vec<String> = app
        .app
        .db
        .run(move |c| {
            Ok(match c {
                DbConnection::Sqlite(c) => {
                    diesel::sql_query(format!("EXPLAIN QUERY PLAN {}", query("?")))
                        .load::<SqlitePlan>(c)?
                        .into_iter()
                        .map(|p| p.detail)
                        .collect()
                }
                // With a table this small PostgreSQL would rather read it all; what
                // matters is that it can use an index, in the plan for any subject.
                DbConnection::Pg(c) => c.transaction(|c| {
                    diesel::sql_query("SET LOCAL enable_seqscan = off").execute(c)?;
                    diesel::sql_query("SET LOCAL plan_cache_mode = force_generic_plan")
                        .execute(c)?;
                    diesel::sql_query(format!("PREPARE latest (text) AS {}", query("$1")))
                        .execute(c)?;
                    let plan = diesel::sql_query("EXPLAIN EXECUTE latest ('capillary:P-x')")
                        .load::<PgPlan>(c)
                        .map(|v| v.into_iter().map(|p| p.line).collect());
                    diesel::sql_query("DEALLOCATE latest").execute(c)?;
                    plan
                })?,
            })
        })
        .await
        .unwrap();
    assert!(
        plan.iter()
            .any(|l| l.contains("challenges_capillary_latest")),
        "{plan:#?}"
    );
}

both!(
    sessions_expire,
    the_latest_otp_of_a_session_is_found_by_index,
);
