//! The capability revocation endpoints (see `docs/API.md`): `POST /v1/admin/revocations` adds
//! tokens to the deny-list through Raft (a follower proxies to the leader), and
//! `GET /v1/admin/revocations` lists it in token id order. The deny-list itself is replicated
//! state owned by raft-store ([`raft_store::revocation`]); it is not part of the Merkle tree.
//!
//! Authentication is not done here: the admin gate (capability + mTLS) wraps every
//! `/v1/admin/*` route.

use crate::error::ApiError;
use crate::http::consistency::{consistency, linearize, Consistency};
use crate::http::decode::{query, read_body};
use crate::http::proxy::on_leader;
use crate::http::respond::err;
use crate::node::Node;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use raft_store::revocation::{
    parse_token_id, token_id_hex, AdminError, REVOCATIONS_PAGE_MAX, REVOCATIONS_PER_COMMAND_MAX,
};
use raft_store::{
    AdminCommand, AdminOutcome, Command, Response as RaftResponse, Revocation, RevocationRecord,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Records per page when the request names no `limit`.
pub const REVOCATIONS_PAGE_DEFAULT: usize = 100;
const PATH: &str = "/v1/admin/revocations";

/// The revocation routes, merged into the client API router next to the other admin routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new().route(PATH, get(list).post(revoke))
}

/// One token to revoke, as posted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    token_id: String,
    kid: String,
    reason: String,
}

#[derive(Serialize)]
struct ItemResult {
    token_id: String,
    result: &'static str,
}

fn invalid(e: impl ToString) -> ApiError {
    ApiError::bad_request("invalid_request", e.to_string())
}

/// Parse a body (one object, or an array of 1..=1000) into revocations stamped `revoked_at`.
/// Returns whether the body was a list.
fn parse_body(body: &[u8], revoked_at: u64) -> Result<(bool, Vec<Revocation>), ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let is_list = value.is_array();
    use crate::http::decode::JsonObject;
    let requests: Vec<RevokeRequest> = if is_list {
        serde_json::from_value::<Vec<JsonObject<RevokeRequest>>>(value)
            .map(|all| all.into_iter().map(|JsonObject(r)| r).collect())
    } else {
        serde_json::from_value::<JsonObject<RevokeRequest>>(value).map(|JsonObject(r)| vec![r])
    }
    .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let revocations = requests
        .into_iter()
        .map(|r| {
            Ok(Revocation {
                token_id: parse_token_id(&r.token_id).map_err(invalid)?,
                kid: r.kid,
                reason: r.reason,
                revoked_at,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let command = AdminCommand::Revoke(revocations);
    command.check().map_err(|e| match e {
        AdminError::TooMany => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!("at most {REVOCATIONS_PER_COMMAND_MAX} revocations per request"),
        ),
        other => invalid(other),
    })?;
    match command {
        AdminCommand::Revoke(revocations) => Ok((is_list, revocations)),
        AdminCommand::SetClusterVersion(_) => Err(ApiError::internal("not a revocation")),
    }
}

async fn revoke(State(node): State<Arc<Node>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&node, body).await {
        Ok(b) => b,
        Err(e) => return err(&node, e),
    };
    // Validate here so a follower refuses bad input without a round trip; the leader stamps
    // the time it proposes at.
    let (is_list, mut revocations) = match parse_body(&body, 0) {
        Ok(r) => r,
        Err(e) => return err(&node, e),
    };
    if let Some(r) = on_leader(&node, &headers, PATH, body).await {
        return r;
    }
    if let Some(reason) = node.safe_mode() {
        return err(&node, ApiError::safe_mode(reason));
    }
    let now = node.clock.now_ns();
    for r in &mut revocations {
        r.revoked_at = now;
    }
    let ids: Vec<[u8; 16]> = revocations.iter().map(|r| r.token_id).collect();
    let wait = std::time::Duration::from_millis(node.config.limits.write_timeout_ms);
    let written = tokio::time::timeout(
        wait,
        node.raft
            .client_write(Command::Admin(AdminCommand::Revoke(revocations))),
    )
    .await;
    let resp = match written {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return err(&node, crate::pipeline::sequencer::raft_write_error(&e)),
        Err(_) => return err(&node, ApiError::write_timeout()),
    };
    let log_index = resp.log_id.index.to_string();
    let results = match resp.data {
        RaftResponse::Admin(AdminOutcome::Revoked(results)) if results.len() == ids.len() => {
            results
        }
        RaftResponse::Admin(AdminOutcome::Invalid(why)) => return err(&node, invalid(why)),
        _ => {
            return err(
                &node,
                ApiError::internal("the revocation entry got an unexpected reply"),
            )
        }
    };
    // The audit trail: the deny-list keeps who/why/when; the log says which request did it.
    for (id, r) in ids.iter().zip(&results) {
        tracing::info!(
            node = node.id,
            token_id = %token_id_hex(id),
            result = r.as_str(),
            log_index = %log_index,
            "capability revoked"
        );
    }
    if is_list {
        let results: Vec<ItemResult> = ids
            .iter()
            .zip(results)
            .map(|(id, r)| ItemResult {
                token_id: token_id_hex(id),
                result: r.as_str(),
            })
            .collect();
        Json(serde_json::json!({"log_index": log_index, "results": results})).into_response()
    } else {
        Json(serde_json::json!({"log_index": log_index, "result": results[0].as_str()}))
            .into_response()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
    /// `linearizable` (default) or `stale`.
    consistency: Option<String>,
}

/// A deny-list record as JSON (u64 values as decimal strings, like every other endpoint).
#[derive(Serialize)]
struct RecordJson {
    token_id: String,
    kid: String,
    reason: String,
    revoked_at: String,
    log_index: String,
}

impl From<RevocationRecord> for RecordJson {
    fn from(r: RevocationRecord) -> Self {
        RecordJson {
            token_id: r.token_id_hex(),
            kid: r.kid,
            reason: r.reason,
            revoked_at: r.revoked_at.to_string(),
            log_index: r.log_index.to_string(),
        }
    }
}

#[derive(Serialize)]
struct ListJson {
    revocations: Vec<RecordJson>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<String>,
}

async fn list(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    match list_page(&node, &headers, &uri, q).await {
        Ok(r) => r,
        Err(e) => err(&node, e),
    }
}

async fn list_page(
    node: &Node,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let after = q
        .after
        .as_deref()
        .map(parse_token_id)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", format!("after: {e}")))?;
    let limit = crate::http::decode::parse_u64(q.limit.as_deref(), "limit")?
        .map_or(REVOCATIONS_PAGE_DEFAULT, |l| {
            usize::try_from(l).unwrap_or(usize::MAX)
        });
    if limit == 0 || limit > REVOCATIONS_PAGE_MAX {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1..={REVOCATIONS_PAGE_MAX}"),
        ));
    }
    if let Consistency::Linearizable = consistency(q.consistency.as_deref())? {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or(PATH);
        if let Some(proxied) = linearize(node, headers, path).await? {
            return Ok(proxied);
        }
    }
    let records = node
        .state
        .revocations(after, limit)
        .map_err(ApiError::storage)?;
    let next_after = if records.len() == limit {
        records.last().map(RevocationRecord::token_id_hex)
    } else {
        None
    };
    Ok(Json(ListJson {
        revocations: records.into_iter().map(RecordJson::from).collect(),
        next_after,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use crate::seam::{Answer, Call, Connector, HttpConnector};
    use openraft::ServerState;
    use raft_store::NodeInfo;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    async fn call(addr: &str, method: &'static str, path: &str, body: &str) -> (u16, String) {
        let c = HttpConnector::new(Duration::from_secs(5)).unwrap();
        let Answer { status, body, .. } = c
            .call(Call {
                method,
                addr: addr.to_string(),
                path: path.to_string(),
                headers: vec![("content-type", "application/json".into())],
                body: body.as_bytes().to_vec(),
                timeout: Duration::from_secs(10),
            })
            .await
            .unwrap();
        (status, String::from_utf8(body).unwrap())
    }

    /// Start an amnesia node on free ports (the configured addresses only have to be valid).
    async fn start(node_id: u64) -> crate::start::RunningNode {
        let overrides: Vec<(String, String)> = [
            ("node_id", node_id.to_string()),
            ("api_addr", "127.0.0.1:1".to_string()),
            ("peer_addr", "127.0.0.1:2".to_string()),
            ("amnesia", "true".to_string()),
            ("auth.enabled", "false".to_string()),
            ("tls.mtls_required", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let config = crate::config::load(None, Vec::new(), &overrides).unwrap();
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (api, peer) = (bind().await.unwrap(), bind().await.unwrap());
        let seams = crate::start::Seams {
            connector: Arc::new(HttpConnector::new(Duration::from_secs(5)).unwrap()),
            clock: Arc::new(crate::seam::SystemClock),
            storage: None,
        };
        crate::Node::start_on(config, seams, api, peer)
            .await
            .unwrap()
    }

    fn info(r: &crate::start::RunningNode) -> NodeInfo {
        NodeInfo {
            api_addr: r.api_addr.clone(),
            peer_addr: r.peer_addr.clone(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_proxies_to_the_leader_and_applies_the_revocation() {
        let (a, b) = (start(1).await, start(2).await);
        let members = BTreeMap::from([(1, info(&a)), (2, info(&b))]);
        a.node.raft.initialize(members).await.unwrap();
        let wait = || Some(Duration::from_secs(10));
        a.node
            .raft
            .wait(wait())
            .state(ServerState::Leader, "leader")
            .await
            .unwrap();
        b.node
            .raft
            .wait(wait())
            .metrics(|m| m.current_leader == Some(1), "leader known")
            .await
            .unwrap();
        let id = "0f".repeat(16);
        let body = format!(r#"{{"token_id":"{id}","kid":"k1","reason":"via follower"}}"#);
        let (status, text) = call(&b.api_addr, "POST", super::PATH, &body).await;
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["result"], "ok", "{text}");
        let index: u64 = v["log_index"].as_str().unwrap().parse().unwrap();
        b.node
            .raft
            .wait(wait())
            .applied_index_at_least(Some(index), "applied")
            .await
            .unwrap();
        assert!(b.node.is_revoked(&[0x0f; 16]).unwrap());
        assert!(a.node.is_revoked(&[0x0f; 16]).unwrap());
        for path in [super::PATH, "/v1/admin/revocations?consistency=stale"] {
            let (status, text) = call(&b.api_addr, "GET", path, "").await;
            assert_eq!(status, 200, "{text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                v["revocations"][0]["token_id"],
                id.as_str(),
                "{path}: {text}"
            );
            assert_eq!(v["revocations"][0]["log_index"], index.to_string().as_str());
        }
        assert_eq!(
            a.node.state.digest().unwrap(),
            b.node.state.digest().unwrap()
        );
        // A write forwarded under the revoked token is refused by the leader itself, whatever
        // the forwarding node had applied; under another token it is sequenced.
        let forward = |token_id: [u8; 16]| {
            let body = crate::raft::rpc::encode(&crate::raft::rpc::ForwardRequest {
                cluster_id: a.node.config.cluster_id.clone(),
                op: ledger::Operation::CreateAccounts(vec![ledger::Account {
                    id: 7,
                    ledger: 1,
                    code: 1,
                    ..Default::default()
                }]),
                token_id: Some(token_id),
                approval_token_id: None,
                corr_id: "revocation-test".into(),
            })
            .unwrap();
            let connector = a.node.connector.clone();
            let addr = a.peer_addr.clone();
            async move {
                let answer = connector
                    .call(Call {
                        method: "POST",
                        addr,
                        path: "/internal/submit".into(),
                        headers: Vec::new(),
                        body,
                        timeout: Duration::from_secs(10),
                    })
                    .await
                    .unwrap();
                crate::raft::rpc::decode::<
                    Result<crate::pipeline::sequencer::Receipt, crate::error::ApiError>,
                >(&answer.body)
                .unwrap()
            }
        };
        let refused = forward([0x0f; 16]).await.unwrap_err();
        assert_eq!(refused.reason, "cap_revoked");
        assert!(forward([0x01; 16]).await.is_ok());
        b.shutdown().await;
        a.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_amnesia_node_revokes_lists_and_answers_is_revoked() {
        let running = start(1).await;
        let node = running.node.clone();
        let api = running.api_addr.clone();
        let members = BTreeMap::from([(
            1,
            NodeInfo {
                api_addr: api.clone(),
                peer_addr: running.peer_addr.clone(),
            },
        )]);
        node.raft.initialize(members).await.unwrap();
        node.raft
            .wait(Some(Duration::from_secs(10)))
            .state(ServerState::Leader, "leader")
            .await
            .unwrap();

        let id = "00112233445566778899aabbccddeeff";
        assert!(!node.is_revoked(&[0x11; 16]).unwrap());
        let one = format!(r#"{{"token_id":"{id}","kid":"k1","reason":"leaked in CI logs"}}"#);
        let (status, body) = call(&api, "POST", super::PATH, &one).await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["result"], "ok", "{body}");
        let first_index = v["log_index"].as_str().unwrap().to_string();
        // Again: idempotent, the first record stays.
        let (_, body) = call(&api, "POST", super::PATH, &one).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["result"], "exists", "{body}");
        // A list.
        let list = format!(
            r#"[{{"token_id":"{}","kid":"k2","reason":"r"}},{{"token_id":"{id}","kid":"k1","reason":"x"}}]"#,
            "ff".repeat(16)
        );
        let (status, body) = call(&api, "POST", super::PATH, &list).await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["results"][0]["result"], "ok", "{body}");
        assert_eq!(v["results"][1]["result"], "exists", "{body}");

        let mut token = [0u8; 16];
        token.copy_from_slice(&raft_store::revocation::parse_token_id(id).unwrap());
        assert!(node.is_revoked(&token).unwrap());
        assert!(node.is_revoked(&[0xff; 16]).unwrap());

        let (status, body) = call(&api, "GET", "/v1/admin/revocations?limit=1", "").await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["revocations"][0]["token_id"], id, "{body}");
        assert_eq!(v["revocations"][0]["reason"], "leaked in CI logs");
        assert_eq!(v["revocations"][0]["log_index"], first_index.as_str());
        assert_eq!(v["next_after"], id);
        let (_, body) = call(&api, "GET", &format!("{}?after={id}", super::PATH), "").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["revocations"][0]["token_id"], "ff".repeat(16), "{body}");
        assert_eq!(v["revocations"].as_array().unwrap().len(), 1);
        assert!(v["next_after"].is_null());

        // Bad input: a clear 400 and nothing proposed. First let the leader's cluster-version
        // advancer raise the version (its own entry), so it cannot land in the window checked.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        // Raft's metrics report an applied entry a moment after the state has it: wait for both.
        while node.state.cluster_version().unwrap() < raft_store::cluster_version::CLUSTER_VERSION
            || node.raft.metrics().borrow().last_applied
                != node.state.applied().unwrap().last_applied
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the version never advanced"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let applied = node.raft.metrics().borrow().last_applied;
        for bad in [
            r#"{"token_id":"xyz","kid":"k","reason":"r"}"#.to_string(),
            format!(
                r#"{{"token_id":"{id}","kid":"k","reason":"{}"}}"#,
                "r".repeat(201)
            ),
            format!(r#"{{"token_id":"{id}","kid":"k","reason":"r","extra":1}}"#),
            "[]".to_string(),
        ] {
            let (status, body) = call(&api, "POST", super::PATH, &bad).await;
            assert_eq!(status, 400, "{bad}: {body}");
        }
        for query in ["limit=0", "limit=+5", "limit=007", "limit=1001"] {
            let path = format!("/v1/admin/revocations?{query}");
            let (status, body) = call(&api, "GET", &path, "").await;
            assert_eq!(status, 400, "{query}: {body}");
        }
        assert_eq!(node.raft.metrics().borrow().last_applied, applied);
        running.shutdown().await;
    }
}
