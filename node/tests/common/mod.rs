//! What the one-node, in-process tests share (each test file is its own crate and includes this
//! with `mod common;`): a plaintext, capability-free configuration on loopback, and initialising
//! the node as a cluster of one; small HTTP reads. Not every test file uses every helper.
#![allow(dead_code)]

use node::{Config, RunningNode};
use raft_store::NodeInfo;
use std::collections::BTreeMap;
use std::time::Duration;

/// Node 1 with its data in `dir`, plaintext, no capabilities, fast elections, logging warnings.
pub fn config(dir: &std::path::Path) -> Config {
    let overrides: Vec<(String, String)> = [
        ("node_id", "1"),
        ("api_addr", "127.0.0.1:1"),
        ("peer_addr", "127.0.0.1:2"),
        ("auth.enabled", "false"),
        ("tls.mtls_required", "false"),
        ("raft.heartbeat_ms", "50"),
        ("raft.election_timeout_min_ms", "150"),
        ("raft.election_timeout_max_ms", "300"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("data_dir".to_string(), dir.display().to_string())])
    .collect();
    let mut c = node::config::load(None, vec![], &overrides).unwrap();
    c.api_addr = "127.0.0.1:0".parse().unwrap();
    c.peer_addr = "127.0.0.1:0".parse().unwrap();
    c.log.level = "warn".into();
    c
}

/// Initialise `running` as a cluster of one and wait until it leads.
pub async fn initialize(running: &RunningNode) {
    let members = BTreeMap::from([(
        1,
        NodeInfo {
            api_addr: running.api_addr.clone(),
            peer_addr: running.peer_addr.clone(),
        },
    )]);
    running.node.raft.initialize(members).await.unwrap();
    running
        .node
        .raft
        .wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "leader")
        .await
        .unwrap();
}

/// GET `url`: the status code.
pub async fn get_status(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

/// GET `url`: the body as text (`/metrics`).
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// GET `url`: the body as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}
