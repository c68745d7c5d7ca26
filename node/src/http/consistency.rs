//! Read consistency: linearizable reads (the default) are confirmed by the leader or proxied to
//! it; `consistency=stale` reads this node's applied state as it is.

use crate::error::ApiError;
use crate::http::decode::query;
use crate::http::proxy::proxy_get;
use crate::http::respond::err;
use crate::node::Node;
use crate::seam::FORWARDED_HEADER;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::Response;
use openraft::error::{CheckIsLeaderError, RaftError};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadQuery {
    /// `linearizable` (default) or `stale`.
    pub(crate) consistency: Option<String>,
}

/// A read's query parameters: each read route has its own set, all with `consistency`.
pub(crate) trait ReadParams: serde::de::DeserializeOwned {
    fn consistency(&self) -> Option<&str>;
}

impl ReadParams for ReadQuery {
    fn consistency(&self) -> Option<&str> {
        self.consistency.as_deref()
    }
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
    if let Some(f) = node.safe.fault() {
        return Err(ApiError::safe_mode(format!(
            "{}: {}; use consistency=stale to read this node's last applied state",
            f.reason, f.message
        )));
    }
    match node.raft.ensure_linearizable().await {
        Ok(_) => wait_for_read_floor(node).await.map(|()| None),
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

/// A leader restored at start-up serves reads from its committed index, which it persists
/// without a sync (`docs/STORAGE.md`): after every member lost power, that index — and the state,
/// which is written the same way — can be behind entries the cluster committed and acknowledged,
/// and openraft 0.9 reads at `max(committed, this leader's first entry)`, which a restored
/// leader has not proposed. So a leader also waits until it has applied every entry its log held
/// when its reads in this term began: those precede anything it acknowledged in the term, and
/// once applied, any earlier acknowledged entry is too (found by the simulation, seed 171).
async fn wait_for_read_floor(node: &Node) -> Result<(), ApiError> {
    // Three numbers, not a clone of the whole metrics: this runs on every linearizable read.
    let (term, last_log, applied) = {
        let m = node.raft.metrics();
        let m = m.borrow();
        let applied = m.last_applied.as_ref().map_or(0, |l| l.index);
        (m.current_term, m.last_log_index.unwrap_or(0), applied)
    };
    let floor = {
        let mut f = node.read_floor.lock().unwrap_or_else(|p| p.into_inner());
        if f.0 != term {
            *f = (term, last_log);
        }
        f.1
    };
    if applied >= floor {
        return Ok(());
    }
    let budget = std::time::Duration::from_millis(node.config.limits.write_timeout_ms);
    node.raft
        .wait(Some(budget))
        .applied_index_at_least(Some(floor), "linearizable read: the leader's log at start")
        .await
        .map(|_| ())
        .map_err(|e| match e {
            openraft::metrics::WaitError::Timeout(..) => ApiError::no_leader(),
            openraft::metrics::WaitError::ShuttingDown => ApiError::safe_mode(
                "raft stopped; use consistency=stale to read this node's last applied state",
            ),
        })
}

/// Run a read: `check` parses and validates everything the request says (path, query) before
/// any leader is consulted, so bad input is a 400 whatever the cluster's state; `run` reads the
/// state with the read-consistency rules applied.
pub(crate) async fn read<Q, T, C, F>(
    node: Arc<Node>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    q: Result<Query<Q>, QueryRejection>,
    check: C,
    run: F,
) -> Response
where
    Q: ReadParams,
    C: FnOnce(&Q) -> Result<T, ApiError>,
    F: FnOnce(&Node, T) -> Result<Response, ApiError>,
{
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return err(&node, e),
    };
    let c = match consistency(q.consistency()) {
        Ok(c) => c,
        Err(e) => return err(&node, e),
    };
    let checked = match check(&q) {
        Ok(t) => t,
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
    match run(&node, checked) {
        Ok(r) => r,
        Err(e) => err(&node, e),
    }
}
