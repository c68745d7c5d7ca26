//! Group commit of small requests on one in-process node: while a small entry is in flight (its
//! log append held here), concurrent single-transfer requests wait in the sequencer's queue and
//! are then committed together, in one entry, not one entry each.

mod common;

use node::start::Backends;
use raft_store::{MemoryStateBackend, StoreError};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use test_support::events::{account_json, raw_body, transfer_body};

/// Appends wait while `held` is set (the log then runs on the blocking pool).
#[derive(Default)]
struct Held {
    held: Mutex<bool>,
    released: Condvar,
    waiting: AtomicBool,
}

impl Held {
    fn hold(&self, on: bool) {
        *self.held.lock().unwrap() = on;
        self.released.notify_all();
    }
}

impl common::AppendGate for Held {
    fn before_append(&self) -> Result<(), StoreError> {
        let mut held = self.held.lock().unwrap();
        while *held {
            self.waiting.store(true, Ordering::SeqCst);
            held = self.released.wait(held).unwrap();
        }
        Ok(())
    }
    fn blocks(&self) -> bool {
        true
    }
}

type HeldLog = common::GatedLog<Held>;

/// Releases the held log when dropped, also when an assertion fails: a held append would keep
/// the runtime from shutting down, and the test would hang instead of failing.
struct Release(Arc<HeldLog>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.gate.hold(false);
    }
}

/// POST a body; the status and the JSON answer.
async fn post(http: reqwest::Client, url: String, body: String) -> (u16, Value) {
    common::post_json(&http, &url, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_transfers_queued_behind_a_small_entry_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(HeldLog::default());
    let backends = Backends {
        log: log.clone(),
        state: Arc::new(MemoryStateBackend::new()),
    };
    let running = common::start_on(dir.path(), backends).await;
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
    log.gate.hold(true);
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
            if log.gate.waiting.load(Ordering::SeqCst) {
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
