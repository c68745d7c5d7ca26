//! Group commit of small requests on one in-process node: while a small entry is in flight (its
//! log append held here), concurrent single-transfer requests wait in the sequencer's queue and
//! are then committed together, in one entry, not one entry each.

mod common;

use node::seam::{HttpConnector, SystemClock};
use node::start::{Backends, Seams};
use node::{Node, RunningNode};
use raft_store::{LogBackend, MemoryLog, MemoryStateBackend, StoreError};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use test_support::events::{account_json, raw_body, transfer_body};

/// The memory log, whose appends wait while `held` is set (run on the blocking pool).
#[derive(Default)]
struct HeldLog {
    inner: MemoryLog,
    held: Mutex<bool>,
    released: Condvar,
    waiting: AtomicBool,
}

impl HeldLog {
    fn hold(&self, on: bool) {
        *self.held.lock().unwrap() = on;
        self.released.notify_all();
    }
}

impl LogBackend for HeldLog {
    fn is_blocking(&self) -> bool {
        true
    }
    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        let mut held = self.held.lock().unwrap();
        while *held {
            self.waiting.store(true, Ordering::SeqCst);
            held = self.released.wait(held).unwrap();
        }
        drop(held);
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

/// Releases the held log when dropped, also when an assertion fails: a held append would keep
/// the runtime from shutting down, and the test would hang instead of failing.
struct Release(Arc<HeldLog>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.hold(false);
    }
}

async fn start(dir: &std::path::Path, backends: Backends) -> RunningNode {
    let mut c = common::config(dir);
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
    common::initialize(&running).await;
    running
}

/// POST a body; the status and the JSON answer.
async fn post(http: reqwest::Client, url: String, body: String) -> (u16, Value) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_transfers_queued_behind_a_small_entry_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(HeldLog::default());
    let backends = Backends {
        log: log.clone(),
        state: Arc::new(MemoryStateBackend::new()),
    };
    let running = start(dir.path(), backends).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    let accounts = raw_body((1..=2).map(|id| account_json(id, 1)));
    let (code, v) = post(http.clone(), format!("{base}/v1/accounts"), accounts).await;
    assert_eq!(code, 200, "{v}");

    // The leader raises the cluster version by itself once after start, with an entry of its
    // own: let that happen first, so that the entry held below is the transfer's.
    test_support::wait::poll(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let v = common::get_json(&http, &format!("{base}/v1/status")).await;
            if v["cluster_version"] == raft_store::CLUSTER_VERSION {
                Ok(())
            } else {
                Err(format!("cluster version {}", v["cluster_version"]))
            }
        },
    )
    .await;

    // One single-transfer entry in flight, its log append held.
    log.hold(true);
    let release = Release(log.clone());
    let transfer = |id: u128| {
        let (http, url) = (http.clone(), format!("{base}/v1/transfers"));
        tokio::spawn(post(http, url, transfer_body(id, 1, 2, 1).to_string()))
    };
    let first = transfer(1);
    test_support::wait::poll(
        Duration::from_secs(10),
        Duration::from_millis(5),
        || async {
            if log.waiting.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("the first entry's append has not started".to_string())
            }
        },
    )
    .await;

    // Forty more, one transfer each: all of them wait in the queue (with one small entry in
    // flight no other small entry is proposed).
    let rest: Vec<_> = (2..=41).map(transfer).collect();
    let sequencer = running.node.sequencer.clone();
    test_support::wait::poll(Duration::from_secs(10), Duration::from_millis(5), || {
        let depth = sequencer.depth();
        let answered = rest.iter().filter(|t| t.is_finished()).count();
        let first_answered = first.is_finished();
        async move {
            if depth >= 39 {
                Ok(())
            } else {
                Err(format!(
                    "{depth} requests queued behind the entry in flight ({answered} of the forty \
                     answered already; the first: {first_answered})"
                ))
            }
        }
    })
    .await;

    drop(release);
    let (code, v) = first.await.unwrap();
    assert_eq!(code, 200, "{v}");
    let mut entries = BTreeSet::new();
    for t in rest {
        let (code, v) = t.await.unwrap();
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["results"][0]["result"], "ok", "{v}");
        entries.insert(v["tree_size"].as_str().unwrap().to_string());
    }
    // The forty went in at most two entries (one, unless the first of them had formed a group
    // of its own before the rest arrived).
    assert!(
        entries.len() <= 2,
        "forty transfers took {} entries",
        entries.len()
    );
    running.shutdown().await;
}
