//! `/v1/accounts`: create accounts (a write), look one up, and list its transfers by timestamp
//! range (paged).

use crate::error::ApiError;
use crate::http::consistency::{read, ReadQuery};
use crate::http::decode::{parse_u128, parse_u64, path_text};
use crate::http::respond::found;
use crate::http::writes::write;
use crate::node::Node;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The accounts routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/accounts", post(create_accounts))
        .route("/v1/accounts/{id}", get(get_account))
        .route("/v1/accounts/{id}/transfers", get(account_transfers))
}

async fn create_accounts(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    write(node, headers, body, true).await
}

async fn get_account(
    State(node): State<Arc<Node>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    read(node, headers, uri, q, |node, _| {
        let id = parse_u128(&path_text(id, "account id")?, "account id")?;
        let account = node.state.lookup_account(id).map_err(ApiError::storage)?;
        found(account.map(|r| r.account), "account_not_found", || {
            format!("no account {id}")
        })
    })
    .await
}

/// Most transfers one history page returns.
const HISTORY_PAGE_MAX: usize = 1_000;

async fn account_transfers(
    State(node): State<Arc<Node>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    read(node, headers, uri, q, move |node, q| {
        let id = parse_u128(&path_text(id, "account id")?, "account id")?;
        let from = parse_u64(q.from.as_deref(), "from")?.unwrap_or(0);
        let to = parse_u64(q.to.as_deref(), "to")?.unwrap_or(u64::MAX);
        let limit = q.limit.unwrap_or(100).clamp(1, HISTORY_PAGE_MAX);
        if node
            .state
            .lookup_account(id)
            .map_err(ApiError::storage)?
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
            .map_err(ApiError::storage)?;
        let more = ids.len() > limit;
        ids.truncate(limit);
        let mut transfers = Vec::with_capacity(ids.len());
        for tid in ids {
            let t = node
                .state
                .lookup_transfer_read(tid)
                .map_err(ApiError::storage)?
                .ok_or_else(|| ApiError::safe_mode("history index names a missing transfer"))?;
            transfers.push(t);
        }
        let next = if more {
            transfers
                .last()
                .map(|t| (t.transfer.timestamp + 1).to_string())
        } else {
            None
        };
        Ok(Json(json!({ "transfers": transfers, "next_from": next })).into_response())
    })
    .await
}
