//! Ingress of a write on whichever node receives it: the capability (before the body is read),
//! the bounded body, decoding, authorization of every event, the deny-list, dual control for
//! reversals (a second governance capability in `X-Ron-Approval`), prevalidation
//! (events that fail statically are answered here), [`Node::submit`] for the rest, and the
//! merged per-event answer with the receipt. Shared by the accounts and transfers routes.

use crate::error::ApiError;
use crate::http::decode::{decode_events, read_body};
use crate::http::middleware::request_corr_id;
use crate::http::respond::err;
use crate::node::{Accepted, Node};
use crate::pipeline::prevalidate::{self, Merged};
use crate::security::capabilities;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::capability::Grant;
use ledger::{Account, Operation, Transfer};
use raft_store::NodeId;
use serde::Serialize;
use std::sync::Arc;

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

/// The second approval of a reversal: verified like the request's capability, not revoked, and
/// together with `grant` two governance tokens of two holders. Returns the approval's token id.
fn approve_reversal(
    node: &Node,
    headers: &HeaderMap,
    grant: &Grant,
    op: &Operation,
) -> Result<[u8; 16], ApiError> {
    let approval = node
        .auth
        .verify_approval(headers, node.now_secs())?
        .ok_or_else(|| ApiError::internal("capabilities are on but no approval was verified"))?;
    node.check_not_revoked(&approval)?;
    capabilities::authorize_reversal(grant, &approval, op)?;
    Ok(approval.id)
}

pub(crate) async fn write(
    node: Arc<Node>,
    headers: HeaderMap,
    body: Body,
    accounts: bool,
) -> Response {
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
    if let Some((id, first, second)) = ledger::validate::repeated_id_in_chain(&op) {
        return err(
            &node,
            ApiError::bad_request(
                "invalid_request",
                format!(
                    "id {id} is named twice in one linked chain (events {first} and {second}): \
                     the chain could never commit; nothing was done"
                ),
            ),
        );
    }
    let mut approval = None;
    if let Some(grant) = &grant {
        if let Err(e) = capabilities::authorize_operation(grant, &op) {
            return err(&node, e);
        }
        if let Err(e) = node.check_not_revoked(grant) {
            return err(&node, e);
        }
        // Reversals are governance: two capabilities of two holders (dual control).
        if capabilities::has_reversal(&op) {
            match approve_reversal(&node, &headers, grant, &op) {
                Ok(a) => approval = Some(a),
                Err(e) => return err(&node, e),
            }
        }
    }
    // In safe mode every write is refused, also one whose events all fail prevalidation (which
    // would otherwise be answered here without reaching the sequencer).
    if let Some(reason) = node.safe_mode() {
        return err(&node, ApiError::safe_mode(reason));
    }
    let split = prevalidate::split(op);
    let accepted = Accepted {
        token_id: grant.as_ref().map(|g| g.id),
        approval_id: approval,
    };
    let receipt = match &split.forward {
        None => None,
        Some(op) => match node
            .submit(op.clone(), accepted, request_corr_id(&headers))
            .await
        {
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
