//! The web console (`docs/CONSOLE.md`) under `/console`: three static assets built from
//! `console/` into `node/console-dist/` and embedded in the binary, so the node needs no other
//! server and the browser asks no other host. The console is a page of the public read API: it
//! holds no capability and calls only `GET` routes of this node, which the Content-Security-Policy
//! below enforces (`connect-src 'self'`, no inline script or style, no framing).

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use crate::node::Node;

/// The page, its script (the verifier bundled with BLAKE3 and Ed25519) and its style sheet.
const INDEX_HTML: &[u8] = include_bytes!("../../console-dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../console-dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../console-dist/app.css");

/// Scripts, styles and fetches from this origin only; nothing inline, no plugins, no forms, no
/// framing by another page. Images only for the `data:` favicon (no request for one).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The console's routes, merged into the client API router.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route(
            "/console",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
}

/// One embedded asset with the console's security headers. `no-cache`: a browser revalidates,
/// so an upgraded node never runs an old verifier from the cache.
fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 7] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (headers, body).into_response()
}
