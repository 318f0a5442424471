//! The per-brand limits: OTP retries, OTPs per customer and window (kept through
//! housekeeping), and what using them up does to the session.

use futures_util::future::join_all;
use otpgate::cli::BrandSettings;
use otpgate::db::now_ms;

use super::{Generated, body, failed, route, status, with_otp};
use crate::both;
use crate::support::*;

async fn retries_are_limited_per_brand(b: Backend) {
    let app = spawn(b).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    app.add_brand(
        "Strict",
        BrandSettings {
            max_otp_retries: Some(2),
            ..Default::default()
        },
    )
    .await;
    // Default: 5 retries. Four wrong codes are each "Invalid OTP."; the fifth uses up
    // the retries, and then even the right code is refused.
    let Generated { req, code, .. } = app
        .cap_generated(false, "DocDemo", ("MOBILE", "919999999993"), "sms")
        .await;
    for _ in 0..4 {
        failed(
            &app.cap(
                &route(false, "otp/validate"),
                with_otp(req.clone(), wrong(&code)),
            )
            .await,
            1506,
        );
    }
    let a = app
        .cap(
            &route(false, "otp/validate"),
            with_otp(req.clone(), wrong(&code)),
        )
        .await;
    failed(&a, 1518);
    assert_eq!(
        status(&a).2,
        "Reached the maximum allowed OTP retry attempts, Authenticate form the start."
    );
    // The session is closed: even the right code is refused.
    failed(
        &app.cap(&route(false, "otp/validate"), with_otp(req.clone(), code))
            .await,
        1505,
    );

    let Generated { req, code, .. } = app
        .cap_generated(true, "Strict", ("EMAIL", "x@example.com"), "email")
        .await;
    failed(
        &app.cap(
            &route(true, "otp/validate"),
            with_otp(req.clone(), wrong(&code)),
        )
        .await,
        1506,
    );
    failed(
        &app.cap(
            &route(true, "otp/validate"),
            with_otp(req.clone(), wrong(&code)),
        )
        .await,
        1518,
    );
    failed(
        &app.cap(&route(true, "otp/validate"), with_otp(req, code))
            .await,
        1505,
    );
}

async fn otp_limits_are_per_brand(b: Backend) {
    let app = spawn(b).await;
    app.add_brand(
        "Limited",
        BrandSettings {
            otp_max_count: Some("2".into()),
            otp_timeout: Some("10".into()),
            ..Default::default()
        },
    )
    .await;
    app.add_brand("Open", BrandSettings::default()).await;
    // One number, two brands: each brand counts its own sends.
    let number = "919000000001";
    let generate = route(false, "otp/generate");
    let open_sid = app.cap_session(false, "Open", "MOBILE", number).await;
    let open = body("MOBILE", number, "Open", &open_sid);
    for _ in 0..4 {
        assert_eq!(status(&app.cap(&generate, open.clone()).await).1, 200);
    }
    let sid = app.cap_session(false, "Limited", "MOBILE", number).await;
    let req = body("MOBILE", number, "Limited", &sid);
    for _ in 0..2 {
        let a = app.cap(&generate, req.clone()).await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
    }
    let a = app.cap(&generate, req).await;
    failed(&a, 1534);
    assert_eq!(
        status(&a).2,
        "Reached the maximum number of OTPs allowed per customer."
    );
    // No limit of its own (null): the gateway's, 5 sends per 15 minutes, still holds,
    // and the other brand's sends did not count against it.
    let a = app.cap(&generate, open.clone()).await;
    assert_eq!(status(&a).1, 200, "{}", a.text);
    failed(&app.cap(&generate, open.clone()).await, 1534);

    // `otpgate brand set` changes a brand's limit: the 5 sends made before still count.
    app.set_brand(
        "OPEN",
        BrandSettings {
            otp_max_count: Some("7".into()),
            otp_timeout: Some("60".into()),
            ..Default::default()
        },
    )
    .await;
    for _ in 0..2 {
        let a = app.cap(&generate, open.clone()).await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
    }
    failed(&app.cap(&generate, open).await, 1534);
}

/// The retries used up close the session: it gives no new code with fresh retries;
/// the client starts again with token/generate.
async fn used_up_retries_close_the_session(b: Backend) {
    let app = spawn(b).await;
    app.add_brand(
        "Strict",
        BrandSettings {
            max_otp_retries: Some(1),
            ..Default::default()
        },
    )
    .await;
    for web in [false, true] {
        let Generated { req, code, .. } = app
            .cap_generated(web, "Strict", ("MOBILE", "919999999993"), "sms")
            .await;
        failed(
            &app.cap(
                &route(web, "otp/validate"),
                with_otp(req.clone(), wrong(&code)),
            )
            .await,
            1518,
        );
        let before = app.deliveries().len();
        failed(
            &app.cap(&route(web, "otp/generate"), req.clone()).await,
            1505,
        );
        assert_eq!(app.deliveries().len(), before, "no new code went out");
        failed(
            &app.cap(&route(web, "otp/validate"), with_otp(req, code))
                .await,
            1505,
        );
        // A new session works.
        let Generated { req, code, .. } = app
            .cap_generated(web, "Strict", ("MOBILE", "919999999993"), "sms")
            .await;
        let a = app
            .cap(&route(web, "otp/validate"), with_otp(req, code))
            .await;
        assert_eq!(status(&a).1, 200, "{}", a.text);
    }
}

/// Sends count for a brand's whole otpTimeOut, even when it is longer than any window
/// of the gateway's own policies: housekeeping keeps them.
async fn housekeeping_keeps_sends_for_a_brands_window(b: Backend) {
    let app = spawn(b).await;
    app.add_brand(
        "Weekly",
        BrandSettings {
            otp_max_count: Some("1".into()),
            otp_timeout: Some("10080".into()),
            ..Default::default()
        },
    )
    .await;
    let sid = app
        .cap_session(false, "Weekly", "MOBILE", "919000000005")
        .await;
    let req = body("MOBILE", "919000000005", "Weekly", &sid);
    assert_eq!(
        status(&app.cap(&route(false, "otp/generate"), req.clone()).await).1,
        200
    );
    // Three days on, the send still counts: housekeeping run then must keep it.
    let settings = app.app.settings.clone();
    let later = now_ms() + 3 * 86_400_000;
    otpgate::core::housekeeping::run(&app.app.db, &settings, later)
        .await
        .unwrap();
    // (The session ran out meanwhile; a new one is the same brand and number.)
    let sid = app
        .cap_session(false, "Weekly", "MOBILE", "919000000005")
        .await;
    let req = body("MOBILE", "919000000005", "Weekly", &sid);
    failed(&app.cap(&route(false, "otp/generate"), req).await, 1534);
}

/// Fifty wrong codes at once on one session get what fifty in a row would: "Invalid
/// OTP." while retries are left, 1518 once, for the guess that used them up, and
/// "Invalid session." after it. Fifty right codes at once: one validates, the others
/// find the session closed.
async fn parallel_validations_each_get_their_own_answer(b: Backend) {
    let app = spawn(b).await;
    app.add_brand("DocDemo", BrandSettings::default()).await;
    let validate = route(false, "otp/validate");
    let codes = |answers: &[Answer]| {
        let mut n = std::collections::BTreeMap::new();
        for a in answers {
            *n.entry(status(a).1).or_insert(0) += 1;
        }
        n
    };
    let Generated { req, code, .. } = app
        .cap_generated(false, "DocDemo", ("MOBILE", "919999999981"), "sms")
        .await;
    let guess = with_otp(req.clone(), wrong(&code));
    let answers = join_all((0..50).map(|_| app.cap(&validate, guess.clone()))).await;
    assert_eq!(
        codes(&answers),
        [(1505, 45), (1506, 4), (1518, 1)].into_iter().collect(),
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );

    let Generated { req, code, .. } = app
        .cap_generated(false, "DocDemo", ("MOBILE", "919999999982"), "sms")
        .await;
    let right = with_otp(req, code);
    let answers = join_all((0..50).map(|_| app.cap(&validate, right.clone()))).await;
    assert_eq!(
        codes(&answers),
        [(200, 1), (1505, 49)].into_iter().collect(),
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
}

both!(
    parallel_validations_each_get_their_own_answer,
    retries_are_limited_per_brand,
    otp_limits_are_per_brand,
    used_up_retries_close_the_session,
    housekeeping_keeps_sends_for_a_brands_window,
);
