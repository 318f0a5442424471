//! The legacy wire formats, one folder each. A dialect decodes its requests into the
//! services' typed inputs, writes their outcomes (and every error) in its own shapes,
//! and declares its routes; it knows nothing of storage. Adding a dialect is a folder
//! and one line in [`DIALECTS`].

pub mod capillary;
pub mod summit;
pub mod twofactor;

use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;

use crate::state::AppState;
use crate::wire::routes::Route;

/// A dialect as the router sees it: its routes, the area of paths it answers for in
/// its own shape (unknown operations, wrong methods), and its handler.
pub struct Dialect {
    /// Its name in metrics and logs.
    pub name: &'static str,
    pub routes: &'static [Route],
    pub is_area: fn(&str) -> bool,
    pub handle: fn(HttpRequest, Payload, Data<AppState>) -> LocalBoxFuture<'static, HttpResponse>,
}

/// Every dialect the gateway serves.
pub const DIALECTS: &[Dialect] = &[
    Dialect {
        name: "summit",
        routes: summit::ROUTES,
        is_area: summit::is_area,
        handle: |r, p, s| Box::pin(summit::handle(r, p, s)),
    },
    Dialect {
        name: "twofactor",
        routes: twofactor::ROUTES,
        is_area: twofactor::is_area,
        handle: |r, p, s| Box::pin(twofactor::handle(r, p, s)),
    },
    Dialect {
        name: "capillary",
        routes: capillary::ROUTES,
        is_area: capillary::is_area,
        handle: |r, p, s| Box::pin(capillary::handle(r, p, s)),
    },
];

/// Checks the `routes` tables against what the dialects serve: a name routed `local`
/// must be one otpgate answers. Every problem, one a line.
pub fn check_routes(s: &crate::config::UpstreamSettings) -> Result<(), String> {
    use crate::config::RouteTo;
    let mut problems = Vec::new();
    let mut check = |section: &str,
                     table: &std::collections::BTreeMap<String, RouteTo>,
                     serves: &dyn Fn(&str) -> bool| {
        for (key, to) in table {
            if *to == RouteTo::Local && !serves(key) {
                problems.push(format!(
                    "upstream.{section}.routes: '{key}' is routed local, but otpgate does not serve it"
                ));
            }
        }
    };
    check("summit", &s.summit.routes, &|k| {
        summit::registry::find(k.split(':').next().unwrap_or(k)).is_some()
    });
    check("twofactor", &s.twofactor.routes, &|k| {
        twofactor::Operation::named(k).is_some()
    });
    check("capillary", &s.capillary.routes, &|k| {
        capillary::ROUTES
            .iter()
            .any(|r| r.matches(&format!("/auth/v1/{}", k.trim_matches('/'))))
    });
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
