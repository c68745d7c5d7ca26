//! `/v1/transfers`: create transfers (a write) and look one up (its fields and its `state`).

use crate::error::ApiError;
use crate::http::consistency::{read, ReadQuery};
use crate::http::decode::{parse_u128, path_text};
use crate::http::respond::found;
use crate::http::writes::write;
use crate::node::Node;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The transfers routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route(
            "/v1/transfers",
            post(create_transfers).get(crate::http::queries::query_transfers),
        )
        .route("/v1/transfers/{id}", get(get_transfer))
}

async fn create_transfers(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    write(node, headers, body, false).await
}

async fn get_transfer(
    State(node): State<Arc<Node>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let check = |_: &ReadQuery| parse_u128(&path_text(id, "transfer id")?, "transfer id");
    read(node, headers, uri, q, check, |node, id| {
        let transfer = node
            .state
            .lookup_transfer_read(id)
            .map_err(ApiError::storage)?;
        found(transfer, "transfer_not_found", || {
            format!("no transfer {id}")
        })
    })
    .await
}
