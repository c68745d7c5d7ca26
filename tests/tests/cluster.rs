//! Multi-process tests: real `ron-ledger` processes on loopback, started from config files,
//! killed with SIGKILL, restarted. Every wait polls observable state with a deadline; nothing
//! sleeps in place of a condition. The tests run one at a time (they share the machine's ports
//! and cores).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use test_support::cluster::{ronctl_binary, Cluster, SERIAL};
use test_support::events::{accounts_json, transfer_json};
use test_support::wait::{poll, wait_for};

fn conserved(b: &BTreeMap<u128, (u128, u128)>) -> bool {
    b.values().map(|x| x.0).sum::<u128>() == b.values().map(|x| x.1).sum::<u128>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_accept_writes_everywhere_and_agree() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    let results = c
        .write_until_acked(
            "/v1/accounts",
            &accounts_json(1..=4),
            &[2],
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(results, vec!["ok"; 4]);
    // Transfers through each node in turn: followers forward to the leader.
    for (i, node) in [1u64, 2, 3, 2, 3, 1].iter().enumerate() {
        let t = json!([transfer_json(
            100 + i as u128,
            1 + (i as u128 % 4),
            1 + ((i as u128 + 1) % 4),
            10
        )]);
        let r = c
            .write_until_acked("/v1/transfers", &t, &[*node], Duration::from_secs(20))
            .await;
        assert_eq!(r, vec!["ok"], "via node {node}");
    }
    // Every node reads every transfer back (linearizable, proxied by followers).
    for node in 1..=3 {
        for i in 0..6u128 {
            let (code, v) = c
                .get(node, &format!("/v1/transfers/{}", 100 + i))
                .await
                .unwrap();
            assert_eq!(code, 200, "node {node}: {v}");
            assert_eq!(v["amount"], "10");
        }
        let b = c.balances(node, 4).await;
        assert!(conserved(&b), "node {node}: {b:?}");
        // A stale read served locally sees the same state once converged.
        let _ = c
            .get(node, "/v1/accounts/1?consistency=stale")
            .await
            .unwrap();
    }
    let (applied, root) = c.converged(&[1, 2, 3]).await;
    assert!(applied >= 8 && root.len() == 64);
    let r = c
        .write_until_acked(
            "/v1/transfers",
            &json!([transfer_json(100, 1, 2, 10)]),
            &[3],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(r, vec!["exists"], "a retried id is reported as exists");
}

/// Start `writers` tasks, each sending `per_writer` single-transfer requests between accounts
/// `1..=accounts` round-robin over the nodes, retrying each (same id) until acknowledged, and
/// counting acknowledgements in `acked`. Each task returns its (debit, credit) account pairs.
fn spawn_writers(
    c: &Cluster,
    accounts: u128,
    writers: u128,
    per_writer: u128,
    acked: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Vec<(u128, u128)>>> {
    let http = c.http.clone();
    let urls: Vec<String> = (1..=3).map(|id| c.url(id, "/v1/transfers")).collect();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (http, urls, acked) = (http.clone(), urls.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut moves = Vec::new();
            for k in 0..per_writer {
                let id = 10_000 + w * 1_000 + k;
                let debit = 1 + (id % accounts);
                let credit = 1 + ((id + 3) % accounts);
                let body = json!([transfer_json(id, debit, credit, 1)]);
                let mut attempt = w as usize;
                poll(Duration::from_secs(60), Duration::from_millis(30), || {
                    let url = &urls[attempt % urls.len()];
                    attempt += 1;
                    let (http, body) = (&http, &body);
                    async move {
                        if let Ok(r) = http.post(url).json(body).send().await {
                            if r.status().as_u16() == 200 {
                                let v: Value = r.json().await.unwrap();
                                let result =
                                    v["results"][0]["result"].as_str().unwrap().to_string();
                                assert!(
                                    result == "ok" || result == "exists",
                                    "transfer {id}: {result}"
                                );
                                return Ok(());
                            }
                        }
                        Err(format!("transfer {id} never acknowledged"))
                    }
                })
                .await;
                acked.fetch_add(1, Ordering::Relaxed);
                moves.push((debit, credit));
            }
            moves
        }));
    }
    tasks
}

/// Add the writers' acknowledged moves to `expected` (debits, credits per account).
async fn expect_moves(
    expected: &mut BTreeMap<u128, (u128, u128)>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(u128, u128)>>>,
) {
    for t in tasks {
        for (d, cr) in t.await.expect("writer") {
            expected.get_mut(&d).unwrap().0 += 1;
            expected.get_mut(&cr).unwrap().1 += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_under_load_loses_no_acknowledged_transfer() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    const ACCOUNTS: u128 = 10;
    c.start_three_with_accounts(ACCOUNTS).await;
    let old_leader = c.leader(&[1, 2, 3]).await;
    let acked = Arc::new(AtomicU64::new(0));
    let tasks = spawn_writers(&c, ACCOUNTS, 4, 60, acked.clone());
    // Kill the leader once the load is under way.
    wait_for("load under way", Duration::from_secs(30), || async {
        acked.load(Ordering::Relaxed) >= 40
    })
    .await;
    c.kill(old_leader);
    let mut expected: BTreeMap<u128, (u128, u128)> = (1..=ACCOUNTS).map(|a| (a, (0, 0))).collect();
    expect_moves(&mut expected, tasks).await;
    let alive: Vec<u64> = (1..=3).filter(|i| *i != old_leader).collect();
    let new_leader = c.leader(&alive).await;
    assert_ne!(new_leader, old_leader);
    // Exactly once: the balances equal the acknowledged transfers, each counted once.
    assert_eq!(c.balances(alive[0], ACCOUNTS).await, expected);
    c.start(old_leader);
    let (_, root) = c.converged(&[1, 2, 3]).await;
    assert_eq!(root.len(), 64);
    assert_eq!(c.balances(old_leader, ACCOUNTS).await, expected);
}

/// SIGKILL under load, five times (seed §7 chaos): the leader, then a follower, in turn. Every
/// write is synced before it is acknowledged and the sync dominates the write path, so kills land
/// in or around an fsync. Each killed node comes back at or past the applied index it reported
/// just before the kill (recovery is monotonic: nothing it had applied is lost; its uncommitted
/// log tail may be replaced by the new leader, as Raft allows), and in
/// the end every acknowledged transfer is applied exactly once on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkill_under_load_recovers_monotonically_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    const ACCOUNTS: u128 = 10;
    c.start_three_with_accounts(ACCOUNTS).await;
    let acked = Arc::new(AtomicU64::new(0));
    let tasks = spawn_writers(&c, ACCOUNTS, 4, 150, acked.clone());
    for round in 0..5u64 {
        wait_for("load under way", Duration::from_secs(60), || async {
            acked.load(Ordering::Relaxed) >= 40 + 100 * round
        })
        .await;
        let leader = c.leader(&[1, 2, 3]).await;
        let victim = if round % 2 == 0 {
            leader
        } else {
            1 + leader % 3
        };
        let before = c.status(victim).await.expect("status before the kill");
        let applied_before = before["applied_index"].as_u64().unwrap();
        c.kill(victim);
        c.start(victim);
        let after = poll(
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                c.status(victim)
                    .await
                    .ok_or("the killed node never served again")
            },
        )
        .await;
        assert!(
            after["applied_index"].as_u64().unwrap() >= applied_before,
            "round {round}: node {victim} came back behind itself: before {before}, after {after}"
        );
    }
    let mut expected: BTreeMap<u128, (u128, u128)> = (1..=ACCOUNTS).map(|a| (a, (0, 0))).collect();
    expect_moves(&mut expected, tasks).await;
    c.converged(&[1, 2, 3]).await;
    for id in 1..=3 {
        assert_eq!(c.balances(id, ACCOUNTS).await, expected, "node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_node_catches_up_by_snapshot_install() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(
        3,
        "snapshot_every_entries = 20\nkeep_entries_after_snapshot = 5",
    );
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &accounts_json(1..=5),
        &[1],
        Duration::from_secs(20),
    )
    .await;
    let leader = c.leader(&[1, 2, 3]).await;
    let lagging = if leader == 3 { 2 } else { 3 };
    let before = c.status(lagging).await.unwrap()["last_log_index"]
        .as_u64()
        .unwrap();
    c.kill(lagging);
    let alive: Vec<u64> = (1..=3).filter(|i| *i != lagging).collect();
    for i in 0..80u128 {
        let t = json!([transfer_json(500 + i, 1 + i % 5, 1 + (i + 1) % 5, 2)]);
        c.write_until_acked("/v1/transfers", &t, &alive, Duration::from_secs(20))
            .await;
    }
    wait_for(
        "leader purged its log past the stopped node",
        Duration::from_secs(30),
        || async {
            let leader = c.leader(&alive).await;
            c.status(leader)
                .await
                .and_then(|s| s["purged_index"].as_u64())
                .is_some_and(|p| p > before)
        },
    )
    .await;
    c.start(lagging);
    c.converged(&[1, 2, 3]).await;
    let s = c.status(lagging).await.unwrap();
    assert!(
        s["snapshot_index"].as_u64().is_some_and(|i| i > before),
        "caught up by snapshot: {s}"
    );
    let b = c.balances(lagging, 5).await;
    assert!(conserved(&b));
    assert_eq!(b.values().map(|x| x.0).sum::<u128>(), 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_grows_to_five_and_shrinks_to_three_under_writes() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(5, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &accounts_json(1..=3),
        &[1, 2, 3],
        Duration::from_secs(20),
    )
    .await;
    let mut next = 700u128;
    let mut write = |c: &Cluster| {
        next += 1;
        let id = next;
        let body = json!([transfer_json(id, 1, 2, 1)]);
        let urls = (1..=3).collect::<Vec<u64>>();
        let http = c.http.clone();
        let addrs: Vec<String> = urls.iter().map(|i| c.url(*i, "/v1/transfers")).collect();
        async move {
            let mut k = 0;
            poll(Duration::from_secs(60), Duration::from_millis(30), || {
                let url = &addrs[k % addrs.len()];
                k += 1;
                let (http, body) = (&http, &body);
                async move {
                    if let Ok(r) = http.post(url).json(body).send().await {
                        if r.status().as_u16() == 200 {
                            return Ok(());
                        }
                    }
                    Err(format!("write {id} not acknowledged"))
                }
            })
            .await
        }
    };
    for _ in 0..5 {
        write(&c).await;
    }
    // A member address that is not host:port is refused before anything changes.
    c.post_refused(
        2,
        "/v1/admin/learners",
        json!({"node_id": 4, "api_addr": "not an addr", "peer_addr": c.node(4).peer}),
        400,
        "invalid_request",
    )
    .await;
    // Adding a learner answers once it has caught up: node 4 is not running yet, so the call
    // times out (the learner stays added); once it runs, the same call answers 200, and its
    // log holds the entry that added it.
    let body = |c: &Cluster, id: u64| json!({"node_id": id, "api_addr": c.node(id).api, "peer_addr": c.node(id).peer});
    c.post_refused(2, "/v1/admin/learners", body(&c, 4), 504, "timeout")
        .await;
    for id in [4u64, 5] {
        c.start(id);
        let (code, v) = c.post(2, "/v1/admin/learners", body(&c, id)).await.unwrap();
        assert_eq!(code, 200, "{v}");
        let added = v["log_index"].as_u64().expect("log_index");
        let s = c.status(id).await.expect("status");
        assert!(
            s["last_log_index"].as_u64().is_some_and(|i| i >= added),
            "node {id} answered caught up at {added}: {s}"
        );
        write(&c).await;
    }
    // Promoted one by one, each change applied by the leader to the membership it holds (a
    // stale list can never drop the other one); two forms at once are refused.
    c.post_refused(
        1,
        "/v1/admin/membership",
        json!({"voters": [1, 2, 3], "add_voters": [4]}),
        400,
        "invalid_request",
    )
    .await;
    // `ronctl cluster promote` sends the change itself (`add_voters`), once per node.
    let ronctl = |args: &[&str]| {
        let out = std::process::Command::new(ronctl_binary())
            .envs(c.ronctl_env())
            .args(["--seeds", &c.node(1).api])
            .args(args)
            .output()
            .expect("run ronctl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    };
    for id in ["4", "5"] {
        let (code, text) = ronctl(&["cluster", "promote", id]);
        assert_eq!(code, 0, "promote {id}: {text}");
    }
    for _ in 0..5 {
        write(&c).await;
    }
    let s = c.status(5).await.unwrap();
    let voters = s["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["voter"] == true)
        .count();
    assert_eq!(voters, 5, "{s}");
    c.converged(&[1, 2, 3, 4, 5]).await;
    let (code, v) = c
        .post(3, "/v1/admin/membership", json!({"remove_voters": [5]}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    // Again: 5 is no voter any more, and the no-op is named, not answered 200.
    c.post_refused(
        3,
        "/v1/admin/membership",
        json!({"remove_voters": [5]}),
        409,
        "membership_change_failed",
    )
    .await;
    let (code, text) = ronctl(&["cluster", "remove", "4"]);
    assert_eq!(code, 0, "remove 4: {text}");
    let (code, text) = ronctl(&["cluster", "remove", "4"]);
    assert_eq!(code, 2, "4 is no member any more: {text}");
    for _ in 0..5 {
        write(&c).await;
    }
    c.kill(4);
    c.kill(5);
    for _ in 0..5 {
        write(&c).await;
    }
    let s = c.status(1).await.unwrap();
    assert_eq!(s["members"].as_array().unwrap().len(), 3, "{s}");
    c.converged(&[1, 2, 3]).await;
    let b = c.balances(1, 3).await;
    assert_eq!(
        b[&1].0,
        (next - 700),
        "every acknowledged transfer applied once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_keeps_state_and_root() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "[checkpoint]\ninterval_events = 5\n");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &accounts_json(1..=3),
        &[1],
        Duration::from_secs(20),
    )
    .await;
    for i in 0..20u128 {
        c.write_until_acked(
            "/v1/transfers",
            &json!([transfer_json(900 + i, 1, 2 + i % 2, 3)]),
            &[1, 2, 3],
            Duration::from_secs(20),
        )
        .await;
    }
    let (applied, root) = c.converged(&[1, 2, 3]).await;
    let tree_before = c.status(1).await.unwrap()["tree_size"].clone();
    // Every node's signed checkpoints, to find again after the restart.
    let signatures = |list: Value| -> Vec<String> {
        list["checkpoints"]
            .as_array()
            .expect("checkpoint list")
            .iter()
            .map(|cp| cp["signature"].as_str().expect("signature").to_string())
            .collect()
    };
    let mut signed_before = Vec::new();
    for id in 1..=3 {
        let (status, list) = c.get(id, "/v1/checkpoints").await.unwrap();
        assert_eq!(status, 200, "{list}");
        let sigs = signatures(list);
        assert!(
            sigs.len() >= 3,
            "node {id} signed {} checkpoints",
            sigs.len()
        );
        signed_before.push(sigs);
    }
    for id in 1..=3 {
        c.kill(id);
    }
    for id in 1..=3 {
        c.start(id);
    }
    c.leader(&[1, 2, 3]).await;
    let (applied_after, root_after) = c.converged(&[1, 2, 3]).await;
    assert!(
        applied_after >= applied,
        "applied went backwards: {applied} -> {applied_after}"
    );
    assert_eq!(
        root_after, root,
        "same root after restart (only blank entries were added)"
    );
    assert_eq!(c.status(2).await.unwrap()["tree_size"], tree_before);
    let b = c.balances(3, 3).await;
    assert_eq!(b[&1].0, 60);
    // Checkpoints signed before the restart are still served by the node that signed them.
    for id in 1..=3u64 {
        let (status, list) = c.get(id, "/v1/checkpoints").await.unwrap();
        assert_eq!(status, 200, "{list}");
        let after = signatures(list);
        for sig in &signed_before[id as usize - 1] {
            assert!(
                after.contains(sig),
                "node {id} lost checkpoint {sig} in the restart"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_with_a_reason_and_changes_nothing() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "[limits]\nbody_bytes_max = 4194304");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &accounts_json(1..=2),
        &[1],
        Duration::from_secs(20),
    )
    .await;
    let (_, before_root) = c.converged(&[1, 2, 3]).await;
    let big: Vec<Value> = (0..8191u128)
        .map(|i| transfer_json(i + 1, 1, 2, 1))
        .collect();
    let mut oversized = String::from("[");
    while oversized.len() < 5 * 1024 * 1024 {
        oversized.push_str("{\"id\":\"1\"},");
    }
    oversized.push_str("{\"id\":\"1\"}]");
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        ("malformed json", "/v1/transfers".into(), "[{\"id\": ".into(), 400, "invalid_json"),
        ("unknown field", "/v1/transfers".into(), r#"[{"id":"1","debit_account_id":"1","credit_account_id":"2","amount":"1","ledger":1,"code":1,"colour":"red"}]"#.into(), 400, "invalid_json"),
        ("wrong type", "/v1/transfers".into(), r#"[{"id":1,"debit_account_id":"1","credit_account_id":"2","amount":"1","ledger":1,"code":1}]"#.into(), 400, "invalid_json"),
        ("u128 overflow", "/v1/transfers".into(), r#"[{"id":"340282366920938463463374607431768211456","ledger":1,"code":1}]"#.into(), 400, "invalid_json"),
        ("negative", "/v1/transfers".into(), r#"[{"id":"5","debit_account_id":"1","credit_account_id":"2","amount":"-1","ledger":1,"code":1}]"#.into(), 400, "invalid_json"),
        ("not an array", "/v1/accounts".into(), r#"{"id":"1"}"#.into(), 400, "invalid_json"),
        ("empty batch", "/v1/transfers".into(), "[]".into(), 400, "empty_batch"),
        ("a transfer as a positional array", "/v1/transfers".into(), r#"[["9100","1","2","3","0","0","0",0,0,1,1,[],"0"]]"#.into(), 400, "invalid_json"),
        ("an account as a positional array", "/v1/accounts".into(), r#"[["77","0","0","0","0","0","0",0,1,1,[],"0"]]"#.into(), 400, "invalid_json"),
        ("a flag twice", "/v1/transfers".into(), r#"[{"id":"9101","debit_account_id":"1","credit_account_id":"2","amount":"1","ledger":1,"code":1,"flags":["pending","pending"]}]"#.into(), 400, "invalid_json"),
        ("a learner as a positional array", "/v1/admin/learners".into(), r#"[4,"127.0.0.1:1","127.0.0.1:2"]"#.into(), 400, "invalid_json"),
        ("an id twice in one linked chain", "/v1/accounts".into(), r#"[{"id":"900","ledger":1,"code":1,"flags":["linked"]},{"id":"900","ledger":1,"code":1,"flags":["linked"]},{"id":"901","ledger":1,"code":1}]"#.into(), 400, "invalid_request"),
        ("8191 events", "/v1/transfers".into(), serde_json::to_string(&big).unwrap(), 413, "too_many_events"),
        ("oversized body", "/v1/transfers".into(), oversized, 413, "too_large"),
    ];
    let http = c.http.clone();
    for (name, path, body, status, reason) in cases {
        for node in 1..=3 {
            let r = http
                .post(c.url(node, &path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{name} via node {node}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["reason"], reason, "{name}: {v}");
        }
    }
    // Binary bodies: an unknown version and garbage.
    for (name, bytes, reason) in [
        (
            "unknown version",
            vec![b'R', b'L', 99, 2, 0],
            "unsupported_version",
        ),
        ("garbage", vec![1, 2, 3, 4, 5], "invalid_encoding"),
    ] {
        let r = http
            .post(c.url(2, "/v1/transfers"))
            .header("content-type", "application/x-ron-ledger")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["reason"], reason, "{name}: {v}");
    }
    // Statically invalid events are answered per event and never sequenced.
    let (code, v) = c
        .post(3, "/v1/transfers", json!([transfer_json(1, 1, 1, 5)]))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(v["results"][0]["result"], "accounts_must_be_different");
    assert!(v["log_index"].is_null(), "{v}");
    for q in [
        "limit=abc",
        "limit=-1",
        "colour=red",
        "consistency=sometimes",
    ] {
        let (code, v) = c
            .get(2, &format!("/v1/accounts/1/transfers?{q}"))
            .await
            .unwrap();
        assert_eq!(
            (code, v["error"]["reason"].as_str()),
            (400, Some("invalid_query")),
            "{q}"
        );
    }
    let (code, v) = c.get(2, "/v1/nowhere").await.unwrap();
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (404, Some("no_route"))
    );
    for id in ["0x10", "-1", "abc"] {
        let (code, v) = c.get(1, &format!("/v1/accounts/{id}")).await.unwrap();
        assert_eq!(
            (code, v["error"]["reason"].as_str()),
            (400, Some("invalid_id"))
        );
    }
    let (_, after_root) = c.converged(&[1, 2, 3]).await;
    assert_eq!(after_root, before_root, "nothing changed");
    for node in 1..=3 {
        let r = http.get(c.url(node, "/healthz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
}

/// A node restarted on an empty data directory under its old id has forgotten its votes. Its
/// votes are not counted while it is a voter: with the leader down, the remaining old node
/// cannot win with the fresh node's vote (it logs why). The documented replacement — remove
/// the member, re-add it as a learner, promote it once caught up — brings it back: every
/// acknowledged transfer is applied once on all three, and its vote counts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_data_does_not_vote_until_it_is_replaced() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    c.start_three_with_accounts(3).await;
    let mut acked = 0u128;
    let mut next = 900u128;
    async fn transfer(c: &Cluster, id: u128, nodes: &[u64]) {
        c.write_until_acked(
            "/v1/transfers",
            &json!([transfer_json(id, 1, 2, 1)]),
            nodes,
            Duration::from_secs(30),
        )
        .await;
    }
    for _ in 0..5 {
        next += 1;
        transfer(&c, next, &[1, 2, 3]).await;
        acked += 1;
    }
    let leader = c.leader(&[1, 2, 3]).await;
    let fresh = (1..=3).find(|id| *id != leader).unwrap();
    let old = (1..=3).find(|id| *id != leader && *id != fresh).unwrap();
    c.converged(&[1, 2, 3]).await;
    // Every node learns its peers' incarnations (from Raft RPCs and the divergence check).
    let incarnation_of = |s: &Value, id: u64| {
        s["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .and_then(|m| m["incarnation"].as_str().map(str::to_string))
    };
    let before = poll(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let s = c.status(old).await.ok_or("no status")?;
            incarnation_of(&s, fresh).ok_or("not learned yet")
        },
    )
    .await;

    // The fresh node's data is lost; the leader goes down before it can catch up.
    c.kill(fresh);
    std::fs::remove_dir_all(c.dir.path().join(format!("node-{fresh}"))).unwrap();
    c.kill(leader);
    c.start(fresh);
    let old_log = c.node(old).log.clone();
    wait_for(
        "the old node refuses the fresh node's vote",
        Duration::from_secs(30),
        || {
            let log = old_log.clone();
            async move {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("its vote is not counted")
            }
        },
    )
    .await;
    for id in [old, fresh] {
        let s = c.status(id).await.expect("status");
        assert_ne!(
            s["role"], "leader",
            "node {id} must not lead on a forgotten vote: {s}"
        );
    }

    // The old leader comes back: two intact voters carry on, the fresh node follows.
    c.start(leader);
    let now = c.leader(&[leader, old]).await;
    for _ in 0..3 {
        next += 1;
        transfer(&c, next, &[now]).await;
        acked += 1;
    }
    let after = poll(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let s = c.status(fresh).await.ok_or("no status")?;
            incarnation_of(&s, fresh).ok_or("no membership yet")
        },
    )
    .await;
    assert_ne!(after, before, "a new data directory is a new incarnation");

    // The procedure: remove it, re-add it as a learner, promote it, writing all along.
    let (code, v) = c
        .post(
            now,
            "/v1/admin/membership",
            json!({"voters": [leader, old]}),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    next += 1;
    transfer(&c, next, &[leader, old]).await;
    acked += 1;
    let body =
        json!({"node_id": fresh, "api_addr": c.node(fresh).api, "peer_addr": c.node(fresh).peer});
    let (code, v) = c.post(old, "/v1/admin/learners", body).await.unwrap();
    assert_eq!(code, 200, "{v}");
    next += 1;
    transfer(&c, next, &[leader, old]).await;
    acked += 1;
    let (code, v) = c
        .post(old, "/v1/admin/membership", json!({"voters": [1, 2, 3]}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    next += 1;
    transfer(&c, next, &[1, 2, 3]).await;
    acked += 1;
    c.converged(&[1, 2, 3]).await;
    for id in 1..=3 {
        let b = c.balances(id, 3).await;
        assert_eq!(
            b[&1].0, acked,
            "node {id}: every acknowledged transfer applied once"
        );
    }

    // Its vote counts again: with one old voter down, the other and the replaced node elect.
    let current = c.leader(&[1, 2, 3]).await;
    c.kill(current);
    let rest: Vec<u64> = (1..=3).filter(|id| *id != current).collect();
    let elected = c.leader(&rest).await;
    assert!(rest.contains(&elected));
    next += 1;
    transfer(&c, next, &rest).await;
}

async fn ready(c: &Cluster, id: u64) -> bool {
    matches!(c.get(id, "/readyz").await, Some((200, _)))
}

/// `/readyz` answers 503 `no_leader` and `/v1/status` names no leader.
async fn no_leader(c: &Cluster, id: u64) -> bool {
    let Some((code, v)) = c.get(id, "/readyz").await else {
        return false;
    };
    let status = c.status(id).await.unwrap_or_default();
    code == 503
        && v["reasons"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("no_leader")))
        && status["leader"].is_null()
}

/// A leader cut off from its quorum, and a follower whose leader stopped, stop vouching for a
/// leader within twice the election timeout: `/readyz` answers 503 `no_leader`,
/// `/v1/status` names no leader and `raft_is_leader` drops to 0 (the no-leader alert fires).
/// openraft 0.9 alone keeps both reporting the old leader for ever. With the quorum back,
/// all three are ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_its_quorum_or_its_leader_reports_no_leader() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    c.start_three_with_accounts(3).await;
    let leader = c.leader(&[1, 2, 3]).await;
    for id in 1..=3 {
        wait_for("every node ready", Duration::from_secs(20), || {
            ready(&c, id)
        })
        .await;
    }
    assert_eq!(c.metric(leader, "raft_is_leader").await, Some(1.0));

    // Both followers go: the leader still leads in openraft's eyes, but has no quorum.
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    for id in &followers {
        c.kill(*id);
    }
    wait_for(
        "the isolated leader reports no leader",
        Duration::from_secs(20),
        || no_leader(&c, leader),
    )
    .await;
    let s = c.status(leader).await.unwrap();
    assert_eq!(s["role"], "leader", "openraft still has it leading: {s}");
    assert_eq!(c.metric(leader, "raft_is_leader").await, Some(0.0));
    // A write is refused at once (nothing proposed), not held until "outcome unknown".
    c.post_refused(
        leader,
        "/v1/transfers",
        json!([transfer_json(990, 1, 2, 1)]),
        503,
        "no_leader",
    )
    .await;

    // The quorum comes back: a leader is vouched for again everywhere.
    for id in &followers {
        c.start(*id);
    }
    let leader = c.leader(&[1, 2, 3]).await;
    for id in 1..=3 {
        wait_for("every node ready again", Duration::from_secs(30), || {
            ready(&c, id)
        })
        .await;
    }
    assert_eq!(c.metric(leader, "raft_is_leader").await, Some(1.0));

    // One follower goes and the leader stops (paused: it still accepts connections, answers
    // nothing): the last follower stops naming it.
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != survivor).unwrap();
    c.kill(other);
    c.signal(leader, "STOP");
    wait_for(
        "the last follower reports no leader",
        Duration::from_secs(20),
        || no_leader(&c, survivor),
    )
    .await;
    assert_eq!(c.metric(survivor, "raft_is_leader").await, Some(0.0));
    // It relays no write to the leader it no longer vouches for: refused at once (relayed, the
    // write would wait for the paused leader until "outcome unknown").
    c.post_refused(
        survivor,
        "/v1/transfers",
        json!([transfer_json(991, 1, 2, 1)]),
        503,
        "no_leader",
    )
    .await;
    c.signal(leader, "CONT");
}
