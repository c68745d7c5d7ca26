//! HTTP API v1 (see `docs/API.md` and `docs/openapi.yaml`): ingress and prevalidation for writes,
//! linearizable (or, on request, stale) reads, cluster status, admin, health.

use crate::error::ApiError;
use crate::node::Node;
use crate::prevalidate::{self, Merged};
use crate::seam::Call;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::codec::{self, CodecError};
use ledger::{Account, Operation, Transfer};
use openraft::error::{CheckIsLeaderError, InitializeError, RaftError};
use raft_store::{NodeId, NodeInfo};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Content type of the compact binary request body (`ledger::codec`, kind `Operation`).
pub const BINARY_CONTENT_TYPE: &str = "application/x-ron-ledger";
/// Set on requests a node proxies to the leader, so a proxied request is never proxied again.
pub const FORWARDED_HEADER: &str = "x-ron-forwarded";

/// Routes of the client API.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/v1/accounts", post(create_accounts))
        .route("/v1/transfers", post(create_transfers))
        .route("/v1/accounts/{id}", get(get_account))
        .route("/v1/accounts/{id}/transfers", get(account_transfers))
        .route("/v1/transfers/{id}", get(get_transfer))
        .route("/v1/status", get(status))
        .route("/v1/admin/init", post(admin_init))
        .route("/v1/admin/learners", post(admin_add_learner))
        .route("/v1/admin/membership", post(admin_membership))
        .route("/v1/admin/snapshot", post(admin_snapshot))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(crate::proofs::routes())
        .merge(crate::revocations::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        // Bodies are read by `read_body`, which enforces `limits.body_bytes_max` with our own
        // reason code.
        .layer(DefaultBodyLimit::disable())
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            guard_admin,
        ))
        .layer(axum::middleware::map_response_with_state(
            node.clone(),
            name_leader,
        ))
        .layer(axum::middleware::from_fn(correlate))
        .with_state(node)
}

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
async fn correlate(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let corr_id = correlation_id(req.headers());
    let peer = req
        .extensions()
        .get::<crate::serve::PeerIdentity>()
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
async fn guard_admin(
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
        .get::<crate::serve::PeerIdentity>()
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
        crate::auth::authorize_admin(&grant)?;
        node.check_not_revoked(&grant)?;
    }
    Ok(())
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let applied = node
        .raft
        .metrics()
        .borrow()
        .last_applied
        .map_or(0, |l| l.index);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(applied, node.sequencer.depth()),
    )
        .into_response()
}

/// Every answer names the current leader in `X-Ron-Leader`, so a client can go there directly
/// (write answers and errors also carry it in the body).
async fn name_leader(State(node): State<Arc<Node>>, mut response: Response) -> Response {
    if let Some(leader) = node.leader_id() {
        if let Ok(v) = axum::http::HeaderValue::from_str(&leader.to_string()) {
            response.headers_mut().insert("x-ron-leader", v);
        }
    }
    response
}

/// Log a rejected request and answer it.
pub(crate) fn err(node: &Node, e: ApiError) -> Response {
    tracing::info!(node = node.id, reason = %e.reason, status = e.status, "request rejected");
    crate::metrics::rejected(&e.reason);
    if is_auth_failure(&e.reason) {
        crate::metrics::auth_failure();
    }
    let too_large = e.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16();
    let mut response = e.into_response_with_leader(node.leader_id());
    if too_large {
        // The rest of the body was never read: the connection cannot carry another request.
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Reasons that are authentication or authorization failures (`auth_failures_total`).
fn is_auth_failure(reason: &str) -> bool {
    matches!(
        reason,
        "unauth"
            | "cap_invalid"
            | "cap_expired"
            | "cap_not_yet_valid"
            | "cap_revoked"
            | "policy_denied"
    )
}

pub(crate) async fn read_body(node: &Node, body: Body) -> Result<Bytes, ApiError> {
    let max = node.config.limits.body_bytes_max;
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request bodies are limited to {max} bytes"),
        )
    })
}

fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(BINARY_CONTENT_TYPE))
}

fn codec_error(e: CodecError) -> ApiError {
    match e {
        CodecError::UnsupportedVersion { .. } => {
            ApiError::bad_request("unsupported_version", e.to_string())
        }
        CodecError::Bounds(ledger::BatchError::Empty) => {
            ApiError::bad_request("empty_batch", e.to_string())
        }
        CodecError::Bounds(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            e.to_string(),
        ),
        CodecError::WrongKind { .. } => ApiError::bad_request("unknown_kind", e.to_string()),
        // An operation this build does not know (wire drift: a newer client, or garbage).
        CodecError::Malformed(m) if m.contains("expected variant index") => {
            ApiError::bad_request("unknown_kind", format!("unknown operation kind: {m}"))
        }
        other => ApiError::bad_request("invalid_encoding", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_record_and_operation_kinds_are_unknown_kind() {
        let op = Operation::CreateAccounts(vec![Account {
            id: 1,
            ledger: 1,
            code: 1,
            ..Default::default()
        }]);
        let good = codec::encode(codec::Kind::Operation, &op);
        assert!(codec::decode_operation(&good).is_ok());
        let mut other_kind = good.clone();
        other_kind[3] = codec::Kind::RaftMeta as u8;
        let mut other_op = good.clone();
        other_op[4] = 9;
        for bytes in [other_kind, other_op] {
            let e = codec_error(codec::decode_operation(&bytes).unwrap_err());
            assert_eq!(e.reason, "unknown_kind", "{}", e.message);
            assert_eq!(e.status, 400);
        }
        let mut truncated = good;
        truncated.truncate(8);
        let e = codec_error(codec::decode_operation(&truncated).unwrap_err());
        assert_eq!(e.reason, "invalid_encoding", "{}", e.message);
    }
}

/// Decode a write body: a JSON array of events, or the binary encoding of an `Operation`.
fn decode_events<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    wrap: fn(Vec<T>) -> Operation,
) -> Result<Operation, ApiError> {
    let op = if is_binary(headers) {
        codec::decode_operation(body).map_err(codec_error)?
    } else {
        let events: Vec<T> = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
        let op = wrap(events);
        op.check_bounds()
            .map_err(|e| codec_error(CodecError::Bounds(e)))?;
        op
    };
    let expected = wrap(Vec::new());
    if std::mem::discriminant(&op) != std::mem::discriminant(&expected) {
        return Err(ApiError::bad_request(
            "wrong_operation",
            "the binary body holds another kind of operation than this endpoint takes",
        ));
    }
    Ok(op)
}

/// The JSON answer to a write.
#[derive(Serialize)]
struct WriteResponse {
    node: NodeId,
    leader: Option<NodeId>,
    /// Absent when every event was rejected before sequencing.
    log_index: Option<String>,
    tree_size: Option<String>,
    root: Option<String>,
    results: Vec<EventJson>,
}

#[derive(Serialize)]
struct EventJson {
    index: usize,
    result: &'static str,
    timestamp: Option<String>,
    leaf: Option<String>,
}

async fn write(node: Arc<Node>, headers: HeaderMap, body: Body, accounts: bool) -> Response {
    // The capability is checked before the body is read: an unauthenticated caller costs no
    // body buffering.
    let grant = match node.auth.verify(&headers, node.now_secs()) {
        Ok(g) => g,
        Err(e) => return err(&node, e),
    };
    let body = match read_body(&node, body).await {
        Ok(b) => b,
        Err(e) => return err(&node, e),
    };
    let op = if accounts {
        decode_events::<Account>(&headers, &body, Operation::CreateAccounts)
    } else {
        decode_events::<Transfer>(&headers, &body, Operation::CreateTransfers)
    };
    let op = match op {
        Ok(op) => op,
        Err(e) => return err(&node, e),
    };
    if let Some(grant) = &grant {
        if let Err(e) = crate::auth::authorize_operation(grant, &op) {
            return err(&node, e);
        }
        if let Err(e) = node.check_not_revoked(grant) {
            return err(&node, e);
        }
    }
    let split = prevalidate::split(op);
    let receipt = match &split.forward {
        None => None,
        Some(op) => match node.submit(op.clone(), grant.as_ref().map(|g| g.id)).await {
            Ok(r) => Some(r),
            Err(e) => return err(&node, e),
        },
    };
    let merged: Merged = match prevalidate::merge(&split, receipt.as_ref().map(|r| &r.reply)) {
        Ok(m) => m,
        Err(e) => return err(&node, e),
    };
    let results = merged
        .into_iter()
        .enumerate()
        .map(|(index, m)| EventJson {
            index,
            result: m.result,
            timestamp: m.position.map(|p| p.0.to_string()),
            leaf: m.position.map(|p| p.1.to_string()),
        })
        .collect();
    Json(WriteResponse {
        node: node.id,
        leader: node.leader_id(),
        log_index: receipt.as_ref().map(|r| r.log_index.to_string()),
        tree_size: receipt.as_ref().map(|r| r.tree_size.to_string()),
        root: receipt.as_ref().map(|r| r.root.to_hex()),
        results,
    })
    .into_response()
}

async fn create_accounts(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    write(node, headers, body, true).await
}

async fn create_transfers(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    write(node, headers, body, false).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    /// `linearizable` (default) or `stale`.
    consistency: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// The query string, or 400 `invalid_query` naming what is wrong with it.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// How a read is served: through the leader (default) or from this node's applied state.
pub(crate) enum Consistency {
    Linearizable,
    Stale,
}

/// The `consistency` query parameter; 400 `invalid_query` if it is neither value.
pub(crate) fn consistency(text: Option<&str>) -> Result<Consistency, ApiError> {
    match text {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("stale") => Ok(Consistency::Stale),
        Some(other) => Err(ApiError::bad_request(
            "invalid_query",
            format!("consistency must be linearizable or stale, not {other:?}"),
        )),
    }
}

/// Make a linearizable read possible here, or say where it must go. `Ok(None)`: read locally.
/// `Ok(Some(response))`: the leader's answer, proxied.
pub(crate) async fn linearize(
    node: &Node,
    headers: &HeaderMap,
    req_path: &str,
) -> Result<Option<Response>, ApiError> {
    match node.raft.ensure_linearizable().await {
        Ok(_) => Ok(None),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
            if headers.contains_key(FORWARDED_HEADER) {
                return Err(ApiError::no_leader());
            }
            let Some(info) = f.leader_node else {
                return Err(ApiError::no_leader());
            };
            proxy_get(node, &info, req_path).await.map(Some)
        }
        Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
            Err(ApiError::no_leader())
        }
        Err(RaftError::Fatal(f)) => Err(ApiError::safe_mode(format!(
            "raft stopped ({f}); use consistency=stale to read this node's last applied state"
        ))),
    }
}

async fn proxy_get(node: &Node, leader: &NodeInfo, path: &str) -> Result<Response, ApiError> {
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
            timeout: std::time::Duration::from_millis(node.config.limits.write_timeout_ms),
        })
        .await
        .map_err(|_| ApiError::no_leader())?;
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

/// A decimal u128 id; 400 `invalid_id` if malformed.
pub(crate) fn parse_u128(text: &str, what: &str) -> Result<u128, ApiError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_id",
            format!("{what} must be a decimal u128"),
        ));
    }
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{what} is out of range")))
}

/// An optional decimal u64 query parameter; 400 `invalid_query` if present and malformed.
pub(crate) fn parse_u64(text: Option<&str>, what: &str) -> Result<Option<u64>, ApiError> {
    match text {
        None => Ok(None),
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request("invalid_query", format!("{what} is out of range"))),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{what} must be a decimal u64"),
        )),
    }
}

/// Run a read handler body with the read-consistency rules applied.
async fn read<F>(
    node: Arc<Node>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    q: Result<Query<ReadQuery>, QueryRejection>,
    f: F,
) -> Response
where
    F: FnOnce(&Node, &ReadQuery) -> Result<Response, ApiError>,
{
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return err(&node, e),
    };
    let c = match consistency(q.consistency.as_deref()) {
        Ok(c) => c,
        Err(e) => return err(&node, e),
    };
    if let Consistency::Linearizable = c {
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        match linearize(&node, &headers, &path).await {
            Ok(Some(proxied)) => return proxied,
            Ok(None) => {}
            Err(e) => return err(&node, e),
        }
    }
    match f(&node, &q) {
        Ok(r) => r,
        Err(e) => err(&node, e),
    }
}

/// The record as JSON, or 404 with `reason`.
fn found<T: Serialize>(
    value: Option<T>,
    reason: &str,
    what: impl FnOnce() -> String,
) -> Result<Response, ApiError> {
    match value {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, reason, what())),
    }
}

/// A storage failure as an API error (corruption puts the node in safe mode).
pub(crate) fn storage_error(e: raft_store::StoreError) -> ApiError {
    if e.is_corruption() {
        ApiError::safe_mode(format!("storage corruption detected: {e}"))
    } else {
        ApiError::internal(format!("storage: {e}"))
    }
}

async fn get_account(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    read(node, headers, uri, q, |node, _| {
        let id = parse_u128(&id, "account id")?;
        let account = node.state.lookup_account(id).map_err(storage_error)?;
        found(account.map(|r| r.account), "account_not_found", || {
            format!("no account {id}")
        })
    })
    .await
}

async fn get_transfer(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    read(node, headers, uri, q, |node, _| {
        let id = parse_u128(&id, "transfer id")?;
        let transfer = node.state.lookup_transfer(id).map_err(storage_error)?;
        found(transfer.map(|r| r.transfer), "transfer_not_found", || {
            format!("no transfer {id}")
        })
    })
    .await
}

/// Most transfers one history page returns.
const HISTORY_PAGE_MAX: usize = 1_000;

async fn account_transfers(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    read(node, headers, uri, q, move |node, q| {
        let id = parse_u128(&id, "account id")?;
        let from = parse_u64(q.from.as_deref(), "from")?.unwrap_or(0);
        let to = parse_u64(q.to.as_deref(), "to")?.unwrap_or(u64::MAX);
        let limit = q.limit.unwrap_or(100).clamp(1, HISTORY_PAGE_MAX);
        if node
            .state
            .lookup_account(id)
            .map_err(storage_error)?
            .is_none()
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "account_not_found",
                format!("no account {id}"),
            ));
        }
        // One extra tells whether there is a next page.
        let mut ids = node
            .state
            .account_history(id, from, to, limit + 1)
            .map_err(storage_error)?;
        let more = ids.len() > limit;
        ids.truncate(limit);
        let mut transfers = Vec::with_capacity(ids.len());
        for tid in ids {
            let t = node
                .state
                .lookup_transfer(tid)
                .map_err(storage_error)?
                .ok_or_else(|| ApiError::safe_mode("history index names a missing transfer"))?;
            transfers.push(t.transfer);
        }
        let next = if more {
            transfers.last().map(|t| (t.timestamp + 1).to_string())
        } else {
            None
        };
        Ok(Json(json!({ "transfers": transfers, "next_from": next })).into_response())
    })
    .await
}

/// One member in `/v1/status`.
#[derive(Serialize)]
struct Member {
    id: NodeId,
    api_addr: String,
    peer_addr: String,
    voter: bool,
}

async fn status(State(node): State<Arc<Node>>) -> Response {
    let m = node.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members: Vec<Member> = membership
        .nodes()
        .map(|(id, info)| Member {
            id: *id,
            api_addr: info.api_addr.clone(),
            peer_addr: info.peer_addr.clone(),
            voter: voters.contains(id),
        })
        .collect();
    let committed = committed_index(&node);
    let meta = node.state.ledger_meta().ok();
    let role = format!("{:?}", m.state).to_lowercase();
    Json(json!({
        "node_id": node.id,
        "cluster_id": node.config.cluster_id,
        "role": role,
        "term": m.current_term,
        "leader": m.current_leader,
        "last_log_index": m.last_log_index,
        "committed_index": committed,
        "applied_index": m.last_applied.map(|l| l.index),
        "snapshot_index": m.snapshot.map(|l| l.index),
        "purged_index": m.purged.map(|l| l.index),
        "tree_size": meta.as_ref().map(|x| x.tree.size.to_string()),
        "root": meta.as_ref().map(|x| x.root.to_hex()),
        "last_timestamp": meta.as_ref().map(|x| x.last_timestamp.to_string()),
        "members": members,
        "queue_depth": node.sequencer.depth(),
        "safe_mode": node.safe_mode(),
    }))
    .into_response()
}

fn committed_index(node: &Node) -> Option<u64> {
    let bytes = node
        .log
        .meta_get(raft_store::backend::meta_key::COMMITTED)
        .ok()??;
    let committed: Option<raft_store::LogId> =
        raft_store::record::open(ledger::codec::Kind::RaftMeta, "meta", b"committed", &bytes)
            .ok()?;
    committed.map(|c| c.index)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InitRequest {
    /// The initial voters; empty = this node alone.
    #[serde(default)]
    members: BTreeMap<NodeId, NodeInfo>,
}

async fn admin_init(State(node): State<Arc<Node>>, body: Body) -> Response {
    let body = match read_body(&node, body).await {
        Ok(b) => b,
        Err(e) => return err(&node, e),
    };
    let req: InitRequest = if body.is_empty() {
        InitRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return err(&node, ApiError::bad_request("invalid_json", e.to_string())),
        }
    };
    let mut members = req.members;
    if members.is_empty() {
        members.insert(
            node.id,
            NodeInfo {
                api_addr: node.config.public_api_addr(),
                peer_addr: node.config.public_peer_addr(),
            },
        );
    }
    match node.raft.initialize(members).await {
        Ok(()) => Json(json!({"initialized": true})).into_response(),
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => err(
            &node,
            ApiError::new(StatusCode::CONFLICT, "already_initialized", e.to_string()),
        ),
        Err(RaftError::APIError(e)) => err(
            &node,
            ApiError::bad_request("invalid_request", e.to_string()),
        ),
        Err(RaftError::Fatal(f)) => err(&node, ApiError::safe_mode(f.to_string())),
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LearnerRequest {
    node_id: NodeId,
    api_addr: String,
    peer_addr: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MembershipRequest {
    voters: BTreeSet<NodeId>,
}

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

async fn admin_add_learner(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&node, body).await {
        Ok(b) => b,
        Err(e) => return err(&node, e),
    };
    let req: LearnerRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return err(&node, ApiError::bad_request("invalid_json", e.to_string())),
    };
    if req.node_id == 0 {
        return err(
            &node,
            ApiError::bad_request("invalid_request", "node_id must be 1 or more"),
        );
    }
    if let Some(r) = on_leader(&node, &headers, "/v1/admin/learners", body).await {
        return r;
    }
    let info = NodeInfo {
        api_addr: req.api_addr,
        peer_addr: req.peer_addr,
    };
    let wait = std::time::Duration::from_millis(node.config.limits.write_timeout_ms);
    let added = match tokio::time::timeout(wait, node.raft.add_learner(req.node_id, info, true)).await {
        Ok(r) => r,
        Err(_) => {
            return err(
                &node,
                ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    "the learner was not confirmed caught up in time; it stays added and keeps catching up (see /v1/status)",
                )
                .retry_after(1),
            )
        }
    };
    match added {
        Ok(resp) => Json(json!({"log_index": resp.log_id.index})).into_response(),
        Err(e) => err(&node, membership_error(e)),
    }
}

async fn admin_membership(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&node, body).await {
        Ok(b) => b,
        Err(e) => return err(&node, e),
    };
    let req: MembershipRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return err(&node, ApiError::bad_request("invalid_json", e.to_string())),
    };
    if req.voters.is_empty() {
        return err(
            &node,
            ApiError::bad_request("invalid_request", "voters must not be empty"),
        );
    }
    if let Some(r) = on_leader(&node, &headers, "/v1/admin/membership", body).await {
        return r;
    }
    let wait = std::time::Duration::from_millis(node.config.limits.write_timeout_ms);
    match tokio::time::timeout(wait, node.raft.change_membership(req.voters, false)).await {
        Ok(Ok(resp)) => Json(json!({"log_index": resp.log_id.index})).into_response(),
        Ok(Err(e)) => err(&node, membership_error(e)),
        Err(_) => err(&node, crate::node::write_timeout()),
    }
}

/// Membership errors: a lost leadership is retryable (`no_leader`), a stopped Raft is
/// `safe_mode`, anything else (e.g. a change already in progress) is a 409.
fn membership_error(
    e: RaftError<NodeId, openraft::error::ClientWriteError<NodeId, NodeInfo>>,
) -> ApiError {
    use openraft::error::ClientWriteError;
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ApiError::no_leader(),
        RaftError::Fatal(f) => ApiError::safe_mode(f.to_string()),
        other => ApiError::new(
            StatusCode::CONFLICT,
            "membership_change_failed",
            other.to_string(),
        ),
    }
}

async fn admin_snapshot(State(node): State<Arc<Node>>) -> Response {
    match node.raft.trigger().snapshot().await {
        Ok(()) => Json(json!({"snapshot": "triggered"})).into_response(),
        Err(f) => err(&node, ApiError::safe_mode(f.to_string())),
    }
}

async fn no_route(State(node): State<Arc<Node>>) -> Response {
    err(
        &node,
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            "no such endpoint (see docs/API.md)",
        ),
    )
}

async fn no_method(State(node): State<Arc<Node>>) -> Response {
    err(
        &node,
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
    )
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "alive"}))).into_response()
}

async fn readyz(State(node): State<Arc<Node>>) -> Response {
    let m = node.raft.metrics().borrow().clone();
    let mut reasons: Vec<&str> = Vec::new();
    if m.current_leader.is_none() {
        reasons.push("no_leader");
    }
    if node.safe_mode().is_some() {
        reasons.push("safe_mode");
    }
    let high_water = (node.config.limits.queue_requests_max as u64) * 8 / 10;
    if node.sequencer.depth() >= high_water {
        reasons.push("queue_high_water");
    }
    let applied = m.last_applied.map_or(0, |l| l.index);
    let committed = committed_index(&node).unwrap_or(0);
    if committed.saturating_sub(applied) > 1_000 {
        reasons.push("apply_lagging");
    }
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reasons": reasons})),
        )
            .into_response()
    }
}
