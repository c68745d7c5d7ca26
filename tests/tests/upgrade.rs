//! A rolling upgrade with real processes: a 3-node cluster of the previous release (built from its
//! commit by `scripts/previous-release.sh`) under a steady writer; one follower is upgraded and
//! rolled back while the cluster has not advanced; then every node is replaced by this build,
//! followers first and the leader last, each on its own data directory (SIGKILL, swap the binary,
//! start). Then the cluster's effective version advances by itself, every acknowledged transfer
//! is there exactly once, the roots agree, no node's applied index went back across its restart,
//! and the longest write interruption is reported.

use ledger::canonical::LeafData;
use ledger::checkpoint::{SignedCheckpoint, TrustedKeys};
use ledger::proof::{ConsistencyProof, InclusionProof};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::cluster::{binary, Cluster};
use test_support::events::{accounts_json, transfer_body};
use test_support::wait::poll;

/// The previous release's binary: `$CARGO_TARGET_DIR/releases/VERSION-COMMIT/ron-ledger`, built
/// by `scripts/previous-release.sh` (which `scripts/test.sh` runs first; run here if missing).
fn previous_release() -> PathBuf {
    let root = test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/previous-release.sh"))
        .output()
        .expect("run scripts/previous-release.sh");
    assert!(
        out.status.success(),
        "scripts/previous-release.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.exists(), "{}", path.display());
    path
}

struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u128, Duration)>,
}

/// Write transfers 1, 2, 3, … (1 unit from account 1 to account 2), each retried with the same id
/// on every node until acknowledged, as the SDK does. Returns how many were acknowledged and the
/// longest time between two acknowledgements.
fn start_writer(c: &Cluster) -> Writer {
    let http = c.http.clone();
    let apis: Vec<String> = c.nodes.iter().map(|n| n.api.clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut id = 0u128;
        let mut last = Instant::now();
        let mut longest = Duration::ZERO;
        let mut attempt = 0usize;
        while !flag.load(Ordering::Relaxed) {
            id += 1;
            let body = transfer_body(id, 1, 2, 1);
            loop {
                let api = &apis[attempt % apis.len()];
                attempt += 1;
                let sent = http
                    .post(format!("https://{api}/v1/transfers"))
                    .json(&body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                if let Ok(r) = sent {
                    if r.status().as_u16() == 200 {
                        let v: Value = r.json().await.unwrap();
                        let result = v["results"][0]["result"].as_str().unwrap().to_string();
                        assert!(result == "ok" || result == "exists", "transfer {id}: {v}");
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            longest = longest.max(last.elapsed());
            last = Instant::now();
        }
        (id, longest)
    });
    Writer { stop, task }
}

async fn applied(c: &Cluster, id: u64) -> Option<u64> {
    c.status(id).await.and_then(|s| s["applied_index"].as_u64())
}

/// Replace node `id`'s process with `program` on the same data directory; wait until it has
/// applied at least what the others had when it came back, and check its applied index did not
/// go back.
async fn swap(c: &mut Cluster, id: u64, program: &Path) {
    let before = applied(c, id).await.expect("node answers before the swap");
    c.kill(id);
    c.start_program(id, program, &[]);
    let others: Vec<u64> = (1..=3).filter(|n| *n != id).collect();
    let mut target = 0;
    for o in &others {
        target = target.max(applied(c, *o).await.unwrap_or(0));
    }
    let after = poll(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async {
            match applied(c, id).await {
                Some(a) if a >= target => Ok(a),
                _ => Err(format!("node {id} did not catch up to {target}")),
            }
        },
    )
    .await;
    assert!(
        after >= before,
        "node {id}: applied {before} before, {after} after"
    );
}

/// The cluster's public checkpoint keys, from every node.
async fn keys(c: &Cluster) -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    for id in 1..=3 {
        let (code, v) = c.get(id, "/v1/checkpoints/keys").await.expect("keys");
        assert_eq!(code, 200, "{v}");
        for (kid, public) in v["keys"].as_object().unwrap() {
            keys.insert(kid.clone(), public.as_str().unwrap()).unwrap();
        }
    }
    keys
}

/// A checkpoint signed by node `id` now, checked against `keys`.
async fn checkpoint(c: &Cluster, id: u64, keys: &TrustedKeys) -> SignedCheckpoint {
    let (code, v) = c
        .post(id, "/v1/admin/checkpoint", json!({}))
        .await
        .expect("checkpoint");
    assert_eq!(code, 200, "{v}");
    let cp: SignedCheckpoint = serde_json::from_value(v).unwrap();
    cp.verify(keys).expect("checkpoint signature verifies");
    cp
}

/// Node `id`'s inclusion proof of leaf 0 in the tree of `size` leaves, and the leaf's hash.
async fn leaf_zero(c: &Cluster, id: u64, size: u64) -> (InclusionProof, ledger::Hash) {
    let (code, v) = c
        .get(id, &format!("/v1/proofs/inclusion?leaf=0&tree_size={size}"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    let proof: InclusionProof = serde_json::from_value(v["proof"].clone()).unwrap();
    let data = ledger::wire::hex::decode(v["leaf_data"].as_str().unwrap()).unwrap();
    (proof, LeafData::from_bytes(&data).unwrap().hash())
}

async fn cluster_versions(c: &Cluster) -> Vec<Value> {
    let mut out = Vec::new();
    for id in 1..=3 {
        out.push(
            c.status(id)
                .await
                .map_or(Value::Null, |s| s["cluster_version"].clone()),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_from_the_previous_release_keeps_every_write() {
    let old = previous_release();
    let new = binary();
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start_program(id, &old, &[]);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &accounts_json(1..=2),
        &[1, 2, 3],
        Duration::from_secs(20),
    )
    .await;
    let old_status = c.status(1).await.unwrap();
    assert!(
        old_status["version"]["peer_wire"].is_null(),
        "node 1 runs the previous release: {}",
        old_status["version"]
    );
    // A checkpoint and a proof issued by the previous release, checked again after the upgrade.
    let old_keys = keys(&c).await;
    let old_cp = checkpoint(&c, 1, &old_keys).await;
    let (old_proof, leaf) = leaf_zero(&c, 1, old_cp.tree_size).await;
    old_proof
        .verify(&leaf, &old_cp.root)
        .expect("the old proof verifies");
    let writer = start_writer(&c);

    // One follower to this build and back, while the cluster has not advanced.
    let leader = c.leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    swap(&mut c, follower, &new).await;
    let s = c.status(follower).await.unwrap();
    assert_eq!(
        s["cluster_version"], 1,
        "a mixed cluster stays at version 1: {s}"
    );
    swap(&mut c, follower, &old).await;

    // Every node to this build, the leader last.
    let leader = c.leader(&[1, 2, 3]).await;
    let order: Vec<u64> = (1..=3).filter(|n| *n != leader).chain([leader]).collect();
    for id in order {
        swap(&mut c, id, &new).await;
    }
    // The effective version advances by itself once every member runs this build.
    let max = c.status(1).await.unwrap()["version"]["cluster_version_max"].clone();
    assert!(max.as_u64().unwrap() > 1, "{max}");
    poll(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let v = cluster_versions(&c).await;
            if v.iter().all(|x| *x == max) {
                Ok(())
            } else {
                Err(format!("cluster versions {v:?}"))
            }
        },
    )
    .await;

    writer.stop.store(true, Ordering::Relaxed);
    let (written, longest) = writer.task.await.unwrap();
    let (index, root) = c.converged(&[1, 2, 3]).await;
    eprintln!(
        "upgrade: {written} transfers acknowledged, longest write interruption {longest:?}, \
         converged at index {index} root {root}"
    );
    assert!(written > 10, "the writer made progress: {written}");
    // Every acknowledged transfer is there exactly once: 1 unit each, on every node.
    for id in 1..=3 {
        let balances = c.balances(id, 2).await;
        assert_eq!(balances[&1].0, written, "node {id}: debits of account 1");
        assert_eq!(balances[&2].1, written, "node {id}: credits of account 2");
    }
    // What the previous release signed and proved still holds: the same keys verify the old
    // checkpoint, the new nodes prove the same leaf the same way, and the old tree is a prefix
    // of the new one.
    let new_keys = keys(&c).await;
    old_cp
        .verify(&new_keys)
        .expect("the old checkpoint verifies after the upgrade");
    let new_cp = checkpoint(&c, 2, &new_keys).await;
    for id in 1..=3 {
        let (proof, again) = leaf_zero(&c, id, old_cp.tree_size).await;
        assert_eq!(
            (proof.clone(), again),
            (old_proof.clone(), leaf),
            "node {id}"
        );
        proof.verify(&leaf, &old_cp.root).unwrap();
    }
    let (code, v) = c
        .get(
            3,
            &format!(
                "/v1/proofs/consistency?from={}&to={}",
                old_cp.tree_size, new_cp.tree_size
            ),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    let consistency: ConsistencyProof = serde_json::from_value(v).unwrap();
    consistency
        .verify(&old_cp.root, &new_cp.root)
        .expect("the old checkpoint's tree is a prefix of the new one");
    for t in [1u128, written / 2, written] {
        let (code, v) = c.get(1, &format!("/v1/transfers/{t}")).await.unwrap();
        assert_eq!(code, 200, "transfer {t}: {v}");
    }
    // Every node moved its store to storage format 2 with the version, which reads an account's
    // transfers from the account indexes: the writer's transfers (ids 1, 2, … from account 1 to
    // account 2, most written under the previous release) are all listed, oldest and newest.
    let ids = |v: &Value| -> Vec<u128> {
        v["transfers"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|t| t["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let first = written.min(50);
    for id in 1..=3 {
        for (account, side) in [(1, "debits"), (2, "credits"), (1, "both")] {
            let path = format!("/v1/accounts/{account}/transfers?side={side}&limit={first}");
            let (code, v) = c.get(id, &path).await.unwrap();
            assert_eq!(code, 200, "node {id} {path}: {v}");
            assert_eq!(ids(&v), (1..=first).collect::<Vec<_>>(), "node {id} {path}");
        }
        let path = "/v1/accounts/2/transfers?order=desc&limit=1";
        let (code, v) = c.get(id, path).await.unwrap();
        assert_eq!(code, 200, "node {id} {path}: {v}");
        assert_eq!(ids(&v), vec![written], "node {id} {path}");
    }
    assert!(
        longest < Duration::from_secs(20),
        "writes stopped for {longest:?}"
    );
}
