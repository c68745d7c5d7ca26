//! The one reject taxonomy of the HTTP API: every error answers with a status, a stable
//! `reason` code (also the `rejected_total{reason}` label) and a human message, plus the leader
//! when one is known and `Retry-After` where retrying later helps.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Every `error.reason` the HTTP API can answer with (also every `rejected_total{reason}` label
/// of a request refusal). `docs/openapi.yaml`'s `ErrorReason` enum and the reason table of
/// `docs/API.md` are checked against this list, and this list against the code, by the tests
/// below.
pub const REASONS: &[&str] = &[
    "account_not_found",
    "already_initialized",
    "backup_failed",
    "bad_gateway",
    "busy",
    "cap_ambiguous",
    "cap_expired",
    "cap_invalid",
    "cap_not_yet_valid",
    "cap_revoked",
    "empty_batch",
    "headers_too_large",
    "history_not_kept",
    "internal",
    "invalid_encoding",
    "invalid_id",
    "invalid_json",
    "invalid_query",
    "invalid_range",
    "invalid_request",
    "malformed_request",
    "membership_change_failed",
    "method_not_allowed",
    "no_checkpoint",
    "no_leader",
    "no_route",
    "not_in_safe_mode",
    "policy_denied",
    "safe_mode",
    "safe_mode_check_failed",
    "timeout",
    "too_large",
    "too_many_events",
    "transfer_not_found",
    "unauth",
    "unknown_kind",
    "unsupported_version",
    "uri_too_long",
    "wrong_cluster",
    "wrong_operation",
];

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
    /// The safe-mode reason, when answering this error means the node found a fault in its own
    /// storage (a checksum failure met by a read): answering it enters safe mode. Never sent.
    #[serde(skip)]
    pub fault: Option<&'static str>,
}

/// JSON body of an error response.
#[derive(Serialize)]
struct Body<'a> {
    error: ErrorBody<'a>,
    /// The leader this node knows (`null`: none); absent from the answers made before the
    /// router, which do not look at Raft (408, the rate limit's 429).
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<Option<u64>>,
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
            fault: None,
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

    /// A storage failure: corruption puts the node in safe mode (503, and answering it enters
    /// safe mode with the error's reason), anything else is a 500.
    pub fn storage(e: raft_store::StoreError) -> Self {
        if e.is_corruption() {
            let mut err = Self::safe_mode(format!("storage corruption detected: {e}"));
            err.fault = Some(e.safe_mode_reason());
            err
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
        self.render(Some(leader))
    }

    fn render(self, leader: Option<Option<u64>>) -> Response {
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

/// Without a `leader` field: for the answers made before the router (see [`Body::leader`]).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render(None)
    }
}

#[cfg(test)]
mod tests {
    use super::REASONS;

    #[tokio::test]
    async fn only_answers_made_before_the_router_leave_out_the_leader() {
        use super::ApiError;
        use axum::response::IntoResponse;
        let body = |r: axum::response::Response| async move {
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        let e = || ApiError::bad_request("invalid_json", "x");
        let v = body(e().into_response()).await;
        assert!(v.get("leader").is_none(), "{v}");
        assert_eq!(v["error"]["reason"], "invalid_json");
        let v = body(e().into_response_with_leader(None)).await;
        assert!(v["leader"].is_null() && v.get("leader").is_some(), "{v}");
        let v = body(e().into_response_with_leader(Some(2))).await;
        assert_eq!(v["leader"], 2);
    }
    use std::collections::BTreeSet;
    use std::path::Path;

    fn sources(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }

    /// The string literals that follow `marker` (skipping whitespace and, for `skip_args`, that
    /// many comma-separated arguments first).
    fn literals_after(text: &str, marker: &str, skip_args: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices(marker) {
            let mut rest = &text[at + marker.len()..];
            for _ in 0..skip_args {
                match rest.find(',') {
                    Some(i) => rest = &rest[i + 1..],
                    None => break,
                }
            }
            let rest = rest.trim_start();
            if let Some(body) = rest.strip_prefix('"') {
                let word = body.find('"').map(|end| &body[..end]);
                // Reason codes are snake_case words (this also skips the scan's own source).
                if let Some(w) = word.filter(|w| {
                    !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) {
                    out.push(w.to_string());
                }
            }
        }
        out
    }

    fn root() -> std::path::PathBuf {
        test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_reason_the_code_answers_with_is_listed() {
        let mut code = String::new();
        sources(&root().join("node/src"), &mut code);
        let mut used: BTreeSet<String> = BTreeSet::new();
        used.extend(literals_after(&code, "ApiError::new(", 1));
        used.extend(literals_after(&code, "ApiError::bad_request(", 0));
        used.extend(literals_after(&code, "metrics::rejected(", 0));
        // Capability errors are mapped by `CapError::reason`.
        let cap = std::fs::read_to_string(root().join("ledger/src/capability.rs")).unwrap();
        let body = &cap[cap.find("pub fn reason(").expect("CapError::reason")..];
        let body = &body[..body.find("\n    }\n").unwrap()];
        used.extend(literals_after(body, "=> ", 0));
        assert!(used.len() > 20, "the scan found too little: {used:?}");
        let listed: BTreeSet<String> = REASONS.iter().map(|r| r.to_string()).collect();
        let unlisted: Vec<_> = used.difference(&listed).collect();
        assert!(
            unlisted.is_empty(),
            "reasons missing from REASONS: {unlisted:?}"
        );
    }

    #[test]
    fn the_openapi_enum_and_the_api_doc_match_the_list() {
        let yaml = std::fs::read_to_string(root().join("docs/openapi.yaml")).unwrap();
        let start = yaml.find("    ErrorReason:").expect("ErrorReason schema");
        let block = &yaml[start..];
        let block = &block[..block.find("\n\n").unwrap_or(block.len())];
        let documented: BTreeSet<&str> = block
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .collect();
        let listed: BTreeSet<&str> = REASONS.iter().copied().collect();
        assert_eq!(
            documented, listed,
            "docs/openapi.yaml ErrorReason differs from node::error::REASONS"
        );
        let api = std::fs::read_to_string(root().join("docs/API.md")).unwrap();
        for reason in REASONS {
            assert!(
                api.contains(&format!("`{reason}`")),
                "docs/API.md does not document `{reason}`"
            );
        }
    }
}
