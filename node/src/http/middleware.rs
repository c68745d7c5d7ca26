//! Layers every client API request passes through: the correlation id and its log span, the
//! admin gate (admin capability + mTLS client certificate on `/v1/admin/*`), and the
//! `X-Ron-Leader` header on every answer.

use crate::error::ApiError;
use crate::http::respond::err;
use crate::node::Node;
use crate::security::capabilities;
use crate::serve::PeerIdentity;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// Header carrying the request's correlation id (taken from the client when well-formed,
/// otherwise made up here), echoed on the answer and logged as `corr_id`.
pub const CORRELATION_HEADER: &str = "x-request-id";

fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()))
}

/// Run the request inside a span carrying `corr_id` and `peer`, so every log line it causes
/// names both, and echo the correlation id.
pub(crate) async fn correlate(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let corr_id = correlation_id(req.headers());
    let peer = req
        .extensions()
        .get::<PeerIdentity>()
        .map(|p| p.addr.clone())
        .unwrap_or_default();
    let span = tracing::info_span!("request", corr_id = %corr_id, peer = %peer);
    let mut response = tracing::Instrument::instrument(next.run(req), span).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&corr_id) {
        response.headers_mut().insert(CORRELATION_HEADER, v);
    }
    response
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
