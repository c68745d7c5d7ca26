//! Answering a rejected request: one place that logs it, counts it (`rejected_total{reason}`;
//! `auth_failures_total` through a mark the request's middleware counts) and renders the error body with the leader; and the 404-or-JSON answer
//! of lookups.

use crate::error::ApiError;
use crate::node::Node;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Log a rejected request and answer it.
pub(crate) fn err(node: &Node, e: ApiError) -> Response {
    tracing::info!(node = node.id, reason = %e.reason, status = e.status, "request rejected");
    if let Some(reason) = e.fault {
        node.enter_safe_mode(crate::safe_mode::Fault {
            reason: reason.into(),
            message: e.message.clone(),
        });
    }
    crate::metrics::rejected(&e.reason);
    let auth_failure = is_auth_failure(&e.reason);
    let too_large = e.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16();
    let mut response = e.into_response_with_leader(node.leader_id());
    if auth_failure {
        // Counted by `middleware::correlate`, which knows who called.
        response.extensions_mut().insert(AuthFailure);
    }
    if too_large {
        // The rest of the body was never read: the connection cannot carry another request.
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Marks an answer that refused authentication or authorization (`auth_failures_total`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AuthFailure;

/// Reasons that are authentication or authorization failures (`auth_failures_total`).
fn is_auth_failure(reason: &str) -> bool {
    matches!(
        reason,
        "unauth"
            | "cap_invalid"
            | "cap_ambiguous"
            | "cap_expired"
            | "cap_not_yet_valid"
            | "cap_revoked"
            | "policy_denied"
    )
}

/// The record as JSON, or 404 with `reason`.
pub(crate) fn found<T: Serialize>(
    value: Option<T>,
    reason: &str,
    what: impl FnOnce() -> String,
) -> Result<Response, ApiError> {
    match value {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, reason, what())),
    }
}
