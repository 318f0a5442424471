//! E-mail through SMTP: authentication, the organisation's words, TLS and STARTTLS,
//! and refusing what is not safe.

use otpgate::config::{OrgDelivery, TemplateSet};

use super::{VISHNU, fast};
use crate::both;
use crate::support::smtp::{self, MailServer, Security};
use crate::support::*;

/// An e-mail goes through SMTP with authentication; the server receives From, To,
/// Subject, Message-ID and the code, which logs in. The organisation's From and
/// language are used; the SMS (to the file) is in the organisation's language.
async fn smtp_delivers_the_code_in_the_organisations_words(b: Backend) {
    let mail = MailServer::start().await;
    let app = spawn_with(b, |s| {
        s.delivery.providers = vec![smtp::provider("mail", mail.port)];
        s.delivery.email = vec!["mail".into()];
        s.delivery.sms = vec!["file".into()];
        let mut org = OrgDelivery {
            app_name: Some("Syntel Desk".into()),
            default_language: Some("hi".into()),
            email_from: Some("{app} <otp@syntel.test>".into()),
            sms_sender: Some("SYNTEL".into()),
            ..Default::default()
        };
        org.templates.insert(
            "hi".into(),
            TemplateSet {
                sms: Some("{code} आपका {app} OTP है। {minutes} मिनट में समाप्त।".into()),
                ..Default::default()
            },
        );
        s.delivery.orgs.insert("1".into(), org);
    })
    .await;
    let txn = app.vishnu_login_otp().await;

    let mails = mail.wait_for(1).await;
    let m = &mails[0];
    assert_eq!(m.auth.as_deref(), Some("|otp-user|otp-pass"));
    assert_eq!(m.from, "<otp@syntel.test>");
    assert_eq!(m.to, vec![format!("<{VISHNU}>")]);
    assert_eq!(
        m.header("From").as_deref(),
        Some("\"Syntel Desk\" <otp@syntel.test>")
    );
    assert_eq!(m.header("To").as_deref(), Some(VISHNU));
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("Your Syntel Desk one-time password")
    );
    assert!(m.header("Message-ID").is_some_and(|id| id.contains('@')));
    assert!(
        m.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let body = m.body();
    assert!(body.contains("It expires in 10 minutes."), "{body}");
    let code = first_digits(&body);
    assert_eq!(code.len(), 6);

    // The SMS in Hindi, with the same code.
    let sms = app.code(&txn, "sms").await;
    assert_eq!(sms, code);
    assert_eq!(app.deliveries()[0]["sender"], "SYNTEL");
    let text = app.deliveries()[0]["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        format!("{code} आपका Syntel Desk OTP है। 10 मिनट में समाप्त।")
    );

    let rows = outbox_until(&app.app, all_final).await;
    let email = rows.iter().find(|r| r.channel == "email").unwrap();
    assert_eq!(
        (
            email.state.as_str(),
            email.provider.as_deref(),
            email.provider_ref.as_deref()
        ),
        ("sent", Some("mail"), Some("2.0.0 ok: queued as Q1"))
    );
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());
}

/// TLS from the first byte and STARTTLS, with a private CA. A certificate that is not
/// trusted, or a server that does not offer STARTTLS when it is required, gets
/// nothing (not even the credentials); the next provider sends the message.
async fn smtp_speaks_tls_and_starttls_and_refuses_what_is_not_safe(b: Backend) {
    let no_starttls = MailServer::start_with(Security::Plain).await;
    let wrapper = MailServer::start_with(Security::Tls).await;
    let starttls = MailServer::start_with(Security::StartTls).await;
    let (p, w) = (no_starttls.port, wrapper.port);
    let app = spawn_with(b, move |s| {
        fast(&mut s.delivery);
        s.delivery.providers = vec![
            smtp::secure_provider("plain-only", p, "starttls", true),
            smtp::secure_provider("untrusted", w, "tls", false),
            smtp::secure_provider("wrapper", w, "tls", true),
        ];
        s.delivery.email = vec!["plain-only".into(), "untrusted".into(), "wrapper".into()];
        s.otp.channels = vec!["email".into()];
    })
    .await;
    let txn = app.vishnu_login_otp().await;
    let mails = wrapper.wait_for(1).await;
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth.as_deref(), Some("|otp-user|otp-pass"));
    assert!(no_starttls.mails().is_empty());
    let rows = outbox_until(&app.app, all_final).await;
    assert_eq!(
        (
            rows[0].state.as_str(),
            rows[0].attempts,
            rows[0].provider.as_deref()
        ),
        ("sent", 1, Some("wrapper"))
    );
    let code = first_digits(&mails[0].body());
    assert!(app.login_app(&txn, &code, "d").await.json()["User"].is_object());

    let s = starttls.port;
    let app = spawn_with(b, move |st| {
        st.delivery.providers = vec![smtp::secure_provider("submission", s, "starttls", true)];
        st.delivery.email = vec!["submission".into()];
        st.otp.channels = vec!["email".into()];
    })
    .await;
    app.vishnu_login_otp().await;
    let mails = starttls.wait_for(1).await;
    assert!(mails[0].tls, "the message went after the upgrade");
    assert_eq!(mails[0].auth.as_deref(), Some("|otp-user|otp-pass"));

    // With only the unsafe ones, the message fails, and the error says why.
    let app = spawn_with(b, move |s| {
        s.delivery.max_attempts = 1;
        s.delivery.providers = vec![
            smtp::secure_provider("plain-only", p, "starttls", true),
            smtp::secure_provider("untrusted", w, "tls", false),
        ];
        s.delivery.email = vec!["plain-only".into(), "untrusted".into()];
        s.otp.channels = vec!["email".into()];
    })
    .await;
    app.vishnu_login_otp().await;
    let rows = outbox_until(&app.app, all_final).await;
    let error = rows[0].last_error.clone().unwrap_or_default();
    assert_eq!(rows[0].state, "failed");
    assert!(
        error.starts_with("plain-only: SMTP localhost: ") && error.contains("STARTTLS"),
        "{error}"
    );
    assert!(
        error.contains("; untrusted: SMTP localhost: ") && error.contains("certificate"),
        "{error}"
    );
    assert!(no_starttls.mails().is_empty() && wrapper.mails().len() == 1);
}

both!(
    smtp_delivers_the_code_in_the_organisations_words,
    smtp_speaks_tls_and_starttls_and_refuses_what_is_not_safe,
);
