//! Layers every client API request passes through: the correlation id and its log span, the
//! admin gate (admin capability + mTLS client certificate on `/v1/admin/*`), the refusal of
//! query strings on writes, and the `X-Ron-Leader` header on every answer.

use crate::error::ApiError;
use crate::http::respond::{err, AuthFailure};
use crate::node::Node;
use crate::security::capabilities;
use crate::serve::PeerIdentity;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// Header carrying the request's correlation id (taken from the client when well-formed,
/// otherwise made up here), echoed on the answer and logged as `corr_id`.
pub const CORRELATION_HEADER: &str = "x-request-id";

fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::seam::well_formed_corr_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()))
}

/// Run the request inside a span carrying `corr_id` and `peer`, so every log line it causes
/// names both, echo the correlation id, and count an authentication failure by the kind of
/// caller (`auth_failures_total{peer}`). The request's own header is set to the id in use
/// (see [`request_corr_id`]), so a handler that passes the request on (a forwarded write) names
/// the same id.
pub(crate) async fn correlate(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let corr_id = correlation_id(req.headers());
    if let Ok(v) = axum::http::HeaderValue::from_str(&corr_id) {
        req.headers_mut().insert(CORRELATION_HEADER, v);
    }
    let (peer, kind) = req
        .extensions()
        .get::<PeerIdentity>()
        .map(|p| (p.addr.clone(), p.kind()))
        .unwrap_or((String::new(), "anonymous"));
    let span = tracing::info_span!("request", corr_id = %corr_id, peer = %peer);
    let mut response = tracing::Instrument::instrument(next.run(req), span).await;
    if response.extensions().get::<AuthFailure>().is_some() {
        crate::metrics::auth_failure(kind);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&corr_id) {
        response.headers_mut().insert(CORRELATION_HEADER, v);
    }
    response
}

/// The correlation id [`correlate`] settled on for this request (empty outside the router).
pub(crate) fn request_corr_id(headers: &HeaderMap) -> &str {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Admin endpoints need an admin capability and, on a TLS node, a verified client
/// certificate (mTLS).
pub(crate) async fn guard_admin(
    State(node): State<Arc<Node>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/v1/admin/") {
        if let Err(e) = admin_allowed(&node, &req) {
            return err(&node, e);
        }
    }
    next.run(req).await
}

fn admin_allowed(node: &Node, req: &axum::extract::Request) -> Result<(), ApiError> {
    let client_cert = req
        .extensions()
        .get::<PeerIdentity>()
        .is_some_and(|p| p.client_cert.is_some());
    if node.config.tls.enabled && !client_cert {
        tracing::info!(
            reason = "policy_denied",
            "admin request without a client certificate"
        );
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "policy_denied",
            "admin operations need an mTLS client certificate signed by the cluster CA",
        ));
    }
    if let Some(grant) = node.auth.verify(req.headers(), node.now_secs())? {
        capabilities::authorize_admin(&grant)?;
        node.check_not_revoked(&grant)?;
    }
    Ok(())
}

/// No write or admin route takes a query string: `POST /v1/transfers?dry_run=true` is refused
/// with 400 `invalid_query` before the body is read or anything is sequenced, instead of being
/// committed with the parameter silently ignored. Layered on the routes only, so an unknown path
/// still answers `no_route`.
pub(crate) async fn refuse_write_query(
    State(node): State<Arc<Node>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() == Method::POST {
        if let Some(query) = req.uri().query().filter(|q| !q.is_empty()) {
            let shown: String = query.chars().take(64).collect();
            return err(
                &node,
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "POST {} takes no query parameters (got `{shown}`)",
                        req.uri().path()
                    ),
                ),
            );
        }
    }
    next.run(req).await
}

/// Every answer names the current leader in `X-Ron-Leader`, so a client can go there directly
/// (write answers and errors also carry it in the body).
pub(crate) async fn name_leader(State(node): State<Arc<Node>>, mut response: Response) -> Response {
    if let Some(leader) = node.leader_id() {
        if let Ok(v) = axum::http::HeaderValue::from_str(&leader.to_string()) {
            response.headers_mut().insert("x-ron-leader", v);
        }
    }
    response
}

/// Time a routed request (`http_request_duration_seconds{route}`, the route's path pattern, so
/// ids never become labels).
pub(crate) async fn time_route(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let start = tokio::time::Instant::now();
    let response = next.run(req).await;
    crate::metrics::request_duration(&route, start.elapsed().as_secs_f64());
    response
}
