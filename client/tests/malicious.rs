//! The SDK as an auditor against a lying server, and `ronctl verify` on honest and tampered
//! bundles.
//!
//! The fake server (axum, on loopback) holds an honest ledger tree built with `ledger::apply`,
//! signs checkpoints with a fixed-seed key and serves the proof endpoints; each case switches
//! it into one way of lying, and the SDK — trusting only the honest public key — must refuse
//! with the specific `VerifyError`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::canonical::{decode_leaf, transfer_leaf_data, LeafEvent};
use ledger::checkpoint::{CheckpointSigner, SignedCheckpoint, TrustedKeys};
use ledger::export::{build_bundle, ExportBundle};
use ledger::merkle::{leaf_hash, Hash};
use ledger::proof::{consistency_proof, inclusion_proof, root_at, ProofError};
use ledger::{apply, Batch, MemoryState, Operation};
use ron_ledger_client::{Client, ClientConfig, Error, VerifyError};
use serde_json::json;
use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::events::{accounts, transfer};
use test_support::process::outcome;

const CLUSTER: &str = "audit-test";
const KID: &str = "node-1";
const SEED: [u8; 32] = [0x42; 32];

/// One way for the server to lie (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    None,
    /// Change a byte of the leaf preimage (the amount): still decodes, same id.
    LeafData,
    /// Answer with another transfer's leaf and its (valid) proof.
    OtherLeaf,
    /// Swap the first two path elements.
    ReorderPath,
    /// Drop the last path element.
    TruncatePath,
    /// Append a path element.
    ExtraPath,
    /// A valid proof and root for a tree one leaf smaller than the checkpoint's.
    OtherTreeSize,
    /// A valid proof for the next leaf, with that leaf's data.
    OtherLeafIndex,
    /// An answer root that is not the checkpoint's.
    AnswerRoot,
    /// Look transfers up among rejected events too.
    ServeRejected,
    /// Flip a bit of the checkpoint signature.
    BadSignature,
    /// Sign checkpoints with a key the client does not trust.
    UnknownKid,
    /// Sign checkpoints for another cluster (with the honest key).
    OtherCluster,
}

struct Fake {
    addr: String,
    /// Leaf preimages of the tree currently served.
    leaves: Vec<Vec<u8>>,
    /// Tree size of the checkpoint currently served.
    size: u64,
    tamper: Tamper,
    signer: CheckpointSigner,
    intruder: CheckpointSigner,
}

type Shared = Arc<Mutex<Fake>>;

impl Fake {
    fn hashes(&self) -> Vec<Hash> {
        self.leaves.iter().map(|d| leaf_hash(d)).collect()
    }

    fn checkpoint(&self) -> SignedCheckpoint {
        let root = root_at(&self.hashes()[..], self.size).expect("root");
        let (signer, cluster) = match self.tamper {
            Tamper::UnknownKid => (&self.intruder, CLUSTER),
            Tamper::OtherCluster => (&self.signer, "another-cluster"),
            _ => (&self.signer, CLUSTER),
        };
        let mut cp = signer
            .sign(cluster, self.size, root, 1_000 + self.size)
            .expect("sign");
        if self.tamper == Tamper::BadSignature {
            cp.signature[5] ^= 1;
        }
        cp
    }

    /// The index of the creation leaf of transfer or account `id`.
    fn find(&self, transfer: bool, id: u128) -> Option<u64> {
        let any_result = self.tamper == Tamper::ServeRejected;
        self.leaves
            .iter()
            .position(|d| match decode_leaf(d) {
                Ok(LeafEvent::Transfer {
                    transfer: t,
                    result,
                }) if transfer => t.id == id && (result == 0 || any_result),
                Ok(LeafEvent::Account { account: a, result }) if !transfer => {
                    a.id == id && result == 0
                }
                _ => false,
            })
            .map(|i| i as u64)
    }
}

fn error(status: StatusCode, reason: &str) -> Response {
    (
        status,
        Json(json!({"error": {"reason": reason, "message": reason}, "leader": 1})),
    )
        .into_response()
}

fn number<T: std::str::FromStr>(q: &HashMap<String, String>, key: &str) -> Option<T> {
    q.get(key).and_then(|v| v.parse().ok())
}

async fn status(State(s): State<Shared>) -> Response {
    let f = s.lock().unwrap();
    Json(
        json!({"node_id": 1, "cluster_id": CLUSTER, "role": "leader", "term": 1, "leader": 1,
        "members": [{"id": 1, "api_addr": f.addr, "peer_addr": f.addr, "voter": true}]}),
    )
    .into_response()
}

async fn latest(State(s): State<Shared>) -> Response {
    Json(s.lock().unwrap().checkpoint()).into_response()
}

async fn list(State(s): State<Shared>) -> Response {
    Json(json!({"checkpoints": [s.lock().unwrap().checkpoint()]})).into_response()
}

async fn keys(State(s): State<Shared>) -> Response {
    let f = s.lock().unwrap();
    Json(json!({"cluster_id": CLUSTER, "keys": {KID: f.signer.public_key_hex()}})).into_response()
}

async fn inclusion(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let f = s.lock().unwrap();
    let hashes = f.hashes();
    let size: u64 = number(&q, "tree_size").unwrap_or(f.leaves.len() as u64);
    if size > f.leaves.len() as u64 {
        return error(StatusCode::BAD_REQUEST, "beyond_tree");
    }
    let index = if let Some(i) = number::<u64>(&q, "leaf") {
        Some(i)
    } else if let Some(id) = number::<u128>(&q, "transfer_id") {
        f.find(true, id)
    } else if let Some(id) = number::<u128>(&q, "account_id") {
        f.find(false, id)
    } else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let Some(mut index) = index.filter(|i| *i < size) else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    let mut proof_size = size;
    match f.tamper {
        Tamper::OtherLeaf => index = (index + 1) % size,
        Tamper::OtherLeafIndex => index = (index + 1) % size,
        Tamper::OtherTreeSize => proof_size = size - 1,
        _ => {}
    }
    let mut proof = inclusion_proof(&hashes[..], index, proof_size).expect("proof");
    let mut data = f.leaves[index as usize].clone();
    let mut root = root_at(&hashes[..], proof_size).expect("root");
    match f.tamper {
        Tamper::LeafData => data[49] ^= 1,
        Tamper::ReorderPath => proof.path.swap(0, 1),
        Tamper::TruncatePath => {
            proof.path.pop();
        }
        Tamper::ExtraPath => proof.path.push(hashes[0]),
        Tamper::AnswerRoot => root = hashes[0],
        _ => {}
    }
    Json(json!({"proof": proof, "leaf_data": ledger::wire::hex::encode(&data), "root": root.to_string()}))
        .into_response()
}

async fn consistency(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let f = s.lock().unwrap();
    let (Some(from), Some(to)) = (number::<u64>(&q, "from"), number::<u64>(&q, "to")) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    match consistency_proof(&f.hashes()[..], from, to) {
        Ok(p) => Json(p).into_response(),
        Err(_) => error(StatusCode::BAD_REQUEST, "beyond_tree"),
    }
}

async fn export(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let f = s.lock().unwrap();
    let (Some(from), Some(to)) = (number::<u64>(&q, "from"), number::<u64>(&q, "to")) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    match bundle_of(&f.leaves, f.checkpoint(), from, to) {
        Ok(b) => Json(b).into_response(),
        Err(_) => error(StatusCode::BAD_REQUEST, "invalid_range"),
    }
}

fn bundle_of(
    leaves: &[Vec<u8>],
    cp: SignedCheckpoint,
    from: u64,
    to: u64,
) -> Result<ExportBundle, ProofError> {
    let hashes: Vec<Hash> = leaves.iter().map(|d| leaf_hash(d)).collect();
    build_bundle(
        &hashes[..],
        |i| Ok(leaves[i as usize].clone()),
        cp,
        from,
        to,
    )
}

/// An honest ledger: 4 accounts, transfers 100..=105, a rejected transfer 106, then 107..=112.
fn honest_leaves() -> Vec<Vec<u8>> {
    let mut state = MemoryState::new();
    let five = |id: u128, debit: u128| transfer(id, debit, 1 + (id % 4), 5);
    let batches = [
        Operation::CreateAccounts(accounts(1..=4)),
        Operation::CreateTransfers(
            (100..=105)
                .map(|id| five(id, 1 + ((id + 1) % 4)))
                .chain([five(106, 99)])
                .collect(),
        ),
        Operation::CreateTransfers((107..=112).map(|id| five(id, 1 + ((id + 1) % 4))).collect()),
    ];
    for (i, op) in batches.into_iter().enumerate() {
        let batch = Batch {
            timestamp: 10 * (i as u64 + 1),
            operations: vec![op],
        };
        let (_, changes) = apply(&state, &batch).expect("apply");
        state.commit(changes);
    }
    let n = state.leaves().len() as u64;
    assert_eq!(n, 17);
    (0..n)
        .map(|i| state.leaf_data(i).expect("leaf").as_bytes().to_vec())
        .collect()
}

/// The honest tree with leaf 6 (transfer 102) rewritten: same size, other history.
fn forked_leaves() -> Vec<Vec<u8>> {
    let mut leaves = honest_leaves();
    let Ok(LeafEvent::Transfer {
        mut transfer,
        result,
    }) = decode_leaf(&leaves[6])
    else {
        panic!("leaf 6 is a transfer");
    };
    transfer.amount += 1_000;
    leaves[6] = transfer_leaf_data(&transfer, result).as_bytes().to_vec();
    leaves
}

fn honest_signer() -> CheckpointSigner {
    CheckpointSigner::new(KID, &SEED).expect("signer")
}

fn trusted() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.insert(KID.into(), &honest_signer().public_key_hex())
        .expect("key");
    keys
}

async fn serve(size: u64) -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let shared = Arc::new(Mutex::new(Fake {
        addr,
        leaves: honest_leaves(),
        size,
        tamper: Tamper::None,
        signer: honest_signer(),
        intruder: CheckpointSigner::new("intruder", &[0x13; 32]).expect("signer"),
    }));
    let router = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/checkpoints/latest", get(latest))
        .route("/v1/checkpoints", get(list))
        .route("/v1/checkpoints/keys", get(keys))
        .route("/v1/proofs/inclusion", get(inclusion))
        .route("/v1/proofs/consistency", get(consistency))
        .route("/v1/export", get(export))
        .route("/v1/admin/checkpoint", post(latest))
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    shared
}

fn config_for(fake: &Shared) -> ClientConfig {
    let addr = fake.lock().unwrap().addr.clone();
    let mut config =
        ClientConfig::new([addr]).with_trusted_keys(trusted(), Some(CLUSTER.to_string()));
    config.retry_total = Duration::from_secs(3);
    config.request_timeout = Duration::from_secs(3);
    config
}

fn client_for(fake: &Shared) -> Client {
    Client::new(config_for(fake)).expect("client")
}

/// A client of `fake` that remembers its checkpoints in the state file `state`.
fn client_with_state(fake: &Shared, state: &std::path::Path) -> Client {
    let mut config = config_for(fake);
    config.checkpoint_state = Some(state.to_path_buf());
    Client::new(config).expect("client")
}

fn set(fake: &Shared, tamper: Tamper) {
    fake.lock().unwrap().tamper = tamper;
}

fn verification(r: Result<impl std::fmt::Debug, Error>) -> VerifyError {
    match r {
        Err(Error::Verification(e)) => e,
        other => panic!("expected a verification error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_honest_server_verifies() {
    let fake = serve(12).await;
    let client = client_for(&fake);
    let t = client.verified_transfer(101).await.expect("transfer");
    assert_eq!((t.value.id, t.value.amount), (101, 5));
    assert_eq!(t.leaf_index, 5);
    assert_eq!(t.checkpoint.tree_size, 12);
    let a = client.verified_account(3).await.expect("account");
    assert_eq!((a.value.id, a.leaf_index), (3, 2));
    let leaf = client.verified_leaf(10).await.expect("rejected leaf");
    assert!(matches!(
        leaf.value,
        LeafEvent::Transfer { transfer, result } if transfer.id == 106 && result != 0
    ));
    assert_eq!(
        client.accepted_checkpoint().await.map(|c| c.tree_size),
        Some(12)
    );
    // Unknown ids are the server's 404, beyond-checkpoint leaves are refused before asking.
    assert!(matches!(
        client.verified_transfer(999).await,
        Err(Error::Rejected { status: 404, .. })
    ));
    assert_eq!(
        verification(client.verified_leaf(12).await),
        VerifyError::BeyondCheckpoint {
            index: 12,
            tree_size: 12
        }
    );
    // The tree grows honestly: accepted through a consistency proof.
    fake.lock().unwrap().size = 17;
    let t = client.verified_transfer(112).await.expect("grown");
    assert_eq!((t.leaf_index, t.checkpoint.tree_size), (16, 17));
    // Without trusted keys the verifying calls refuse to run.
    let addr = fake.lock().unwrap().addr.clone();
    let plain = Client::new(ClientConfig::new([addr])).expect("client");
    assert!(matches!(
        plain.verified_transfer(101).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn lying_proofs_are_refused() {
    let fake = serve(12).await;
    let client = client_for(&fake);
    type Check = fn(&VerifyError) -> bool;
    let cases: [(Tamper, &str, Check); 9] = [
        (Tamper::LeafData, "tampered leaf data", |e| {
            matches!(e, VerifyError::InclusionFailed(ProofError::RootMismatch))
        }),
        (Tamper::OtherLeaf, "leaf of another id", |e| {
            matches!(e, VerifyError::LeafMismatch { expected, found }
                if expected == "transfer 101" && found == "transfer 102")
        }),
        (Tamper::ReorderPath, "reordered path", |e| {
            matches!(e, VerifyError::InclusionFailed(ProofError::RootMismatch))
        }),
        (Tamper::TruncatePath, "truncated path", |e| {
            matches!(
                e,
                VerifyError::InclusionFailed(ProofError::WrongPathLength { .. })
            )
        }),
        (Tamper::ExtraPath, "extra path element", |e| {
            matches!(
                e,
                VerifyError::InclusionFailed(ProofError::WrongPathLength { .. })
            )
        }),
        (Tamper::OtherTreeSize, "proof for another tree size", |e| {
            *e == VerifyError::WrongProofShape {
                field: "tree_size",
                expected: 12,
                found: 11,
            }
        }),
        (
            Tamper::OtherLeafIndex,
            "proof for another leaf (by id)",
            |e| matches!(e, VerifyError::LeafMismatch { .. }),
        ),
        (
            Tamper::AnswerRoot,
            "answer root is not the checkpoint's",
            |e| matches!(e, VerifyError::RootMismatch { .. }),
        ),
        (
            Tamper::ServeRejected,
            "a rejected event as the transfer",
            |e| matches!(e, VerifyError::NotApplied { result } if *result != 0),
        ),
    ];
    for (tamper, name, check) in cases {
        set(&fake, tamper);
        let id = if tamper == Tamper::ServeRejected {
            106
        } else {
            101
        };
        let e = verification(client.verified_transfer(id).await);
        assert!(check(&e), "{name}: unexpected {e:?}");
    }
    // Asked by index, a proof for another index is the wrong shape.
    set(&fake, Tamper::OtherLeafIndex);
    assert_eq!(
        verification(client.verified_leaf(4).await),
        VerifyError::WrongProofShape {
            field: "leaf_index",
            expected: 4,
            found: 5
        }
    );
    set(&fake, Tamper::ReorderPath);
    assert!(matches!(
        verification(client.verified_account(2).await),
        VerifyError::InclusionFailed(_)
    ));
    set(&fake, Tamper::None);
    client.verified_transfer(101).await.expect("honest again");
}

#[tokio::test]
async fn lying_checkpoints_are_refused() {
    let fake = serve(12).await;
    let client = client_for(&fake);
    set(&fake, Tamper::UnknownKid);
    assert_eq!(
        verification(client.latest_verified_checkpoint().await),
        VerifyError::UnknownKid("intruder".into())
    );
    set(&fake, Tamper::BadSignature);
    assert_eq!(
        verification(client.verified_transfer(101).await),
        VerifyError::BadSignature
    );
    set(&fake, Tamper::OtherCluster);
    assert_eq!(
        verification(client.verified_leaf(0).await),
        VerifyError::WrongCluster {
            expected: CLUSTER.into(),
            offered: "another-cluster".into()
        }
    );
    assert_eq!(client.accepted_checkpoint().await, None);
}

#[tokio::test]
async fn forks_and_replays_are_refused() {
    let fake = serve(8).await;
    let client = client_for(&fake);
    let first = client.latest_verified_checkpoint().await.expect("first");
    assert_eq!(first.tree_size, 8);

    // The same size with another history.
    fake.lock().unwrap().leaves = forked_leaves();
    let e = verification(client.verified_transfer(100).await);
    assert!(
        matches!(
            e,
            VerifyError::Fork {
                remembered: 8,
                offered: 8,
                proof: None,
                ..
            }
        ),
        "{e:?}"
    );
    // A larger tree that does not extend the accepted one: its consistency proof fails.
    fake.lock().unwrap().size = 12;
    let e = verification(client.latest_verified_checkpoint().await);
    assert!(
        matches!(
            e,
            VerifyError::Fork {
                remembered: 8,
                offered: 12,
                // 8 is a power of two: the old root starts the walk, the new one differs.
                proof: Some(ProofError::NewRootMismatch),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(client.accepted_checkpoint().await, Some(first));

    // The honest history grows; then an older checkpoint is replayed.
    {
        let mut f = fake.lock().unwrap();
        f.leaves = honest_leaves();
        f.size = 12;
    }
    assert_eq!(
        client
            .latest_verified_checkpoint()
            .await
            .expect("extends")
            .tree_size,
        12
    );
    fake.lock().unwrap().size = 8;
    assert_eq!(
        verification(client.verified_transfer(100).await),
        VerifyError::StaleCheckpoint {
            remembered: 12,
            offered: 8
        }
    );
}

/// Run `ronctl` (off the runtime's threads) and return exit code, stdout, stderr.
async fn ronctl(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_ronctl"))
            .args(&args)
            .output()
            .expect("run ronctl");
        outcome(out)
    })
    .await
    .expect("join")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ronctl_exports_collects_keys_and_verifies() {
    let fake = serve(12).await;
    let addr = fake.lock().unwrap().addr.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let online = |rest: &[&str]| {
        let mut a = args(&["--seeds", &addr, "--retry-for", "3"]);
        a.extend(args(rest));
        a
    };

    let (code, out, err) = ronctl(online(&["keys", "--out", &path("keys.json")])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote 1 keys (node-1)"), "{out}");
    let (code, out, err) = ronctl(online(&[
        "export",
        "--from",
        "1",
        "--to",
        "9",
        "--pretty",
        &path("bundle.json"),
    ]))
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ronctl(args(&[
        "verify",
        &path("bundle.json"),
        "--keys",
        &path("keys.json"),
    ]))
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("OK: 8 events [1, 9) verified against checkpoint size 12 root "),
        "{out}"
    );
    assert!(out.contains("signed by node-1"), "{out}");
    let (code, out, _) = ronctl(args(&[
        "--json",
        "verify",
        &path("bundle.json"),
        "--keys",
        &path("keys.json"),
    ]))
    .await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["report"]["rejected"], "0");

    // The keys file's cluster id is enforced; --cluster-id overrides it.
    let (code, out, _) = ronctl(args(&[
        "verify",
        &path("bundle.json"),
        "--keys",
        &path("keys.json"),
        "--cluster-id",
        "prod",
    ]))
    .await;
    assert_eq!(code, 1);
    assert!(
        out.starts_with("FAILED: checkpoint is for cluster"),
        "{out}"
    );

    // `checkpoint --keys --state`: verified, remembered, and a later fork refused.
    let verified = |state: &str| {
        online(&[
            "checkpoint",
            "--keys",
            &path("keys.json"),
            "--state",
            &path(state),
        ])
    };
    let (code, out, err) = ronctl(verified("state.json")).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read_to_string(path("state.json"))
        .unwrap()
        .contains(CLUSTER));
    fake.lock().unwrap().leaves = forked_leaves();
    let (code, out, err) = ronctl(verified("state.json")).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("fork"), "{err}");
    let (code, out, err) = ronctl(verified("fresh-state.json")).await;
    assert_eq!(
        code, 0,
        "without a remembered checkpoint the fork is not seen: {out}{err}"
    );
    fake.lock().unwrap().leaves = honest_leaves();

    let (code, out, err) = ronctl(online(&["--json", "checkpoint"])).await;
    assert_eq!(code, 0, "{out}{err}");
    let cp: SignedCheckpoint = serde_json::from_str(&out).expect("checkpoint json");
    assert_eq!(cp.tree_size, 12);
    let (code, out, err) = ronctl(online(&["checkpoint", "--now"])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("audit-test"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ronctl_verify_names_the_first_failing_item() {
    let leaves = honest_leaves();
    let signer = honest_signer();
    let hashes: Vec<Hash> = leaves.iter().map(|d| leaf_hash(d)).collect();
    let cp = signer
        .sign(CLUSTER, 17, root_at(&hashes[..], 17).expect("root"), 7)
        .expect("sign");
    let honest = bundle_of(&leaves, cp, 2, 15).expect("bundle");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        format!(r#"{{"{KID}": "{}"}}"#, signer.public_key_hex()),
    )
    .expect("keys");
    let intruder_keys = dir.path().join("intruder.json");
    std::fs::write(
        &intruder_keys,
        format!(
            r#"{{"{KID}": "{}"}}"#,
            CheckpointSigner::new(KID, &[1; 32])
                .expect("signer")
                .public_key_hex()
        ),
    )
    .expect("keys");

    let mut tampered_data = honest.clone();
    tampered_data.events[3].data[60] ^= 0x80;
    let mut reordered = honest.clone();
    reordered.events[5].proof.swap(0, 1);
    let mut truncated = honest.clone();
    truncated.events[0].proof.pop();
    let mut gap = honest.clone();
    gap.events.remove(4);
    gap.events.push(gap.events[3].clone());
    let mut bad_signature = honest.clone();
    bad_signature.checkpoint.signature[0] ^= 1;
    let cases: [(&str, &ExportBundle, &std::path::Path, i32, &str); 7] = [
        ("honest", &honest, &keys, 0, "OK: 13 events [2, 15)"),
        (
            "tampered data",
            &tampered_data,
            &keys,
            1,
            "FAILED: event 5: proof: ",
        ),
        (
            "reordered proof",
            &reordered,
            &keys,
            1,
            "FAILED: event 7: proof: ",
        ),
        (
            "truncated proof",
            &truncated,
            &keys,
            1,
            "FAILED: event 2: proof: proof path has",
        ),
        ("gap", &gap, &keys, 1, "FAILED: event 6: carries index 7"),
        (
            "bad signature",
            &bad_signature,
            &keys,
            1,
            "FAILED: checkpoint: bad checkpoint signature",
        ),
        (
            "another key",
            &honest,
            &intruder_keys,
            1,
            "FAILED: checkpoint: bad checkpoint signature",
        ),
    ];
    for (name, bundle, keys, expected_code, expected_out) in cases {
        let file = dir.path().join(format!("{}.json", name.replace(' ', "-")));
        std::fs::write(&file, serde_json::to_vec(bundle).expect("json")).expect("write");
        let (code, out, err) = ronctl(args(&[
            "verify",
            &file.display().to_string(),
            "--keys",
            &keys.display().to_string(),
        ]))
        .await;
        assert_eq!(code, expected_code, "{name}: {out}{err}");
        assert!(out.starts_with(expected_out), "{name}: {out}");
    }
    // Input that is not a bundle, or keys that are not keys: usage errors (2).
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"format\": 1}").expect("write");
    let (code, _, err) = ronctl(args(&[
        "verify",
        &junk.display().to_string(),
        "--keys",
        &keys.display().to_string(),
    ]))
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an export bundle"), "{err}");
    let (code, _, err) = ronctl(args(&[
        "verify",
        &junk.display().to_string(),
        "--keys",
        &junk.display().to_string(),
    ]))
    .await;
    assert_eq!(code, 2, "{err}");
}

/// With a state file the client remembers the checkpoint it accepted across restarts: a new
/// client against a server that rewrote history while it was down refuses it (where a client
/// without the file would trust it on first sight); against an honest server that grew it
/// continues; an older checkpoint is a replay.
#[tokio::test]
async fn a_restarted_client_remembers_what_it_verified() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("checkpoints.json");
    let fake = serve(8).await;
    let restarted = || client_with_state(&fake, &state);
    let first = restarted()
        .latest_verified_checkpoint()
        .await
        .expect("first");
    assert_eq!(first.tree_size, 8);
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // While the client is down the server rewrites history (same size, other leaves).
    fake.lock().unwrap().leaves = forked_leaves();
    let e = verification(restarted().latest_verified_checkpoint().await);
    assert!(
        matches!(
            e,
            VerifyError::Fork {
                remembered: 8,
                offered: 8,
                ..
            }
        ),
        "{e:?}"
    );
    // ... and grows it: the consistency proof from the remembered checkpoint fails.
    fake.lock().unwrap().size = 12;
    let e = verification(restarted().verified_transfer(100).await);
    assert!(
        matches!(
            e,
            VerifyError::Fork {
                remembered: 8,
                offered: 12,
                proof: Some(_),
                ..
            }
        ),
        "{e:?}"
    );
    // Without the state file the forked server would have been believed.
    assert!(client_for(&fake).latest_verified_checkpoint().await.is_ok());

    // The honest server grew: a restarted client proves 8 -> 12 and remembers 12.
    fake.lock().unwrap().leaves = honest_leaves();
    let grown = restarted()
        .latest_verified_checkpoint()
        .await
        .expect("the honest growth is accepted");
    assert_eq!(grown.tree_size, 12);
    restarted()
        .verified_transfer(100)
        .await
        .expect("a verified read after a restart");
    // An older checkpoint offered to a restarted client is a replay.
    fake.lock().unwrap().size = 8;
    assert_eq!(
        verification(restarted().latest_verified_checkpoint().await),
        VerifyError::StaleCheckpoint {
            remembered: 12,
            offered: 8
        }
    );
    // A state file others can read is refused, not ignored.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    match restarted().latest_verified_checkpoint().await {
        Err(Error::Invalid(m)) => assert!(m.contains("chmod 600"), "{m}"),
        other => panic!("a loose state file was used: {other:?}"),
    }
}

/// Without a configured cluster, a server that renames the cluster while the client is down
/// does not get a rewritten history trusted as a first use: the state file pins the cluster.
#[tokio::test]
async fn a_state_file_pins_the_cluster_when_none_is_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("checkpoints.json");
    let fake = serve(8).await;
    let restarted = |state: &std::path::Path| {
        let addr = fake.lock().unwrap().addr.clone();
        let mut config = ClientConfig::new([addr]).with_trusted_keys(trusted(), None);
        config.retry_total = Duration::from_secs(3);
        config.request_timeout = Duration::from_secs(3);
        config.checkpoint_state = Some(state.to_path_buf());
        Client::new(config).expect("client")
    };
    let first = restarted(&state)
        .latest_verified_checkpoint()
        .await
        .expect("first use");
    assert_eq!((first.tree_size, first.cluster_id.as_str()), (8, CLUSTER));

    // While the client is down the server rewrites history under another cluster name.
    fake.lock().unwrap().leaves = forked_leaves();
    set(&fake, Tamper::OtherCluster);
    assert_eq!(
        verification(restarted(&state).verified_transfer(102).await),
        VerifyError::WrongCluster {
            expected: CLUSTER.into(),
            offered: "another-cluster".into()
        }
    );
    let remembered = ron_ledger_client::trust_store::CheckpointStore::new(&state);
    assert_eq!(
        remembered.clusters().expect("read"),
        vec![CLUSTER.to_string()]
    );
    // A client with a state file that remembers nothing still trusts on first use.
    let fresh = dir.path().join("fresh.json");
    let other = restarted(&fresh)
        .latest_verified_checkpoint()
        .await
        .expect("first use of an empty state file");
    assert_eq!(other.cluster_id, "another-cluster");
}

/// Two clients sharing one state file: each starts every advance from the larger of what it
/// remembers and what the file holds, the file keeps the largest checkpoint either accepted,
/// and it refuses another root at a size it remembers.
#[tokio::test]
async fn a_shared_state_file_never_goes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("checkpoints.json");
    let fake = serve(8).await;
    let with_state = || client_with_state(&fake, &state);
    let a = with_state();
    assert_eq!(
        a.latest_verified_checkpoint().await.expect("a").tree_size,
        8
    );
    fake.lock().unwrap().size = 12;
    let b = with_state();
    assert_eq!(
        b.latest_verified_checkpoint().await.expect("b").tree_size,
        12
    );
    // Client A, still at 8 in memory, is offered 10 (a node that lost what B saw): it starts
    // from the file's 12, which B accepted meanwhile, so 10 is a replay, and the file keeps 12.
    fake.lock().unwrap().size = 10;
    assert_eq!(
        verification(a.latest_verified_checkpoint().await),
        VerifyError::StaleCheckpoint {
            remembered: 12,
            offered: 10
        }
    );
    let store = ron_ledger_client::trust_store::CheckpointStore::new(&state);
    let kept = store.load(CLUSTER).expect("read").expect("remembered");
    assert_eq!(kept.tree_size, 12);
    fake.lock().unwrap().size = 12;
    assert_eq!(
        a.latest_verified_checkpoint().await.expect("a").tree_size,
        12
    );
    // Another root at the remembered size is a fork, not an update.
    let mut forked = kept.clone();
    forked.root = leaf_hash(b"another history");
    match store.save(&forked) {
        Err(Error::Invalid(m)) => assert!(m.contains("forked"), "{m}"),
        other => panic!("a forked root replaced the remembered one: {other:?}"),
    }
    assert_eq!(store.load(CLUSTER).expect("read").expect("kept"), kept);
}

/// A node that answers without end is cut off at the client's answer limit, not read until the
/// request times out (or memory runs out): the error names the limit.
#[tokio::test]
async fn an_endless_answer_is_cut_off_at_the_limit() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let endless = || async {
        let chunk = axum::body::Bytes::from(vec![b' '; 1 << 20]);
        let body = futures_util::stream::repeat(Ok::<_, std::convert::Infallible>(chunk));
        Response::new(axum::body::Body::from_stream(body))
    };
    let app = Router::new().route("/v1/checkpoints/latest", get(endless));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = ClientConfig::new([addr]).with_trusted_keys(trusted(), Some(CLUSTER.into()));
    config.retry_total = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(60);
    let e = Client::new(config)
        .expect("client")
        .latest_verified_checkpoint()
        .await
        .expect_err("an endless answer");
    assert!(e.to_string().contains("limit of"), "{e}");
}
