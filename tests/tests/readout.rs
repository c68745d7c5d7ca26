//! Reading the ledger back out, on a real 3-node cluster: queries and balance history answer the
//! same on every node and across a leader kill; the event stream resumes exactly across a node
//! restart and a leader change, with every event proven by the SDK's consumer; a consumer that
//! stalls does not hold up commits.

use ledger::canonical::LeafEvent;
use ledger::checkpoint::TrustedKeys;
use ron_ledger_client::{AsOf, Client, Consistency, QueryFilter, TransferSide};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use test_support::cluster::{Cluster, SERIAL};
use test_support::wait::poll;

fn dec(v: &Value) -> u128 {
    v.as_str().and_then(|s| s.parse().ok()).expect("decimal")
}

/// Accounts 1..=6: odd ones keep history and carry user_data_128 = 7; ledger 1, code 1 + id % 2.
fn accounts() -> Value {
    Value::Array(
        (1..=6u128)
            .map(|id| {
                let mut a = json!({"id": id.to_string(), "ledger": 1, "code": 1 + id % 2});
                if id % 2 == 1 {
                    a["flags"] = json!(["history"]);
                    a["user_data_128"] = json!("7");
                }
                a
            })
            .collect(),
    )
}

/// Transfers `ids`: from `1 + id % 3` to `4 + id % 3`, code `1 + id % 4`, user_data_64 = id % 5.
fn transfers(ids: std::ops::Range<u128>) -> Value {
    Value::Array(
        ids.map(|id| {
            json!({"id": id.to_string(), "debit_account_id": (1 + id % 3).to_string(),
                   "credit_account_id": (4 + id % 3).to_string(), "amount": (id % 9 + 1).to_string(),
                   "ledger": 1, "code": 1 + id % 4, "user_data_64": (id % 5).to_string()})
        })
        .collect(),
    )
}

async fn trusted_keys(c: &Cluster) -> TrustedKeys {
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

/// What one node answers to the reads this test compares, read stale (its own applied state)
/// once it has applied `tree_size` leaves.
async fn answers(c: &Cluster, node: u64, tree_size: u64) -> Vec<Value> {
    poll(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async move {
            match c.status(node).await {
                Some(s) if dec(&s["tree_size"]) >= u128::from(tree_size) => Ok(()),
                _ => Err("behind"),
            }
        },
    )
    .await;
    let mut out = Vec::new();
    for path in [
        "/v1/accounts?user_data_128=7",
        "/v1/accounts?code=1&order=desc",
        "/v1/transfers?code=2&user_data_64=3&limit=1000",
        "/v1/transfers?order=desc&limit=5",
        "/v1/accounts/1/transfers?side=debits&code=2&limit=1000",
        "/v1/accounts/4/transfers?side=credits&limit=1000",
        "/v1/accounts/1/balance-history?limit=1000",
        "/v1/accounts/3/balance-history?order=desc&limit=3",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (code, v) = c
            .get(node, &format!("{path}{sep}consistency=stale"))
            .await
            .expect("read");
        assert_eq!(code, 200, "{path}: {v}");
        out.push(v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_balance_history_answer_alike_on_every_node_and_across_a_leader_kill() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &accounts(),
        &[1, 2, 3],
        Duration::from_secs(30),
    )
    .await;
    c.write_until_acked(
        "/v1/transfers",
        &transfers(100..400),
        &[1, 2, 3],
        Duration::from_secs(30),
    )
    .await;
    let (_, root) = c.converged(&[1, 2, 3]).await;
    let size = dec(&c.status(1).await.unwrap()["tree_size"]) as u64;
    let first = answers(&c, 1, size).await;
    for node in [2, 3] {
        assert_eq!(
            answers(&c, node, size).await,
            first,
            "node {node} answers otherwise"
        );
    }

    // What the answers say is what the transfers were.
    let by_code: Vec<u128> = first[2]["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["id"]))
        .collect();
    let want: Vec<u128> = (100..400u128)
        .filter(|id| 1 + id % 4 == 2 && id % 5 == 3)
        .collect();
    assert_eq!(by_code, want);
    let debits: Vec<u128> = first[4]["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["id"]))
        .collect();
    let want: Vec<u128> = (100..400u128)
        .filter(|id| 1 + id % 3 == 1 && 1 + id % 4 == 2)
        .collect();
    assert_eq!(debits, want);
    let odd: BTreeSet<u128> = first[0]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| dec(&a["id"]))
        .collect();
    assert_eq!(odd, BTreeSet::from([1, 3, 5]));
    // Account 1 changed once per transfer it debited, plus its creation.
    let history = first[6]["balances"].as_array().unwrap();
    let debited = (100..400u128).filter(|id| 1 + id % 3 == 1).count();
    assert_eq!(history.len(), debited + 1);
    assert_eq!(
        history.last().unwrap()["debits_posted"],
        c.get(1, "/v1/accounts/1").await.unwrap().1["debits_posted"]
    );

    // The SDK reads the same, pages by cursor, and asks for a balance as of a point.
    let config = c.client_config((1..=3).map(|id| c.node(id).api.clone()));
    let client = Client::new(config).unwrap();
    let mut paged = Vec::new();
    let mut f = QueryFilter {
        code: 2,
        user_data_64: 3,
        limit: 4,
        ..QueryFilter::default()
    };
    loop {
        let page = client
            .query_transfers(&f, Consistency::Linearizable)
            .await
            .unwrap();
        paged.extend(page.items.iter().map(|t| t.transfer.id));
        match page.next_cursor {
            Some(cur) => f.cursor = Some(cur),
            None => break,
        }
    }
    assert_eq!(
        paged, by_code,
        "pages join into the whole answer, no gap, no repeat"
    );
    let middle = &history[history.len() / 2];
    let at = client
        .balance_as_of(
            1,
            AsOf::Timestamp(dec(&middle["timestamp"]) as u64),
            Consistency::Linearizable,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at.debits_posted, dec(&middle["debits_posted"]));
    let by_leaf = client
        .balance_as_of(1, AsOf::Leaf(at.leaf), Consistency::Linearizable)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        by_leaf, at,
        "as of the leaf that set them, the same balances"
    );
    // The leaf named is the transfer that produced these balances.
    let (code, leaf) = c
        .get(
            2,
            &format!("/v1/proofs/inclusion?tree_size={size}&leaf={}", at.leaf),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{leaf}");
    let no_history = client
        .balance_as_of(2, AsOf::Latest, Consistency::Linearizable)
        .await
        .unwrap_err();
    assert!(
        no_history.to_string().contains("history_not_kept"),
        "{no_history}"
    );
    let by_side = client
        .query_account_transfers(
            4,
            TransferSide::Credits,
            &QueryFilter::default(),
            Consistency::Stale,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        by_side
            .items
            .iter()
            .map(|t| t.transfer.id)
            .collect::<Vec<_>>(),
        first[5]["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .take(100)
            .map(|t| dec(&t["id"]))
            .collect::<Vec<_>>()
    );

    // Kill the leader, write more, and every survivor still answers alike, now including the
    // new transfers.
    let leader = c.leader(&[1, 2, 3]).await;
    c.kill(leader);
    let alive: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    c.write_until_acked(
        "/v1/transfers",
        &transfers(400..500),
        &alive,
        Duration::from_secs(30),
    )
    .await;
    let (_, root_after) = c.converged(&alive).await;
    assert_ne!(root_after, root);
    let size = dec(&c.status(alive[0]).await.unwrap()["tree_size"]) as u64;
    let after = answers(&c, alive[0], size).await;
    assert_eq!(answers(&c, alive[1], size).await, after);
    let by_code: Vec<u128> = after[2]["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["id"]))
        .collect();
    let want: Vec<u128> = (100..500u128)
        .filter(|id| 1 + id % 4 == 2 && id % 5 == 3)
        .collect();
    assert_eq!(by_code, want);
    // The killed node comes back and answers the same once caught up.
    c.start(leader);
    assert_eq!(answers(&c, leader, size).await, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_exactly_across_a_restart_and_a_leader_change_and_every_event_is_proven(
) {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &accounts(),
        &[1, 2, 3],
        Duration::from_secs(30),
    )
    .await;
    // Rejected events are in the stream too: transfer 100 twice, the second `exists`.
    c.write_until_acked(
        "/v1/transfers",
        &transfers(100..300),
        &[1, 2, 3],
        Duration::from_secs(30),
    )
    .await;
    c.write_until_acked(
        "/v1/transfers",
        &transfers(100..101),
        &[1, 2, 3],
        Duration::from_secs(30),
    )
    .await;
    let keys = trusted_keys(&c).await;

    // Stalled consumers: a follow stream opened on nodes 1 and 2 and never read.
    let stalled = [reqwest_stalled(&c, 1).await, reqwest_stalled(&c, 2).await];

    // The SDK consumer, through node 3 only, proves each batch and stops half way.
    let config = c
        .client_config([c.node(3).api.clone()])
        .with_trusted_keys(keys.clone(), Some("test".into()));
    let client = Client::new(config).unwrap();
    let mut consumer = client.events(0).unwrap();
    let mut seen: Vec<(u64, LeafEvent)> = Vec::new();
    while seen.len() < 100 {
        for e in consumer.next_batch(64).await.unwrap() {
            seen.push((e.index, e.event));
        }
    }
    let position = consumer.position();
    assert_eq!(position, seen.len() as u64);

    // Node 3 restarts and the leader changes. Meanwhile 4,000 transfers commit on nodes 1 and
    // 2, far more than a stalled stream buffers (1,024 lines), while both hold one.
    c.kill(3);
    let leader = c.leader(&[1, 2]).await;
    let rss_before = [rss_kib(&c, 1), rss_kib(&c, 2)];
    let started = Instant::now();
    for chunk in 0..4u128 {
        let ids = 300 + chunk * 1000..1300 + chunk * 1000;
        c.write_until_acked(
            "/v1/transfers",
            &transfers(ids),
            &[1, 2],
            Duration::from_secs(30),
        )
        .await;
    }
    println!(
        "4,000 transfers committed in {:?} with a stalled consumer on each node",
        started.elapsed()
    );
    // What a stalled stream may cost is its buffer (1,024 lines, under 1 MiB) and the socket's.
    // A loose guard against a stream that buffers without bound: the growth printed here (about
    // 8 MiB per node on the reference machine, RocksDB's memtables included) is reported in the
    // issue; 4,000 unread events are ~3 MiB of NDJSON, so this bound catches gross growth only.
    for (i, id) in [1u64, 2].into_iter().enumerate() {
        let after = rss_kib(&c, id);
        let grew = after.saturating_sub(rss_before[i]);
        println!(
            "node {id}: RSS {} KiB -> {after} KiB (+{grew} KiB)",
            rss_before[i]
        );
        assert!(
            grew < 48 * 1024,
            "node {id} grew {grew} KiB while a consumer stalled"
        );
    }
    c.kill(leader);
    c.start(3);
    let other = if leader == 1 { 2 } else { 1 };
    c.leader(&[3, other]).await;
    c.write_until_acked(
        "/v1/transfers",
        &transfers(4300..4350),
        &[3, other],
        Duration::from_secs(30),
    )
    .await;
    c.start(leader);
    let (_, root) = c.converged(&[1, 2, 3]).await;
    let size = dec(&c.status(1).await.unwrap()["tree_size"]) as u64;
    drop(stalled);

    // A new consumer (a restarted downstream system) resumes from the saved position through
    // any node, and sees every later event exactly once.
    let config = c
        .client_config((1..=3).map(|id| c.node(id).api.clone()))
        .with_trusted_keys(keys, Some("test".into()));
    let client = Client::new(config).unwrap();
    let mut consumer = client.events(position).unwrap();
    let mut last_root = None;
    while consumer.position() < size {
        for e in consumer.next_batch(1000).await.unwrap() {
            assert_eq!(e.index, seen.len() as u64, "no gap, no duplicate");
            last_root = Some(e.root);
            seen.push((e.index, e.event));
        }
    }
    assert_eq!(seen.len() as u64, size);
    assert_eq!(
        last_root.unwrap().to_hex(),
        root,
        "the last event's root is the cluster's"
    );

    // Every acknowledged transfer appears once as `ok`; the repeat of 100 as `exists`.
    let mut ok = BTreeSet::new();
    let mut exists = 0;
    for (_, e) in &seen {
        if let LeafEvent::Transfer { transfer, result } = e {
            match result {
                0 => assert!(ok.insert(transfer.id), "transfer {} twice", transfer.id),
                _ => exists += 1,
            }
        }
    }
    assert_eq!(ok, (100..4350u128).collect::<BTreeSet<_>>());
    assert_eq!(exists, 1);
}

/// Node `id`'s resident memory (KiB), from /proc.
fn rss_kib(c: &Cluster, id: u64) -> u64 {
    let pid = c.node(id).child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Open `GET /v1/events?from=0` (following) on `node` and read only its status: the body stays
/// unread while the test goes on.
async fn reqwest_stalled(c: &Cluster, node: u64) -> reqwest::Response {
    let http = test_support::cluster::https_client(&c.pki, None);
    let r = http
        .get(c.url(node, "/v1/events?from=0"))
        .send()
        .await
        .expect("stream opens");
    assert_eq!(r.status(), 200);
    r
}
