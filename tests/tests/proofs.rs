//! Verifiability end to end on a real 3-node cluster: transfers, a leader change, then every
//! transfer's write receipt verifies against a later signed checkpoint from any node (inclusion
//! proof for the event, consistency proof from the receipt's tree to the checkpoint's), every
//! node signs the same tree, and an exported range verifies offline — with `ledger`'s verifier
//! and with `ronctl verify`.

use ledger::canonical::{decode_leaf, LeafData, LeafEvent};
use ledger::checkpoint::{SignedCheckpoint, TrustedKeys};
use ledger::export::{verify_bundle, ExportBundle};
use ledger::proof::{ConsistencyProof, InclusionProof};
use ledger::Hash;
use serde_json::{json, Value};
use std::time::Duration;
use test_support::cluster::{ronctl_binary, Cluster, SERIAL};
use test_support::events::{accounts_json, transfer_json};
use test_support::wait::poll;

struct Receipt {
    id: u128,
    leaf: u64,
    tree_size: u64,
    root: Hash,
}

fn dec(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).expect("decimal")
}

async fn transfers(c: &Cluster, ids: &[u64], first: u128, count: u128) -> Vec<Receipt> {
    let body = Value::Array(
        (first..first + count)
            .map(|id| transfer_json(id, 1 + id % 3, 4, id % 97 + 1))
            .collect(),
    );
    let mut attempt = 0;
    poll(Duration::from_secs(60), Duration::from_millis(100), || {
        let node = ids[attempt % ids.len()];
        attempt += 1;
        let body = &body;
        async move {
            if let Some((200, v)) = c.post(node, "/v1/transfers", body.clone()).await {
                let tree_size = dec(&v["tree_size"]);
                let root = Hash::from_hex(v["root"].as_str().unwrap()).unwrap();
                return Ok(v["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        assert!(r["result"] == "ok" || r["result"] == "exists", "{r}");
                        Receipt {
                            id: first + i as u128,
                            leaf: dec(&r["leaf"]),
                            tree_size,
                            root,
                        }
                    })
                    .collect());
            }
            Err("write not acknowledged")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_verify_against_later_checkpoints_from_any_node_and_exports_verify_offline() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "[checkpoint]\ninterval_events = 50\n");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    let accounts = accounts_json(1..=4);
    c.write_until_acked(
        "/v1/accounts",
        &accounts,
        &[1, 2, 3],
        Duration::from_secs(30),
    )
    .await;
    let mut receipts = Vec::new();
    for round in 0..3u128 {
        receipts.extend(transfers(&c, &[1, 2, 3], 1_000 + round * 100, 40).await);
    }
    // A leader change, then more writes under the new leader.
    let old = c.leader(&[1, 2, 3]).await;
    c.kill(old);
    let rest: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    c.leader(&rest).await;
    for round in 3..5u128 {
        receipts.extend(transfers(&c, &rest, 1_000 + round * 100, 40).await);
    }
    c.start(old);
    c.converged(&[1, 2, 3]).await;

    // The cluster's public keys, one per node.
    let mut keys = TrustedKeys::new();
    let mut keys_json = serde_json::Map::new();
    for id in 1..=3 {
        let (code, v) = c.get(id, "/v1/checkpoints/keys").await.expect("keys");
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["cluster_id"], "test");
        for (kid, public) in v["keys"].as_object().unwrap() {
            keys.insert(kid.clone(), public.as_str().unwrap()).unwrap();
            keys_json.insert(kid.clone(), public.clone());
        }
    }
    assert_eq!(keys.len(), 3, "every node has its own key");

    // Every node signs the same tree at the same applied index.
    let mut checkpoints = Vec::new();
    for id in 1..=3 {
        let (code, v) = c
            .post(id, "/v1/admin/checkpoint", json!({}))
            .await
            .expect("checkpoint");
        assert_eq!(code, 200, "{v}");
        let cp: SignedCheckpoint = serde_json::from_value(v).unwrap();
        cp.verify(&keys).expect("checkpoint signature verifies");
        checkpoints.push(cp);
    }
    assert!(checkpoints
        .iter()
        .all(|cp| (cp.tree_size, cp.root) == (checkpoints[0].tree_size, checkpoints[0].root)));
    let (code, v) = c.get(2, "/v1/checkpoints?limit=5").await.unwrap();
    assert_eq!(code, 200);
    assert!(
        v["checkpoints"].as_array().unwrap().len() >= 2,
        "interval checkpoints were made as the tree grew: {v}"
    );

    // Every receipt: the event is in the checkpoint's tree, and the receipt's tree is a prefix
    // of it — asked of each node in turn.
    for (i, r) in receipts.iter().enumerate() {
        let node = 1 + (i as u64 % 3);
        let cp = &checkpoints[(node - 1) as usize];
        let (code, v) = c
            .get(
                node,
                &format!(
                    "/v1/proofs/inclusion?transfer_id={}&tree_size={}",
                    r.id, cp.tree_size
                ),
            )
            .await
            .unwrap();
        assert_eq!(code, 200, "{v}");
        let proof: InclusionProof = serde_json::from_value(v["proof"].clone()).unwrap();
        assert_eq!((proof.leaf_index, proof.tree_size), (r.leaf, cp.tree_size));
        let data = ledger::wire::hex::decode(v["leaf_data"].as_str().unwrap()).unwrap();
        match decode_leaf(&data).unwrap() {
            LeafEvent::Transfer { transfer, result } => {
                assert_eq!((transfer.id, result), (r.id, 0));
            }
            other => panic!("leaf {} is not transfer {}: {other:?}", r.leaf, r.id),
        }
        let leaf = LeafData::from_bytes(&data).unwrap().hash();
        proof
            .verify(&leaf, &cp.root)
            .expect("inclusion proof verifies");
        let (code, v) = c
            .get(
                node,
                &format!(
                    "/v1/proofs/consistency?from={}&to={}",
                    r.tree_size, cp.tree_size
                ),
            )
            .await
            .unwrap();
        assert_eq!(code, 200, "{v}");
        let consistency: ConsistencyProof = serde_json::from_value(v).unwrap();
        consistency
            .verify(&r.root, &cp.root)
            .expect("the receipt's tree is a prefix of the checkpoint's");
    }

    // Export a range and verify it offline.
    let to = checkpoints[0].tree_size;
    let (code, v) = c
        .get(3, &format!("/v1/export?from=0&to={to}"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    let bundle: ExportBundle = serde_json::from_value(v.clone()).unwrap();
    let report = verify_bundle(&bundle, &keys).expect("the exported range verifies");
    assert_eq!(report.tree_size, to);

    // The same, as an operator does it: ronctl collects the keys, exports and verifies offline.
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys.json");
    let bundle_file = dir.path().join("range.json");
    let seeds = (1..=3)
        .map(|id| c.node(id).api.clone())
        .collect::<Vec<_>>()
        .join(",");
    let ronctl_env = c.ronctl_env();
    let ronctl = |args: &[&str]| {
        std::process::Command::new(ronctl_binary())
            .envs(ronctl_env.clone())
            .args(["--seeds", &seeds])
            .args(args)
            .output()
            .expect("run ronctl")
    };
    let out = ronctl(&["keys", "--out", keys_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ronctl(&[
        "export",
        "--from",
        "5",
        "--to",
        "60",
        bundle_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ronctl(&[
        "verify",
        bundle_file.to_str().unwrap(),
        "--keys",
        keys_file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("OK: 55 events"),
        "{stdout}"
    );

    // The node whose key signed that bundle rotates its key and restarts: its retired key
    // stays published with the sizes it signed, the old bundle still verifies with the keys
    // collected afterwards, and the node signs with the new key from then on.
    let old_bundle: ExportBundle =
        serde_json::from_slice(&std::fs::read(&bundle_file).unwrap()).unwrap();
    let old_kid = old_bundle.checkpoint.kid.clone();
    let signer = (1..=3u64)
        .find(|id| old_kid.contains(&format!("/node-{id}/")))
        .expect("the KID names its node");
    let out = ronctl(&[
        "--json",
        "checkpoint",
        "--rotate",
        &c.node(signer).api.clone(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotation: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rotation["retired"]["kid"], old_kid.as_str());
    let new_kid = rotation["current"]["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    c.kill(signer);
    c.start(signer);
    c.converged(&[1, 2, 3]).await;
    let (code, v) = c.get(signer, "/v1/checkpoints/keys").await.unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["keys"].as_object().unwrap().len(), 2, "{v}");
    let history = v["history"].as_array().unwrap();
    assert_eq!(history[0]["kid"], old_kid.as_str());
    assert!(history[0]["last_tree_size"].is_string(), "retired: {v}");
    assert_eq!(history[1]["kid"], new_kid.as_str());
    let (_, listed) = c.get(signer, "/v1/checkpoints?limit=100").await.unwrap();
    assert!(
        listed["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|cp| cp["kid"] == old_kid.as_str()),
        "checkpoints of the retired key are still served after the restart: {listed}"
    );
    let rotated_keys = dir.path().join("keys-after-rotation.json");
    let out = ronctl(&["keys", "--out", rotated_keys.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ronctl(&[
        "verify",
        bundle_file.to_str().unwrap(),
        "--keys",
        rotated_keys.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("OK: 55 events"),
        "the old bundle verifies after the rotation: {stdout}"
    );
    let (code, v) = c
        .post(signer, "/v1/admin/checkpoint", json!({}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kid"], new_kid.as_str());
    let keys_after = ron_ledger_client::checkpoints::KeysFile::parse(
        &std::fs::read_to_string(&rotated_keys).unwrap(),
    )
    .unwrap();
    let fresh: SignedCheckpoint = serde_json::from_value(v).unwrap();
    fresh.verify(&keys_after.keys).unwrap();
    keys.insert(
        new_kid.clone(),
        rotation["current"]["public_key"].as_str().unwrap(),
    )
    .unwrap();

    // The SDK as an auditor: every receipt's transfer, fetched verified (checkpoints are
    // consistency-checked as they advance), from whichever node it reaches.
    let config = c
        .client_config((1..=3).map(|id| c.node(id).api.clone()))
        .with_trusted_keys(keys.clone(), Some("test".into()));
    let client = ron_ledger_client::Client::new(config).unwrap();
    for r in receipts.iter().step_by(7) {
        let v = client.verified_transfer(r.id).await.expect("verified");
        assert_eq!((v.value.id, v.leaf_index), (r.id, r.leaf));
    }

    // Wrong questions get clear errors.
    for (path, want) in [
        (
            format!("/v1/proofs/inclusion?leaf=0&tree_size={}", to + 1_000_000),
            400,
        ),
        ("/v1/proofs/inclusion?transfer_id=77777777".to_string(), 404),
        (
            "/v1/proofs/inclusion?leaf=1&transfer_id=1000".to_string(),
            400,
        ),
        (format!("/v1/proofs/consistency?from={}&to=1", to), 400),
        (format!("/v1/export?from={to}&to={}", to + 10), 400),
        (format!("/v1/export?from=0&to={}", to + 1_000_000), 413),
        ("/v1/proofs/inclusion?leaf=x".to_string(), 400),
    ] {
        let (code, v) = c.get(1, &path).await.unwrap();
        assert_eq!(code, want, "{path}: {v}");
        assert!(v["error"]["reason"].is_string(), "{v}");
    }
}
