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
    pub routes: &'static [Route],
    pub is_area: fn(&str) -> bool,
    pub handle: fn(HttpRequest, Payload, Data<AppState>) -> LocalBoxFuture<'static, HttpResponse>,
}

/// Every dialect the gateway serves.
pub const DIALECTS: &[Dialect] = &[
    Dialect {
        routes: summit::ROUTES,
        is_area: summit::is_area,
        handle: |r, p, s| Box::pin(summit::handle(r, p, s)),
    },
    Dialect {
        routes: twofactor::ROUTES,
        is_area: twofactor::is_area,
        handle: |r, p, s| Box::pin(twofactor::handle(r, p, s)),
    },
    Dialect {
        routes: capillary::ROUTES,
        is_area: capillary::is_area,
        handle: |r, p, s| Box::pin(capillary::handle(r, p, s)),
    },
];
