//! Verifiability endpoints (see `docs/API.md` and `docs/PROOFS.md`): inclusion and consistency
//! proofs over this node's applied tree, this node's signed checkpoints and public key, and range
//! export. Every node answers for what it has applied; nodes at the same index give the same
//! proofs. Proofs are verified by the client, so these reads need no leader round trip.

use crate::error::ApiError;
use crate::http::decode::{parse_u128, parse_u64, query, NoQuery};
use crate::http::respond::err;
use crate::node::Node;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::checkpoint::SignedCheckpoint;
use ledger::export::{ExportBundle, ExportedEvent, BUNDLE_EVENTS_MAX, BUNDLE_FORMAT};
use ledger::proof::{ConsistencyProof, InclusionProof};
use ledger::Hash;
use raft_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;

/// The verifiability routes, merged into the client API router.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/checkpoints", get(list_checkpoints))
        .route("/v1/checkpoints/latest", get(latest_checkpoint))
        .route("/v1/checkpoints/keys", get(keys))
        .route("/v1/admin/checkpoint", post(admin_checkpoint))
        .route("/v1/admin/checkpoint/rotate", post(admin_rotate))
        .route("/v1/proofs/inclusion", get(inclusion))
        .route("/v1/proofs/consistency", get(consistency))
        .route("/v1/export", get(export))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProofQuery {
    tree_size: Option<String>,
    leaf: Option<String>,
    transfer_id: Option<String>,
    account_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

impl ProofQuery {
    /// This query, if it names no parameter but `allowed` (the endpoints share one query type;
    /// a parameter of another endpoint is 400 `invalid_query`, not ignored).
    fn only(self, allowed: &[&str]) -> Result<Self, ApiError> {
        let given = [
            ("tree_size", &self.tree_size),
            ("leaf", &self.leaf),
            ("transfer_id", &self.transfer_id),
            ("account_id", &self.account_id),
            ("from", &self.from),
            ("to", &self.to),
            ("limit", &self.limit),
        ];
        for (name, value) in given {
            if value.is_some() && !allowed.contains(&name) {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("{name} is not a parameter of this endpoint"),
                ));
            }
        }
        Ok(self)
    }
}

fn required(text: Option<&str>, what: &str) -> Result<u64, ApiError> {
    parse_u64(text, what)?
        .ok_or_else(|| ApiError::bad_request("invalid_query", format!("{what} is required")))
}

/// A proof asked for a size or index the tree does not have is the caller's mistake.
fn proof_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Proof(p) => ApiError::bad_request("invalid_range", p.to_string()),
        other => ApiError::storage(other),
    }
}

fn no_checkpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_checkpoint",
        "no checkpoint yet: the tree is empty",
    )
}

fn respond(node: &Node, r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(|e| err(node, e))
}

async fn list_checkpoints(
    State(node): State<Arc<Node>>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Response {
    let r = query(q).and_then(|q| q.only(&["limit"])).and_then(|q| {
        let limit = parse_u64(q.limit.as_deref(), "limit")?.unwrap_or(100);
        if !(1..=1_000).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "limit must be 1 to 1000",
            ));
        }
        let limit = usize::try_from(limit).unwrap_or(1_000);
        Ok(Json(json!({"checkpoints": node.checkpoints.list(limit)})).into_response())
    });
    respond(&node, r)
}

/// `GET /v1/checkpoints/latest` (no credential): the newest checkpoint, signing the applied
/// tree first if it grew since, so a client can always prove what this node has applied — at
/// most one such signature per `checkpoint.read_sign_interval_ms`, and never retained in place
/// of an interval checkpoint (see [`crate::checkpoints::Checkpoints::sign_for_read`]).
async fn latest_checkpoint(
    State(node): State<Arc<Node>>,
    q: Result<Query<NoQuery>, QueryRejection>,
) -> Response {
    if let Err(e) = query(q) {
        return err(&node, e);
    }
    let r = node
        .checkpoints
        .sign_for_read(&*node.state)
        .await
        .map_err(ApiError::storage)
        .and_then(|c| c.ok_or_else(no_checkpoint))
        .map(|c| Json(c).into_response());
    respond(&node, r)
}

/// `POST /v1/admin/checkpoint` (admin): sign the applied tree now, retained like an interval
/// checkpoint.
async fn admin_checkpoint(State(node): State<Arc<Node>>) -> Response {
    let r = node
        .checkpoints
        .sign_now(&*node.state)
        .map_err(ApiError::storage)
        .and_then(|c| c.ok_or_else(no_checkpoint))
        .map(|c| Json(c).into_response());
    respond(&node, r)
}

/// `POST /v1/admin/checkpoint/rotate` (admin): retire this node's checkpoint key and sign with
/// a new one from now on (not proxied: every node has its own key).
async fn admin_rotate(State(node): State<Arc<Node>>) -> Response {
    let r = node
        .checkpoints
        .rotate(&*node.state)
        .map_err(|e| match e {
            crate::checkpoints::RotateError::Storage(e) => ApiError::storage(e),
            crate::checkpoints::RotateError::Key(m) => ApiError::internal(format!(
                "checkpoint key not rotated (the old one stays in use): {m}"
            )),
        })
        .map(|r| Json(r).into_response());
    respond(&node, r)
}

/// Every key this node signed checkpoints with: `keys` (KID → public key, the retired ones
/// included, so old checkpoints verify) and `history` (each key's tree-size range).
async fn keys(
    State(node): State<Arc<Node>>,
    q: Result<Query<NoQuery>, QueryRejection>,
) -> Response {
    if let Err(e) = query(q) {
        return err(&node, e);
    }
    Json(json!({
        "cluster_id": node.config.cluster_id,
        "keys": node.checkpoints.public_keys(),
        "history": node.checkpoints.key_history(),
    }))
    .into_response()
}

/// An inclusion proof with what it proves.
#[derive(Serialize)]
struct InclusionAnswer {
    proof: InclusionProof,
    /// The leaf's preimage (`docs/PROOFS.md` §1), hex.
    #[serde(with = "ledger::wire::hex")]
    leaf_data: Vec<u8>,
    /// The root at `proof.tree_size`.
    #[serde(with = "ledger::wire::hash")]
    root: Hash,
}

async fn inclusion(
    State(node): State<Arc<Node>>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Response {
    let r = query(q)
        .and_then(|q| q.only(&["tree_size", "leaf", "transfer_id", "account_id"]))
        .and_then(|q| {
            let state = &node.state;
            let size = match parse_u64(q.tree_size.as_deref(), "tree_size")? {
                Some(s) => s,
                None => state.ledger_meta().map_err(ApiError::storage)?.tree.size,
            };
            let named = [&q.leaf, &q.transfer_id, &q.account_id]
                .iter()
                .filter(|v| v.is_some())
                .count();
            if named != 1 {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "name exactly one of leaf, transfer_id, account_id",
                ));
            }
            let index = if let Some(leaf) = parse_u64(q.leaf.as_deref(), "leaf")? {
                leaf
            } else if let Some(id) = q.transfer_id.as_deref() {
                let id = parse_u128(id, "transfer_id")?;
                state
                    .lookup_transfer(id)
                    .map_err(ApiError::storage)?
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::NOT_FOUND,
                            "transfer_not_found",
                            format!("no transfer {id}"),
                        )
                    })?
                    .leaf
            } else {
                let id = parse_u128(q.account_id.as_deref().unwrap_or_default(), "account_id")?;
                crate::http::queries::account_exists(&node, id)?.leaf
            };
            let proof = state.inclusion_proof(index, size).map_err(proof_error)?;
            let root = state.root_at(size).map_err(proof_error)?;
            let leaf_data = state
                .leaf_data(index)
                .map_err(ApiError::storage)?
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_range", format!("no leaf {index}"))
                })?;
            Ok(Json(InclusionAnswer {
                proof,
                leaf_data,
                root,
            })
            .into_response())
        });
    respond(&node, r)
}

async fn consistency(
    State(node): State<Arc<Node>>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Response {
    let r = query(q)
        .and_then(|q| q.only(&["from", "to"]))
        .and_then(|q| {
            let from = required(q.from.as_deref(), "from")?;
            let to = required(q.to.as_deref(), "to")?;
            let proof: ConsistencyProof = node
                .state
                .consistency_proof(from, to)
                .map_err(proof_error)?;
            Ok(Json(proof).into_response())
        });
    respond(&node, r)
}

async fn export(
    State(node): State<Arc<Node>>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Response {
    // The range is checked before a slot is taken: a bad one is 400 whatever the load.
    let range = query(q)
        .and_then(|q| q.only(&["from", "to"]))
        .and_then(|q| export_range(&q));
    let (from, to) = match range {
        Ok(r) => r,
        Err(e) => return err(&node, e),
    };
    let slot = match node.heavy_reads.export() {
        Ok(s) => s,
        Err(e) => return err(&node, e),
    };
    // The bundle's checkpoint: signed for this read if needed, under the same bound.
    let checkpoint = match node.checkpoints.sign_for_read(&*node.state).await {
        Ok(c) => c,
        Err(e) => return err(&node, ApiError::storage(e)),
    };
    let worker = node.clone();
    // Up to 65,536 proofs: off the async threads.
    let r = tokio::task::spawn_blocking(move || export_blocking(&worker, from, to, checkpoint))
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("export task: {e}"))));
    match r {
        Ok(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            held_until_sent(json, slot),
        )
            .into_response(),
        Err(e) => err(&node, e),
    }
}

/// `json` as a response body that holds the export's slot until its last piece has been handed
/// on (or the client went away): the bundle stays in memory that long, so that is what the slot
/// bounds. Pieces of 64 KiB, taken as the connection drains.
fn held_until_sent(json: Vec<u8>, slot: tokio::sync::OwnedSemaphorePermit) -> Body {
    const PIECE: usize = 64 << 10;
    let json = Bytes::from(json);
    let pieces = futures_util::stream::unfold((json, 0, slot), |(json, at, slot)| async move {
        (at < json.len()).then(|| {
            let end = (at + PIECE).min(json.len());
            (Ok::<_, Infallible>(json.slice(at..end)), (json, end, slot))
        })
    });
    Body::from_stream(pieces)
}

/// `from` and `to` of an export, checked: `from < to`, at most [`BUNDLE_EVENTS_MAX`] events.
fn export_range(q: &ProofQuery) -> Result<(u64, u64), ApiError> {
    let from = required(q.from.as_deref(), "from")?;
    let to = required(q.to.as_deref(), "to")?;
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_range",
            "from must be below to",
        ));
    }
    if to - from > BUNDLE_EVENTS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("at most {BUNDLE_EVENTS_MAX} events per export"),
        ));
    }
    Ok((from, to))
}

fn export_blocking(
    node: &Node,
    from: u64,
    to: u64,
    checkpoint: Option<SignedCheckpoint>,
) -> Result<Vec<u8>, ApiError> {
    let checkpoint = checkpoint.filter(|c| c.tree_size >= to).ok_or_else(|| {
        ApiError::bad_request("invalid_range", "to is beyond this node's applied tree")
    })?;
    let mut events = Vec::with_capacity((to - from) as usize);
    for index in from..to {
        let data = node
            .state
            .leaf_data(index)
            .map_err(ApiError::storage)?
            .ok_or_else(|| ApiError::internal(format!("leaf {index} is missing")))?;
        let proof = node
            .state
            .inclusion_proof(index, checkpoint.tree_size)
            .map_err(proof_error)?;
        events.push(ExportedEvent {
            index,
            data,
            proof: proof.path,
        });
    }
    serde_json::to_vec(&ExportBundle {
        format: BUNDLE_FORMAT.to_string(),
        cluster_id: node.config.cluster_id.clone(),
        from,
        to,
        checkpoint,
        events,
    })
    .map_err(|e| ApiError::internal(format!("export encoding: {e}")))
}
