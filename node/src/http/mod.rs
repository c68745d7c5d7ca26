//! The client API, v1 (see `docs/API.md` and `docs/openapi.yaml`): one module per resource,
//! and the helpers they share. This module only assembles the router; handlers depend on
//! [`Node`], never the other way round (the router is built where the listeners start).
//!
//! The web console's page and assets ([`console`]) are routes like the others.
//!
//! What a request meets, in order: [`middleware`] (correlation id, admin gate, leader header,
//! no query string on a write),
//! then its resource's handler, which uses [`decode`] for bodies and query strings,
//! [`consistency`] for reads, [`proxy`] to reach the leader and [`respond`] to answer.
//! A handler must never write ledger state itself: writes go through [`Node::submit`] (the
//! pipeline and Raft), reads through the state backend.

pub mod accounts;
pub mod admin;
pub mod backup;
pub mod cluster;
pub mod consistency;
pub mod console;
pub mod decode;
pub mod health;
pub mod middleware;
pub mod proofs;
pub mod proxy;
pub mod queries;
pub mod respond;
pub mod revocations;
pub mod stream;
pub mod transfers;
pub mod writes;

pub use decode::BINARY_CONTENT_TYPE;
pub use middleware::CORRELATION_HEADER;

use crate::error::ApiError;
use crate::http::respond::err;
use crate::node::Node;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// Routes of the client API, with its layers.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .merge(accounts::routes())
        .merge(transfers::routes())
        .merge(health::routes())
        .merge(admin::routes())
        .merge(backup::routes())
        .merge(proofs::routes())
        .merge(revocations::routes())
        .merge(stream::routes())
        .merge(cluster::routes())
        .merge(console::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            node.clone(),
            middleware::refuse_write_query,
        ))
        .route_layer(axum::middleware::from_fn(middleware::time_route))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        // Bodies are read by `decode::read_body`, which enforces `limits.body_bytes_max` with our
        // own reason code.
        .layer(DefaultBodyLimit::disable())
        .route("/metrics", get(health::metrics))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            middleware::guard_admin,
        ))
        .layer(axum::middleware::map_response_with_state(
            node.clone(),
            middleware::name_leader,
        ))
        .layer(axum::middleware::from_fn(middleware::correlate))
        .with_state(node)
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
