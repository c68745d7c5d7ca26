//! `/v1/accounts`: create accounts (a write) and look one up; the list reads (queries, an
//! account's transfers, balance history) are in `queries`.

use crate::error::ApiError;
use crate::http::consistency::{read, ReadQuery};
use crate::http::decode::{parse_u128, path_text};
use crate::http::queries;
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

/// The accounts routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route(
            "/v1/accounts",
            post(create_accounts).get(queries::query_accounts),
        )
        .route("/v1/accounts/{id}", get(get_account))
        .route(
            "/v1/accounts/{id}/transfers",
            get(queries::account_transfers),
        )
        .route("/v1/accounts/{id}/balances", get(queries::balances_as_of))
        .route(
            "/v1/accounts/{id}/balance-history",
            get(queries::balance_history),
        )
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
    let check = |_: &ReadQuery| parse_u128(&path_text(id, "account id")?, "account id");
    read(node, headers, uri, q, check, |node, id| {
        let account = node.state.lookup_account(id).map_err(ApiError::storage)?;
        found(account.map(|r| r.account), "account_not_found", || {
            format!("no account {id}")
        })
    })
    .await
}
