//! The one reject taxonomy of the HTTP API: every error answers with a status, a stable
//! `reason` code (also the `rejected_total{reason}` label) and a human message, plus the leader
//! when one is known and `Retry-After` where retrying later helps.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// An API error.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable reason.
    pub reason: String,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds after which a retry may succeed.
    pub retry_after: Option<u64>,
}

/// JSON body of an error response.
#[derive(Serialize)]
struct Body<'a> {
    error: ErrorBody<'a>,
    leader: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    reason: &'a str,
    message: &'a str,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            reason: reason.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Add a Retry-After hint.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400 with a reason.
    pub fn bad_request(reason: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, message)
    }

    /// 503: no leader is known (an election is under way); retry shortly.
    pub fn no_leader() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_leader",
            "no leader is known; an election is in progress",
        )
        .retry_after(1)
    }

    /// 429 `busy`: the sequencer queue is full, the sender is over its rate limit, or the
    /// connection cap is reached. Retry after a second.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "busy", message).retry_after(1)
    }

    /// 503: the node refuses writes after a storage fault.
    pub fn safe_mode(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "safe_mode", message)
    }

    /// 504 `timeout`: a write was not confirmed in time; its outcome is unknown, and retrying
    /// with the same ids is safe.
    pub fn write_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the write was not confirmed in time; its outcome is unknown — retrying with the same ids is safe",
        )
        .retry_after(1)
    }

    /// A storage failure: corruption puts the node in safe mode (503), anything else is a 500.
    pub fn storage(e: raft_store::StoreError) -> Self {
        if e.is_corruption() {
            Self::safe_mode(format!("storage corruption detected: {e}"))
        } else {
            Self::internal(format!("storage: {e}"))
        }
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Render with the current leader.
    pub fn into_response_with_leader(self, leader: Option<u64>) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Body {
            error: ErrorBody {
                reason: &self.reason,
                message: &self.message,
            },
            leader,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_with_leader(None)
    }
}
