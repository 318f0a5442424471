//! The wire schemas of schemas/, built into the binary and served at
//! GET /schemas/{path}, with the OpenAPI document at GET /openapi.json.

use actix_web::HttpResponse;
use actix_web::http::header;
use include_dir::{Dir, include_dir};

pub static SCHEMAS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/schemas");

/// The Content-Type of a schema file, by its name.
pub fn content_type(path: &str) -> &'static str {
    if path.ends_with(".schema.json") {
        "application/schema+json"
    } else if path.ends_with(".json") {
        "application/json"
    } else if path.ends_with(".xsd") {
        "application/xml; charset=utf-8"
    } else if path.ends_with(".md") {
        "text/markdown; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// A file of schemas/, by its path there (`summit/request.schema.json`); None when
/// there is no such file.
pub fn file(path: &str) -> Option<HttpResponse> {
    // Only names inside the embedded tree are found: `..` and absolute paths are not.
    let f = SCHEMAS.get_file(path).filter(|_| !path.contains(".."))?;
    Some(
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, content_type(path)))
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(f.contents()),
    )
}

/// The OpenAPI document of every route.
pub fn openapi() -> Option<HttpResponse> {
    let f = SCHEMAS.get_file("openapi.json")?;
    Some(
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(f.contents()),
    )
}
