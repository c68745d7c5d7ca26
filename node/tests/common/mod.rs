//! What the one-node, in-process tests share (each test file is its own crate and includes this
//! with `mod common;`): a plaintext, capability-free configuration on loopback, and initialising
//! the node as a cluster of one, also on storage a test supplies (a log whose appends it can
//! hold or fail); small HTTP reads and writes. Not every test file uses every helper.
#![allow(dead_code)]

use node::seam::{HttpConnector, SystemClock};
use node::start::{Backends, Seams};
use node::{Config, Node, RunningNode};
use raft_store::{LogBackend, MemoryLog, NodeInfo, StoreError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
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

/// Node 1 with its data in `dir`, on `backends`, initialised as a cluster of one.
pub async fn start_on(dir: &std::path::Path, backends: Backends) -> RunningNode {
    let mut c = config(dir);
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    c.advertise_api_addr = Some(api.local_addr().unwrap().to_string());
    c.advertise_peer_addr = Some(peer.local_addr().unwrap().to_string());
    let seams = Seams {
        connector: Arc::new(HttpConnector::new(Duration::from_secs(2)).unwrap()),
        clock: Arc::new(SystemClock),
        storage: Some(backends),
    };
    let running = Node::start_on(c, seams, api, peer).await.expect("starts");
    initialize(&running).await;
    running
}

/// POST a JSON `body` to `url`: the status and the JSON answer (`null` if none).
pub async fn post_json(http: &reqwest::Client, url: &str, body: String) -> (u16, Value) {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What a [`GatedLog`] does before each append: let it through, wait, or fail it.
pub trait AppendGate: Send + Sync + 'static {
    /// Called before every append; an error fails the append (nothing is written).
    fn before_append(&self) -> Result<(), StoreError>;
    /// Whether `before_append` may block (the log then runs on the blocking pool).
    fn blocks(&self) -> bool {
        false
    }
}

/// The memory log behind a gate a test controls.
#[derive(Default)]
pub struct GatedLog<G> {
    pub inner: MemoryLog,
    pub gate: G,
}

impl<G: AppendGate> LogBackend for GatedLog<G> {
    fn is_blocking(&self) -> bool {
        self.gate.blocks() || self.inner.is_blocking()
    }
    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        self.gate.before_append()?;
        self.inner.append(entries)
    }
    fn read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.read(start, end)
    }
    fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.inner.last()
    }
    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        self.inner.truncate(from)
    }
    fn purge(&self, upto: u64, purged: Vec<u8>) -> Result<(), StoreError> {
        self.inner.purge(upto, purged)
    }
    fn meta_get(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta_get(key)
    }
    fn meta_put(&self, key: &'static str, value: Vec<u8>, sync: bool) -> Result<(), StoreError> {
        self.inner.meta_put(key, value, sync)
    }
}
