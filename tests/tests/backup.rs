//! Backup and restore on real processes: `ronctl backup` of a node taking writes, then
//! (1) disaster recovery — the old cluster gone, a new cluster restored from the backup onto one
//! node with a new membership, grown to three with the membership commands: same ledger, same
//! root, every transfer acknowledged before the backup present; (2) seeding a new member from a
//! backup: it joins as a learner and catches up from the leader's log without a snapshot
//! transfer. A damaged backup (a flipped byte, a missing file, an extra file, a manifest that
//! lies) is refused with a message naming what is wrong, and nothing is written.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::cluster::{binary, ronctl_binary, Cluster, SERIAL};
use test_support::events::transfer_body;
use test_support::process::outcome;
use test_support::wait::{poll, wait_for};

/// `ronctl backup` of node `id` into `out`: (exit code, stdout, stderr).
fn ronctl_backup(c: &Cluster, id: u64, out: &Path) -> (i32, String, String) {
    let o = Command::new(ronctl_binary())
        .envs(c.ronctl_env())
        .args(["--json", "backup", "--node", &c.node(id).api, "--out"])
        .arg(out)
        .output()
        .expect("run ronctl");
    outcome(o)
}

/// `ron-ledger restore` with node `id`'s configuration into `data_dir`.
fn restore(
    c: &Cluster,
    id: u64,
    backup: &Path,
    data_dir: &Path,
    mode: &str,
) -> (i32, String, String) {
    let o = Command::new(binary())
        .args(["restore", "--config"])
        .arg(&c.node(id).config)
        .arg("--backup")
        .arg(backup)
        .arg("--data-dir")
        .arg(data_dir)
        .arg(mode)
        .output()
        .expect("run ron-ledger restore");
    outcome(o)
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Writes transfers `1..` (accounts 1..=10) to `nodes` until stopped, recording the ids
/// acknowledged.
fn spawn_writer(
    c: &Cluster,
    nodes: &[u64],
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u128>>>,
) -> tokio::task::JoinHandle<()> {
    let http = c.http.clone();
    let urls: Vec<String> = nodes.iter().map(|id| c.url(*id, "/v1/transfers")).collect();
    tokio::spawn(async move {
        let mut id = 0u128;
        let mut attempt = 0usize;
        while !stop.load(Ordering::Relaxed) {
            id += 1;
            let body = transfer_body(id, 1 + id % 5, 6 + id % 5, 1);
            loop {
                attempt += 1;
                let url = &urls[attempt % urls.len()];
                let r = http.post(url).json(&body).send().await;
                if let Ok(r) = r {
                    if r.status().as_u16() == 200 {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        if v["results"][0]["result"] == "ok" {
                            acked.lock().unwrap().push(id);
                            break;
                        }
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
}

async fn status_field(c: &Cluster, id: u64, field: &str) -> Option<String> {
    let s = c.status(id).await?;
    match &s[field] {
        Value::String(t) => Some(t.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_writes_restores_a_new_cluster_and_damage_is_refused() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(6, "");
    c.start_three_with_accounts(10).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = spawn_writer(&c, &[1, 2, 3], stop.clone(), acked.clone());
    wait_for(
        "50 transfers acknowledged",
        Duration::from_secs(60),
        || async { acked.lock().unwrap().len() >= 50 },
    )
    .await;

    // The backup is taken while the writer keeps writing.
    let before_backup: Vec<u128> = acked.lock().unwrap().clone();
    let backup = c.dir.path().join("backup-1");
    let started = std::time::Instant::now();
    let (code, out, err) = ronctl_backup(&c, 1, &backup);
    println!("backup of node 1 took {:?}: {out}", started.elapsed());
    assert_eq!(code, 0, "ronctl backup: {out}{err}");
    let during = acked.lock().unwrap().len();
    wait_for(
        "writes continue after the backup",
        Duration::from_secs(30),
        || async { acked.lock().unwrap().len() > during },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let m = manifest(&backup);
    assert_eq!(m["cluster_id"], "test");
    assert_eq!(m["node_id"], 1);
    let tree_size = m["tree_size"].as_u64().unwrap();
    assert!(
        tree_size >= 10 + before_backup.len() as u64,
        "the backup holds every event acknowledged before it: {m}"
    );
    assert_eq!(m["files"][0]["name"], "state.rlsnap");
    let mut names: Vec<String> = std::fs::read_dir(&backup)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "state.rlsnap"]);
    // A backup never goes into a directory that exists, and one refused leaves it as it was.
    let (code, _, err) = ronctl_backup(&c, 1, &backup);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists"), "{err}");
    assert_eq!(manifest(&backup), m);
    // Without an admin capability the node refuses (the admin gate), and nothing is written.
    let refused = c.dir.path().join("backup-unauthorized");
    let o = Command::new(ronctl_binary())
        .envs(
            c.ronctl_env()
                .into_iter()
                .filter(|(k, _)| *k != "RONCTL_TOKEN_FILE"),
        )
        .args(["backup", "--node", &c.node(2).api, "--out"])
        .arg(&refused)
        .output()
        .expect("run ronctl");
    let (code, out, err) = outcome(o);
    assert_eq!(code, 3, "{out}{err}");
    assert!(!refused.exists());

    // Ctrl-C during a backup keeps nothing: no backup, no partial directory, exit 130. The
    // "node" here accepts connections and never answers, so the signal lands mid-backup.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let interrupted = c.dir.path().join("backup-interrupted");
    let partial = c.dir.path().join(".backup-interrupted.partial");
    let child = Command::new(ronctl_binary())
        .envs(c.ronctl_env())
        .args(["backup", "--node", &silent_addr, "--out"])
        .arg(&interrupted)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ronctl");
    wait_for("the backup has begun", Duration::from_secs(30), || {
        let partial = partial.clone();
        async move { partial.exists() }
    })
    .await;
    let killed = Command::new("kill")
        .args(["-INT".to_string(), child.id().to_string()])
        .status()
        .expect("kill(1)");
    assert!(killed.success());
    let (code, _, err) = outcome(child.wait_with_output().expect("ronctl ends"));
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!interrupted.exists(), "an interrupted backup is kept");
    assert!(!partial.exists(), "the partial directory is left behind");
    drop(silent);

    // Damaged backups are refused, naming what is wrong, and write nothing.
    let damaged = |name: &str| c.dir.path().join(format!("damaged-{name}"));
    let stream_len = m["files"][0]["bytes"].as_u64().unwrap() as usize;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "flipped-byte",
            Box::new(move |d: &Path| {
                let p = d.join("state.rlsnap");
                let mut b = std::fs::read(&p).unwrap();
                b[stream_len / 2] ^= 0x40;
                std::fs::write(p, b).unwrap();
            }),
            "backup file state.rlsnap: has checksum",
        ),
        (
            "missing-file",
            Box::new(|d: &Path| std::fs::remove_file(d.join("state.rlsnap")).unwrap()),
            "backup file state.rlsnap: is missing",
        ),
        (
            "extra-file",
            Box::new(|d: &Path| std::fs::write(d.join("notes.txt"), "x").unwrap()),
            "backup file notes.txt: is not listed in the manifest",
        ),
        (
            "truncated",
            Box::new(|d: &Path| {
                let p = d.join("state.rlsnap");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(p, &b[..b.len() - 10]).unwrap();
            }),
            "bytes, the manifest says",
        ),
        (
            "lying-root",
            Box::new(|d: &Path| edit_manifest(d, |m| m["root"] = json!("00".repeat(32)))),
            "the root in the stream is",
        ),
        (
            "lying-tree-size",
            Box::new(|d: &Path| {
                edit_manifest(d, |m| {
                    m["tree_size"] = json!(m["tree_size"].as_u64().unwrap() + 1)
                })
            }),
            "the tree size is",
        ),
        (
            "lying-digest",
            Box::new(|d: &Path| edit_manifest(d, |m| m["state_digest"] = json!("ab".repeat(32)))),
            "the state digest recomputed from the stored state is",
        ),
        (
            "lying-index",
            Box::new(|d: &Path| {
                edit_manifest(d, |m| {
                    let i = m["last_log_id"]["index"].as_u64().unwrap();
                    m["last_log_id"]["index"] = json!(i + 7);
                })
            }),
            "the stream's last log id is",
        ),
        (
            "other-cluster",
            Box::new(|d: &Path| edit_manifest(d, |m| m["cluster_id"] = json!("prod"))),
            "the backup is of cluster \"prod\"",
        ),
        (
            "not-a-manifest",
            Box::new(|d: &Path| std::fs::write(d.join("manifest.json"), "{\"files\": 3}").unwrap()),
            "backup manifest: not a backup manifest",
        ),
    ];
    for (name, damage, expected) in &cases {
        let dir = damaged(name);
        copy_dir(&backup, &dir);
        damage(&dir);
        let target = c.dir.path().join(format!("target-{name}"));
        let (code, out, err) = restore(&c, 4, &dir, &target, "--new-cluster");
        assert_eq!(code, 1, "{name}: restore must refuse: {out}{err}");
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in: {err}"
        );
        assert!(!target.exists(), "{name}: nothing written: {target:?}");
        let staging = c.dir.path().join(format!(".target-{name}.restoring"));
        assert!(!staging.exists(), "{name}: staging removed");
    }
    // A damaged stream whose manifest was rewritten to match it: the file checks pass, the
    // stream's own frame checksums do not.
    let dir = damaged("consistent-lie");
    copy_dir(&backup, &dir);
    let p = dir.join("state.rlsnap");
    let mut b = std::fs::read(&p).unwrap();
    // Inside a frame's body, so that the frame's checksum is what fails (a flipped length
    // field reads as a truncated or oversized frame instead, also refused).
    let i = payload_byte_near_middle(&b);
    b[i] ^= 0x40;
    std::fs::write(&p, &b).unwrap();
    let rehashed = blake3::hash(&b).to_hex().to_string();
    edit_manifest(&dir, |m| m["files"][0]["blake3"] = json!(rehashed));
    let target = c.dir.path().join("target-consistent-lie");
    let (code, out, err) = restore(&c, 4, &dir, &target, "--new-cluster");
    assert_eq!(code, 1, "consistent lie: {out}{err}");
    assert!(
        err.contains("column family snapshot") && err.contains("checksum mismatch"),
        "the stream's own checks name it: {err}"
    );
    assert!(!target.exists());
    // A data directory that is not empty is never written into.
    let used = c.dir.path().join("node-1");
    let (code, _, err) = restore(&c, 4, &backup, &used, "--new-cluster");
    assert_eq!(code, 1);
    assert!(err.contains("is not empty"), "{err}");

    // Disaster: the whole cluster is gone. A new cluster comes back from the backup.
    for id in 1..=3 {
        c.kill(id);
    }
    let data4 = c.dir.path().join("node-4");
    let (code, out, err) = restore(&c, 4, &backup, &data4, "--new-cluster");
    assert_eq!(code, 0, "restore: {out}{err}");
    assert!(out.contains("checked"), "{out}");
    c.start(4);
    let leader = c.leader(&[4]).await;
    assert_eq!(leader, 4);
    assert_eq!(
        status_field(&c, 4, "tree_size").await.unwrap(),
        tree_size.to_string()
    );
    assert_eq!(
        status_field(&c, 4, "root").await.unwrap(),
        m["root"].as_str().unwrap()
    );
    for id in &before_backup {
        let (code, v) = c.get(4, &format!("/v1/transfers/{id}")).await.unwrap();
        assert_eq!(
            code, 200,
            "transfer {id} acknowledged before the backup: {v}"
        );
    }
    // Grow it back to three with the membership commands.
    for id in [5, 6] {
        c.start(id);
        let body = json!({"node_id": id, "api_addr": c.node(id).api, "peer_addr": c.node(id).peer});
        let (code, v) = c.post(4, "/v1/admin/learners", body).await.unwrap();
        assert_eq!(code, 200, "{v}");
    }
    let (code, v) = c
        .post(4, "/v1/admin/membership", json!({"voters": [4, 5, 6]}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    c.write_until_acked(
        "/v1/transfers",
        &transfer_body(1_000_000, 1, 6, 1),
        &[4, 5, 6],
        Duration::from_secs(30),
    )
    .await;
    let (_, root) = c.converged(&[4, 5, 6]).await;
    assert_ne!(
        root,
        m["root"].as_str().unwrap(),
        "the new cluster takes writes"
    );
    let b4 = c.balances(4, 10).await;
    for id in [5, 6] {
        assert_eq!(
            c.balances(id, 10).await,
            b4,
            "node {id} holds the same ledger"
        );
    }
}

/// Something done to a copy of a backup.
type Damage = Box<dyn Fn(&Path)>;

/// Rewrite a backup's manifest with `f`.
fn edit_manifest(dir: &Path, f: impl FnOnce(&mut Value)) {
    let mut m = manifest(dir);
    f(&mut m);
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_seeded_from_a_backup_catches_up_without_a_snapshot_transfer() {
    let _serial = SERIAL.lock().await;
    // Snapshots every 10 entries, 30 entries kept behind each: the leader's log soon starts far
    // past index 1 (an empty node needs a snapshot) but still holds what followed the backup.
    let mut c = Cluster::new(
        5,
        "snapshot_every_entries = 10\nkeep_entries_after_snapshot = 30",
    );
    c.start_three_with_accounts(10).await;
    for id in 1..=60u128 {
        c.write_until_acked(
            "/v1/transfers",
            &transfer_body(id, 1, 6, 1),
            &[1, 2, 3],
            Duration::from_secs(30),
        )
        .await;
    }
    let backup: PathBuf = c.dir.path().join("backup-seed");
    let (code, out, err) = ronctl_backup(&c, 2, &backup);
    assert_eq!(code, 0, "{out}{err}");
    let m = manifest(&backup);
    let backup_index = m["last_log_id"]["index"].as_u64().unwrap();
    // The cluster moves on after the backup.
    for id in 61..=70u128 {
        c.write_until_acked(
            "/v1/transfers",
            &transfer_body(id, 1, 6, 1),
            &[1, 2, 3],
            Duration::from_secs(30),
        )
        .await;
    }
    let (code, out, err) = restore(&c, 4, &backup, &c.dir.path().join("node-4"), "--as-seed");
    assert_eq!(code, 0, "{out}{err}");
    c.start(4);
    wait_for(
        "the seeded node answers",
        Duration::from_secs(20),
        || async { c.status(4).await.is_some() },
    )
    .await;
    let leader = c.leader(&[1, 2, 3]).await;
    let body = json!({"node_id": 4, "api_addr": c.node(4).api, "peer_addr": c.node(4).peer});
    let (code, v) = c.post(leader, "/v1/admin/learners", body).await.unwrap();
    assert_eq!(code, 200, "{v}");
    let (index, _) = c.converged(&[1, 2, 3, 4]).await;
    assert!(
        index > backup_index,
        "caught up past the backup: {index} > {backup_index}"
    );
    assert_eq!(c.balances(4, 10).await, c.balances(leader, 10).await);
    // It caught up from the log: no snapshot was installed on it.
    assert_eq!(
        snapshots_installed(&c, 4).await,
        0,
        "the seeded member installed no snapshot"
    );
    // An empty member added the same way needs a full snapshot transfer.
    c.start(5);
    let body = json!({"node_id": 5, "api_addr": c.node(5).api, "peer_addr": c.node(5).peer});
    let (code, v) = c
        .post(leader, "/v1/admin/learners", body.clone())
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    c.converged(&[1, 2, 3, 4, 5]).await;
    // Adding it again is a retry (200); under other addresses, or adding a voter, is refused
    // naming what is there, and changes nothing.
    let (code, v) = c.post(leader, "/v1/admin/learners", body).await.unwrap();
    assert_eq!(code, 200, "{v}");
    for (id, api) in [(5, "127.0.0.1:1"), (1, c.node(1).api.as_str())] {
        let body = json!({"node_id": id, "api_addr": api, "peer_addr": "127.0.0.1:2"});
        c.post_refused(
            leader,
            "/v1/admin/learners",
            body,
            409,
            "membership_change_failed",
        )
        .await;
    }
    assert!(
        snapshots_installed(&c, 5).await >= 1,
        "an empty member catches up by snapshot here"
    );
    // And it is promoted like any learner.
    let (code, v) = c
        .post(
            leader,
            "/v1/admin/membership",
            json!({"voters": [1, 2, 3, 4]}),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    c.write_until_acked(
        "/v1/transfers",
        &transfer_body(31, 1, 6, 1),
        &[1, 2, 3, 4],
        Duration::from_secs(30),
    )
    .await;
    c.converged(&[1, 2, 3, 4]).await;
    // Node 5 is still a learner: it can be taken out (the voters change alone cannot), and a
    // voter cannot be taken out that way.
    let leader = c.leader(&[1, 2, 3, 4]).await;
    c.post_refused(
        leader,
        "/v1/admin/learners/remove",
        json!({"node_id": 4}),
        409,
        "membership_change_failed",
    )
    .await;
    let (code, v) = c
        .post(leader, "/v1/admin/learners/remove", json!({"node_id": 5}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    let members = c.status(leader).await.unwrap()["members"].clone();
    let ids: Vec<u64> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4], "{members}");
}

/// Node `id`'s count of successful snapshot installs (`/metrics`).
async fn snapshots_installed(c: &Cluster, id: u64) -> u64 {
    let metrics = poll(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let r = c
                .http
                .get(c.url(id, "/metrics"))
                .send()
                .await
                .map_err(|_| "no answer")?;
            r.text().await.map_err(|_| "no body")
        },
    )
    .await;
    let line = "snapshot_duration_seconds_count{outcome=\"ok\",what=\"install\"} ";
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no install count in node {id}'s metrics"))
}

/// The install benchmark (`raft-store/examples/install_bench.rs`, measured in docs/BENCHMARKS.md
/// at 5 million transfers) runs end to end at a small size, so that CI keeps it working: the
/// stream it builds installs in a separate process with the root and state digest checked.
/// Not timed.
#[test]
fn the_install_benchmark_installs_and_checks_a_small_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let program = test_support::cluster::example_binary("install_bench");
    let run = |args: &[&str]| {
        let o = Command::new(&program)
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .output()
            .expect("run install_bench");
        outcome(o)
    };
    let (code, out, err) = run(&["build", "--transfers", "20000"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 30000 leaves"), "{out}");
    let (code, out, err) = run(&["install"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("installed 30000 leaves"), "{out}");
    assert!(out.contains("root and digest match"), "{out}");
    assert!(out.contains("peak RSS"), "{out}");
}

/// The offset of a byte in the body of the snapshot stream's frame that holds its middle: the
/// stream is an 8-byte magic, then frames of a little-endian `u32` length and that many bytes.
fn payload_byte_near_middle(stream: &[u8]) -> usize {
    let mut at = 8;
    loop {
        let len = u32::from_le_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        let body = at + 4;
        if body + len >= stream.len() / 2 {
            return body + len / 2;
        }
        at = body + len;
    }
}
