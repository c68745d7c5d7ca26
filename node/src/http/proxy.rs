//! Relaying a client API request to the leader's API and its answer back unchanged: linearizable
//! reads a follower cannot serve, and admin changes that run on the leader. A relayed request
//! carries `x-ron-forwarded`, so it is never relayed twice.

use crate::error::ApiError;
use crate::http::respond::err;
use crate::node::Node;
use crate::seam::{Call, CallError, FORWARDED_HEADER};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use raft_store::NodeInfo;

/// Admin changes run on the leader; a follower proxies them there.
pub(crate) async fn on_leader(
    node: &Node,
    headers: &HeaderMap,
    path: &str,
    body: Bytes,
) -> Option<Response> {
    if node.is_leader() {
        return None;
    }
    if headers.contains_key(FORWARDED_HEADER) {
        return Some(err(node, ApiError::no_leader()));
    }
    Some(match node.leader() {
        Some((_, info)) => match proxy_post(node, &info, path, body, headers).await {
            Ok(r) => r,
            Err(e) => err(node, e),
        },
        None => err(node, ApiError::no_leader()),
    })
}

pub(crate) async fn proxy_get(
    node: &Node,
    leader: &NodeInfo,
    path: &str,
) -> Result<Response, ApiError> {
    proxy(node, "GET", leader, path, Vec::new(), None).await
}

/// Relay an admin request to the leader with the caller's capability, which the leader checks
/// again.
async fn proxy_post(
    node: &Node,
    leader: &NodeInfo,
    path: &str,
    body: Bytes,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    proxy(node, "POST", leader, path, body.to_vec(), authorization).await
}

/// How long a relayed request waits for the leader: longer than the leader's own wait for a
/// write or membership change (`limits.write_timeout_ms`), so that its answer — a 504 included —
/// reaches the caller, and shorter than the caller's request deadline
/// (`limits.request_timeout_ms`): halfway between the two.
fn relay_timeout(limits: &crate::config::LimitsSection) -> std::time::Duration {
    let (write, request) = (limits.write_timeout_ms, limits.request_timeout_ms);
    std::time::Duration::from_millis(write + request.saturating_sub(write) / 2)
}

/// A relay that never reached the leader is `no_leader` (nothing happened: retry); one that
/// reached it and got no answer has an unknown outcome (504 `timeout`).
fn relay_error(e: CallError) -> ApiError {
    match e {
        CallError::Unreachable(_) => ApiError::no_leader(),
        CallError::Timeout | CallError::Network(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the leader did not answer the relayed request in time; its outcome is unknown \
             (sending it again is safe)",
        )
        .retry_after(1),
    }
}

/// Relay a request to the leader's API and its answer back, unchanged.
async fn proxy(
    node: &Node,
    method: &'static str,
    leader: &NodeInfo,
    path: &str,
    body: Vec<u8>,
    authorization: Option<String>,
) -> Result<Response, ApiError> {
    let mut headers = vec![
        (FORWARDED_HEADER, node.id.to_string()),
        ("content-type", "application/json".to_string()),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    let answer = node
        .connector
        .call(Call {
            method,
            addr: leader.api_addr.clone(),
            path: path.to_string(),
            headers,
            body,
            timeout: relay_timeout(&node.config.limits),
        })
        .await
        .map_err(relay_error)?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    if let Some(r) = answer
        .retry_after
        .and_then(|r| axum::http::HeaderValue::from_str(&r).ok())
    {
        out.headers_mut().insert(header::RETRY_AFTER, r);
    }
    Ok(out)
}
