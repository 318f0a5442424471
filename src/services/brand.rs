//! The brand a request names (the first step of every brand-scoped operation: what
//! else the request must carry, its signature included, depends on the brand).

use crate::core::brands::Brand;
use crate::db::capillary_brands;
use crate::error::{Error, Result};
use crate::state::AppState;

/// The configured brand of this name (matched without case); an unknown one is an
/// invalid request that names it.
pub async fn find(state: &AppState, name: &str) -> Result<Brand> {
    let lookup = name.to_string();
    let found = state
        .db
        .run(move |c| Ok(capillary_brands::find(c, &lookup)?))
        .await?;
    found.ok_or_else(|| {
        let shown: String = name.chars().take(100).collect();
        Error::invalid(format!("The brand '{shown}' is not configured."))
    })
}
