//! The cluster as a client sees and administers it: each node's `/v1/status`, the cached
//! leader, membership changes, and the capability deny-list. Admin operations are JSON POSTs,
//! retried to the leader like writes; they need an admin capability and, over TLS, a client
//! certificate.

use crate::caps::RevocationEntry;
use crate::client::Client;
use crate::discovery::Status;
use crate::error::Error;
use crate::reads::Consistency;
use crate::retry::{Attempt, Req};
use crate::shared::Unbatched;
use serde::Deserialize;

#[derive(Deserialize)]
struct RevocationPage {
    revocations: Vec<RevocationEntry>,
}

impl Unbatched {
    /// POST `body` as JSON to the admin endpoint `path`.
    async fn admin(&self, path: &str, body: serde_json::Value) -> Result<(), Error> {
        let body = serde_json::to_vec(&body).map_err(|e| Error::Invalid(e.to_string()))?;
        self.send(&Req::post(path, "application/json", body))
            .await
            .map(|_| ())
    }
}

/// A member of a cluster being initialised: its id and the addresses the others reach it at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitMember {
    pub node_id: u64,
    pub api_addr: String,
    pub peer_addr: String,
}

impl Client {
    /// Initialise a new cluster of `members` through the node at `addr`, which must be one of
    /// them (`POST /v1/admin/init`, admin). Done once in a cluster's life: a node already
    /// initialised answers [`Error::Rejected`] with reason `already_initialized`.
    pub async fn init_cluster(&self, addr: &str, members: &[InitMember]) -> Result<(), Error> {
        let members: serde_json::Map<String, serde_json::Value> = members
            .iter()
            .map(|m| {
                (
                    m.node_id.to_string(),
                    serde_json::json!({"api_addr": m.api_addr, "peer_addr": m.peer_addr}),
                )
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "members": members }))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let _: serde_json::Value = self
            .clone_without_batcher()
            .once_post(addr, "/v1/admin/init", body)
            .await?;
        Ok(())
    }

    /// `/v1/status` of the node at `addr`.
    pub async fn status_of(&self, addr: &str) -> Result<Status, Error> {
        let u = self.clone_without_batcher();
        match u.once_get(addr, "/v1/status").await {
            Attempt::Done(r) => r.and_then(|v: Option<Status>| {
                v.ok_or_else(|| Error::Protocol("empty status".into()))
            }),
            Attempt::Retry(e) => Err(Error::Unavailable {
                attempts: 1,
                last: e,
            }),
        }
    }

    /// Status of every known member (and seed), keyed by address.
    pub async fn cluster_status(&self) -> Vec<(String, Result<Status, Error>)> {
        let u = self.clone_without_batcher();
        let _ = u.discover().await;
        let mut out = Vec::new();
        for a in u.shared.known_addrs() {
            let s = self.status_of(&a).await;
            out.push((a, s));
        }
        out
    }

    /// The address writes currently go to, if known.
    pub fn cached_leader(&self) -> Option<String> {
        self.shared.cached_leader()
    }

    /// Add a learner (an admin operation; goes to the leader).
    pub async fn add_learner(
        &self,
        node_id: u64,
        api_addr: &str,
        peer_addr: &str,
    ) -> Result<(), Error> {
        let body =
            serde_json::json!({"node_id": node_id, "api_addr": api_addr, "peer_addr": peer_addr});
        self.clone_without_batcher()
            .admin("/v1/admin/learners", body)
            .await
    }

    /// Take learner `node_id` out of the membership (a voter is refused: change the voters
    /// first).
    pub async fn remove_learner(&self, node_id: u64) -> Result<(), Error> {
        self.clone_without_batcher()
            .admin(
                "/v1/admin/learners/remove",
                serde_json::json!({"node_id": node_id}),
            )
            .await
    }

    /// Make learners `ids` voters too, the other voters staying: unlike
    /// [`Client::change_membership`] this never undoes a concurrent change.
    pub async fn add_voters(&self, ids: &[u64]) -> Result<(), Error> {
        self.membership(serde_json::json!({"add_voters": ids}))
            .await
    }

    /// Remove voters `ids` from the membership, the other voters staying.
    pub async fn remove_voters(&self, ids: &[u64]) -> Result<(), Error> {
        self.membership(serde_json::json!({"remove_voters": ids}))
            .await
    }

    /// One `POST /v1/admin/membership` of `body`.
    async fn membership(&self, body: serde_json::Value) -> Result<(), Error> {
        self.clone_without_batcher()
            .admin("/v1/admin/membership", body)
            .await
    }

    /// Make exactly `voters` the voting members (promote learners, remove the rest).
    pub async fn change_membership(&self, voters: &[u64]) -> Result<(), Error> {
        self.membership(serde_json::json!({"voters": voters})).await
    }

    /// Put a token on the cluster's deny-list (an admin operation committed through Raft; needs
    /// an admin capability and, over TLS, a client certificate). Every node refuses the token
    /// once it has applied the entry.
    pub async fn revoke(&self, token_id: &str, kid: &str, reason: &str) -> Result<(), Error> {
        self.clone_without_batcher()
            .admin(
                "/v1/admin/revocations",
                serde_json::json!({"token_id": token_id, "kid": kid, "reason": reason}),
            )
            .await
    }

    /// The deny-list, in token-id order, starting after `after`.
    pub async fn revocations(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RevocationEntry>, Error> {
        let mut path = format!("/v1/admin/revocations?limit={limit}");
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        let page: Option<RevocationPage> = self
            .clone_without_batcher()
            .get_opt(&path, Consistency::Linearizable)
            .await?;
        page.map(|p| p.revocations)
            .ok_or_else(|| Error::Protocol("the node has no revocation endpoint".into()))
    }
}
