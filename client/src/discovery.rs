//! Leader discovery and seed handling: the seeds a client starts from (their `http://` or
//! `https://` scheme checked against the TLS setting), the members and leader learnt from
//! `/v1/status` ([`Status`], [`Member`]) and from the `leader` every answer names, the cached
//! leader writes go to, and the node each attempt is sent to.

use crate::config::ClientConfig;
use crate::error::Error;
use crate::retry::{Attempt, Req};
use crate::shared::{Shared, Unbatched};
use serde::Deserialize;

/// A cluster member as `/v1/status` reports it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Node id.
    pub id: u64,
    /// Client API address.
    pub api_addr: String,
    /// Peer address.
    pub peer_addr: String,
    /// Voter (else learner).
    pub voter: bool,
}

/// One node's `/v1/status`.
#[derive(Clone, Debug, Deserialize)]
pub struct Status {
    /// Node id.
    pub node_id: u64,
    /// Cluster name.
    pub cluster_id: String,
    /// `leader`, `follower`, `candidate`, `learner`.
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Leader id, if known.
    pub leader: Option<u64>,
    /// Last log index.
    pub last_log_index: Option<u64>,
    /// Committed index.
    pub committed_index: Option<u64>,
    /// Applied index.
    pub applied_index: Option<u64>,
    /// Merkle tree size at the applied index.
    pub tree_size: Option<String>,
    /// Merkle root at the applied index.
    pub root: Option<String>,
    /// Members.
    pub members: Vec<Member>,
    /// Why the node is in safe mode, if it is (a message).
    pub safe_mode: Option<String>,
    /// The safe-mode reason code (`root_mismatch`, `checksum_mismatch`, `disk_full`, ...), if
    /// any; absent from nodes of older releases.
    #[serde(default)]
    pub safe_mode_reason: Option<String>,
}

/// Check the seeds: at least one, and a scheme only if it matches the TLS setting (`https://`
/// with TLS, `http://` without); the scheme and a trailing `/` are removed.
pub(crate) fn normalize_seeds(config: &mut ClientConfig) -> Result<(), Error> {
    if config.seeds.is_empty() {
        return Err(Error::Invalid("at least one seed address is needed".into()));
    }
    for seed in &mut config.seeds {
        if let Some(rest) = seed.strip_prefix("https://") {
            if config.tls.is_none() {
                return Err(Error::Invalid(format!(
                    "seed {seed} is https but no TLS is configured (the cluster CA is needed)"
                )));
            }
            *seed = rest.trim_end_matches('/').to_string();
        } else if let Some(rest) = seed.strip_prefix("http://") {
            if config.tls.is_some() {
                return Err(Error::Invalid(format!(
                    "seed {seed} is http but TLS is configured"
                )));
            }
            *seed = rest.trim_end_matches('/').to_string();
        }
    }
    Ok(())
}

impl Shared {
    /// Every address known: the members of the last status, then the seeds not among them.
    pub(crate) fn known_addrs(&self) -> Vec<String> {
        let mut addrs: Vec<String> = self
            .members
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for s in &self.config.seeds {
            if !addrs.contains(s) {
                addrs.push(s.clone());
            }
        }
        addrs
    }

    /// The address writes currently go to, if known.
    pub(crate) fn cached_leader(&self) -> Option<String> {
        self.leader.read().ok().and_then(|l| l.clone())
    }

    /// Cache member `id` (named as leader by an answer) as the leader, if its address is known.
    pub(crate) fn note_leader(&self, id: Option<u64>) {
        let Some(id) = id else { return };
        let addr = self.members.read().ok().and_then(|m| m.get(&id).cloned());
        if let (Some(addr), Ok(mut cached)) = (addr, self.leader.write()) {
            *cached = Some(addr);
        }
    }

    /// Drop the cached leader: the next attempt discovers it again.
    pub(crate) fn forget_leader(&self) {
        if let Ok(mut cached) = self.leader.write() {
            *cached = None;
        }
    }
}

impl Unbatched {
    /// Ask seeds and members for status until one names a leader; cache members and leader.
    pub(crate) async fn discover(&self) -> Option<String> {
        for addr in self.shared.known_addrs() {
            let Attempt::Done(Ok(Some(status))) =
                self.once_get::<Status>(&addr, "/v1/status").await
            else {
                continue;
            };
            if let Ok(mut m) = self.shared.members.write() {
                *m = status
                    .members
                    .iter()
                    .map(|x| (x.id, x.api_addr.clone()))
                    .collect();
            }
            if let Some(l) = status
                .leader
                .and_then(|id| status.members.iter().find(|x| x.id == id))
            {
                let addr = l.api_addr.clone();
                if let Ok(mut cached) = self.shared.leader.write() {
                    *cached = Some(addr.clone());
                }
                return Some(addr);
            }
        }
        None
    }

    /// Where to send the next attempt: the request's pinned node, else the cached leader, else
    /// whoever discovery finds, else the seeds in turn. Addresses in `failed` (attempts of this
    /// request that got no answer) are passed over: a leader that advertises an address this
    /// client cannot reach (a client outside the nodes' network, through published ports or a
    /// load balancer) is then reached through a seed, which forwards the request to it.
    pub(crate) async fn target(&self, req: &Req, attempt: u32, failed: &[String]) -> String {
        if let Some(addr) = &req.pin {
            return addr.clone();
        }
        if let Some(l) = self.shared.cached_leader() {
            if !failed.contains(&l) {
                return l;
            }
        }
        if let Some(l) = self.discover().await {
            if !failed.contains(&l) {
                return l;
            }
        }
        let seeds = &self.shared.config.seeds;
        let untried: Vec<&String> = seeds.iter().filter(|s| !failed.contains(s)).collect();
        match untried.len() {
            0 => seeds[attempt as usize % seeds.len()].clone(),
            n => untried[attempt as usize % n].clone(),
        }
    }
}

#[cfg(test)]
mod seed_scheme_tests {
    use crate::transport::{self, ClientTls, HttpRequest, Transport};
    use crate::{Client, ClientConfig, Error};
    use std::sync::Arc;

    struct Never;
    impl Transport for Never {
        fn send(
            &self,
            _: HttpRequest,
        ) -> transport::BoxFuture<'_, Result<transport::HttpReply, String>> {
            Box::pin(async { Err("no network in this test".to_string()) })
        }
    }

    #[tokio::test]
    async fn seed_schemes_must_match_the_tls_setting() {
        let tls = ClientTls {
            ca_pem: Vec::new(),
            client_cert_pem: None,
            client_key_pem: None,
        };
        let mut c = ClientConfig::new(["https://127.0.0.1:7001"]);
        assert!(matches!(
            Client::with_transport(c.clone(), Arc::new(Never)),
            Err(Error::Invalid(_))
        ));
        c.tls = Some(tls.clone());
        assert!(Client::with_transport(c, Arc::new(Never)).is_ok());
        let mut c = ClientConfig::new(["http://127.0.0.1:7001"]);
        c.tls = Some(tls);
        assert!(matches!(
            Client::with_transport(c, Arc::new(Never)),
            Err(Error::Invalid(_))
        ));
    }
}
