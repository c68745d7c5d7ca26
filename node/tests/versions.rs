//! Versions between nodes, in process: the peer listener reads wire formats 1 (no header: release
//! 0.1.0) and 2 and refuses any other before decoding the body, every peer answer names the
//! versions this build runs, and a leader whose members all run this build raises the cluster's
//! effective version by itself (here a cluster of one), visible in `/v1/status` and kept across
//! a restart.

mod common;

use node::cluster_version::{RUNS_HEADER, WIRE_HEADER};
use node::{Node, RunningNode};
use std::time::Duration;

/// A private (0700) data directory under `dir`.
fn data_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    data
}

async fn status(http: &reqwest::Client, running: &RunningNode) -> serde_json::Value {
    common::get_json(http, &format!("http://{}/v1/status", running.api_addr)).await
}

/// Poll `/v1/status` until `cluster_version` is `want` (bounded: 20 s).
async fn wait_for_version(http: &reqwest::Client, running: &RunningNode, want: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(http, running).await;
        if s["cluster_version"] == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cluster_version never became {want}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_read_the_previous_and_current_wire_formats_and_refuse_others() {
    let dir = tempfile::tempdir().unwrap();
    let running = Node::start(common::config(&data_dir(dir.path())))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let url = format!("http://{}/raft/vote", running.peer_addr);
    for (wire, refused) in [
        (None, false),
        (Some("1"), false),
        (Some("2"), false),
        (Some("3"), true),
        (Some("x"), true),
    ] {
        let mut req = http.post(&url).body(vec![0xffu8; 3]);
        if let Some(w) = wire {
            req = req.header(WIRE_HEADER, w);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{wire:?}");
        assert_eq!(resp.headers()[WIRE_HEADER], "2");
        assert_eq!(
            resp.headers()[RUNS_HEADER],
            raft_store::CLUSTER_VERSION.to_string()
        );
        let text = resp.text().await.unwrap();
        // A format it reads gets as far as decoding the (garbage) body; another is refused by
        // name before that.
        assert_eq!(
            text.contains("peer wire format"),
            refused,
            "{wire:?}: {text}"
        );
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_members_all_run_this_build_raises_the_cluster_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let running = Node::start(common::config(&data)).await.unwrap();
    let http = reqwest::Client::new();
    common::initialize(&running).await;
    wait_for_version(&http, &running, u64::from(raft_store::CLUSTER_VERSION)).await;
    let s = status(&http, &running).await;
    assert_eq!(
        s["version"]["cluster_version_max"],
        raft_store::CLUSTER_VERSION
    );
    assert_eq!(s["version"]["peer_wire"], 2);
    assert_eq!(
        s["members"][0]["runs_cluster_version"],
        raft_store::CLUSTER_VERSION
    );
    let digest = running.node.state.digest().unwrap();
    running.shutdown().await;

    // Kept across a restart, digest and all.
    let running = Node::start(common::config(&data)).await.unwrap();
    assert_eq!(
        running.node.state.cluster_version().unwrap(),
        raft_store::CLUSTER_VERSION
    );
    assert_eq!(running.node.state.digest().unwrap(), digest);
    running.shutdown().await;
}
