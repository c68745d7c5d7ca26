//! The list reads and the event stream, in process on one RocksDB node: bad parameters are
//! refused and change nothing; the stream starts with the frontier, gives every event with the
//! root its leaves produce, follows new events, beats while idle, and resumes anywhere.

mod common;

use ledger::merkle::{leaf_hash, Frontier, Hash};
use node::{Node, RunningNode};
use serde_json::{json, Value};
use std::time::Duration;
use test_support::events::raw_body;

async fn start(dir: &std::path::Path) -> RunningNode {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let running = Node::start(common::config(&data))
        .await
        .expect("node starts");
    common::initialize(&running).await;
    running
}

async fn post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(raw_body(body.as_array().unwrap().iter().cloned()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn hex_hash(v: &Value) -> Hash {
    Hash::from_hex(v.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reads_refuse_bad_parameters_and_answer_pages() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    post(
        &http,
        &base,
        "/v1/accounts",
        json!([{"id": "1", "ledger": 1, "code": 1, "flags": ["history"]},
               {"id": "2", "ledger": 1, "code": 2, "user_data_32": 9}]),
    )
    .await;
    let transfers: Vec<Value> = (10..40u128)
        .map(|id| {
            json!({"id": id.to_string(), "debit_account_id": "1", "credit_account_id": "2",
                   "amount": "3", "ledger": 1, "code": 1 + id % 2})
        })
        .collect();
    post(&http, &base, "/v1/transfers", Value::Array(transfers)).await;

    for (path, reason) in [
        ("/v1/accounts?side=debits", "invalid_query"),
        ("/v1/transfers?code=70000", "invalid_query"),
        ("/v1/transfers?limit=0", "invalid_query"),
        ("/v1/transfers?limit=1001", "invalid_query"),
        ("/v1/transfers?order=sideways", "invalid_query"),
        ("/v1/transfers?cursor=01", "invalid_query"),
        ("/v1/transfers?colour=red", "invalid_query"),
        ("/v1/accounts/1/transfers?side=left", "invalid_query"),
        (
            "/v1/accounts/1/transfers?from=1&timestamp_min=1",
            "invalid_query",
        ),
        ("/v1/accounts/2/balances", "history_not_kept"),
        ("/v1/accounts/1/balances?as_of_leaf=1000", "invalid_range"),
        (
            "/v1/accounts/1/balances?as_of_leaf=1&as_of_timestamp=1",
            "invalid_query",
        ),
        ("/v1/accounts/1/balance-history?code=1", "invalid_query"),
        ("/v1/events?from=1000", "invalid_range"),
        ("/v1/events?follow=maybe", "invalid_query"),
        ("/v1/events?wait_ms=10", "invalid_query"),
        ("/v1/events?follow=false&wait_ms=30001", "invalid_query"),
        // One spelling of a number, and no empty page asked for.
        ("/v1/events?from=+5", "invalid_query"),
        ("/v1/events?limit=007", "invalid_query"),
        ("/v1/events?limit=0", "invalid_query"),
        ("/v1/checkpoints?limit=0", "invalid_query"),
        ("/v1/checkpoints?limit=5000", "invalid_query"),
        ("/v1/checkpoints?limit=+5", "invalid_query"),
        // A parameter of another endpoint is refused, not ignored.
        ("/v1/checkpoints?leaf=5&transfer_id=abc", "invalid_query"),
        ("/v1/checkpoints/latest?x=1", "invalid_query"),
        ("/v1/checkpoints/keys?x=1", "invalid_query"),
        ("/v1/proofs/consistency?from=1&to=2&leaf=3", "invalid_query"),
        ("/v1/proofs/inclusion?leaf=1&limit=0", "invalid_query"),
        ("/v1/export?from=0&to=1&limit=0", "invalid_query"),
        ("/v1/status?x=1", "invalid_query"),
        ("/v1/cluster?x=1", "invalid_query"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (status, v["error"]["reason"].as_str()),
            (400, Some(reason)),
            "{path}: {v}"
        );
    }
    let missing = http
        .get(format!("{base}/v1/accounts/99/balances"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Pages of 4, newest first, join into the whole answer.
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let v = common::get_json(
            &http,
            &format!("{base}/v1/transfers?code=2&order=desc&limit=4{cursor}"),
        )
        .await;
        ids.extend(
            v["transfers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().parse::<u128>().unwrap()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let want: Vec<u128> = (10..40u128).rev().filter(|id| 1 + id % 2 == 2).collect();
    assert_eq!(ids, want);
    let v = common::get_json(&http, &format!("{base}/v1/accounts?user_data_32=9")).await;
    assert_eq!(v["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(v["accounts"][0]["id"], "2");

    // The history account: one entry at creation and one per transfer; as of the creation
    // timestamp its balances were zero.
    let v = common::get_json(
        &http,
        &format!("{base}/v1/accounts/1/balance-history?limit=1000"),
    )
    .await;
    let history = v["balances"].as_array().unwrap();
    assert_eq!(history.len(), 31);
    assert_eq!(history[0]["debits_posted"], "0");
    assert_eq!(history[30]["debits_posted"], "90");
    let created = history[0]["timestamp"].as_str().unwrap();
    let v = common::get_json(
        &http,
        &format!("{base}/v1/accounts/1/balances?as_of_timestamp={created}"),
    )
    .await;
    assert_eq!(
        (v["debits_posted"].as_str(), v["leaf"].as_str()),
        (Some("0"), Some("0"))
    );
    let v = common::get_json(
        &http,
        &format!("{base}/v1/accounts/1/balances?as_of_leaf=12"),
    )
    .await;
    assert_eq!(v["leaf"], "12");
    assert_eq!(
        v["debits_posted"], "33",
        "leaves 2..=12 are transfers 10..=20"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_follows_beats_and_resumes_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    post(
        &http,
        &base,
        "/v1/accounts",
        json!([{"id": "1", "ledger": 1, "code": 1}, {"id": "2", "ledger": 1, "code": 1}]),
    )
    .await;
    let body: Vec<Value> = (10..20u128)
        .map(|id| {
            json!({"id": id.to_string(), "debit_account_id": "1", "credit_account_id": "2",
                   "amount": "1", "ledger": 1, "code": 1})
        })
        .collect();
    post(&http, &base, "/v1/transfers", Value::Array(body.clone())).await;
    // The same again: ten rejected `exists` events, in the stream too.
    post(&http, &base, "/v1/transfers", Value::Array(body)).await;

    let all = lines(
        &http
            .get(format!("{base}/v1/events?from=0&follow=false"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(all[0]["type"], "start");
    assert_eq!(all[0]["frontier"], json!([]));
    let events = &all[1..];
    assert_eq!(events.len(), 22);
    let mut frontier = Frontier::default();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["type"], "event");
        assert_eq!(e["index"], i.to_string());
        let data = unhex(e["data"].as_str().unwrap()).unwrap();
        frontier.push(leaf_hash(&data));
        assert_eq!(hex_hash(&e["root"]), frontier.root(), "leaf {i}");
    }
    assert_eq!(events[0]["kind"], "account");
    assert_eq!(events[2]["result"], "ok");
    assert_eq!(events[12]["result"], "exists");
    let status = common::get_json(&http, &format!("{base}/v1/status")).await;
    assert_eq!(events[21]["root"], status["root"]);

    // From any position: the same lines, and a frontier that continues them.
    for from in [1usize, 7, 16, 22] {
        let part = lines(
            &http
                .get(format!("{base}/v1/events?from={from}&follow=false"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        assert_eq!(&part[1..], &events[from..], "from {from}");
        let mut f = Frontier {
            size: from as u64,
            nodes: part[0]["frontier"]
                .as_array()
                .unwrap()
                .iter()
                .map(hex_hash)
                .collect(),
        };
        assert!(f.is_consistent());
        if from < 22 {
            let data = unhex(events[from]["data"].as_str().unwrap()).unwrap();
            f.push(leaf_hash(&data));
            assert_eq!(hex_hash(&events[from]["root"]), f.root());
        }
    }

    // Following: open at the end, then write; the new events arrive on the open response, and
    // a heartbeat follows while nothing happens.
    let mut stream = http
        .get(format!("{base}/v1/events?from=22"))
        .send()
        .await
        .unwrap();
    post(
        &http,
        &base,
        "/v1/transfers",
        json!([{"id": "50", "debit_account_id": "1", "credit_account_id": "2", "amount": "5", "ledger": 1, "code": 1}]),
    )
    .await;
    let mut text = String::new();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        while !text.contains("\"heartbeat\"") {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await;
    assert!(got.is_ok(), "no heartbeat in 20 s: {text}");
    let followed = lines(&text);
    assert_eq!(followed[1]["index"], "22");
    assert_eq!(followed[1]["transfer"]["id"], "50");
    assert_eq!(followed[2]["type"], "heartbeat");
    assert_eq!(followed[2]["tree_size"], "23");

    // A long poll at the end waits for the next event, then ends.
    let poll = {
        let http = http.clone();
        let url = format!("{base}/v1/events?from=23&follow=false&wait_ms=20000");
        tokio::spawn(async move { http.get(url).send().await.unwrap().text().await.unwrap() })
    };
    post(
        &http,
        &base,
        "/v1/transfers",
        json!([{"id": "51", "debit_account_id": "1", "credit_account_id": "2", "amount": "5", "ledger": 1, "code": 1}]),
    )
    .await;
    let polled = lines(&poll.await.unwrap());
    assert_eq!(polled.len(), 2, "{polled:?}");
    assert_eq!(polled[1]["transfer"]["id"], "51");
}

/// Event streams are bounded per node (`limits.event_streams_max`): one more is 429 `busy` with
/// `Retry-After`, and closing a stream frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_beyond_the_cap_are_busy_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut config = common::config(&data);
    config.limits.event_streams_max = 2;
    let running = Node::start(config).await.expect("node starts");
    common::initialize(&running).await;
    let base = format!("http://{}", running.api_addr);
    // One connection per stream, as separate consumers would hold them.
    let open = || async {
        reqwest::Client::new()
            .get(format!("{base}/v1/events?from=0"))
            .send()
            .await
            .unwrap()
    };
    let first = open().await;
    let second = open().await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let refused = open().await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["error"]["reason"], "busy", "{v}");
    // A short read (follow=false) takes a slot too while it runs, and is refused the same way.
    let short = reqwest::Client::new()
        .get(format!("{base}/v1/events?from=0&follow=false"))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 429);
    // The consumer of the first stream goes away: its slot comes back.
    drop(first);
    let reopened = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let r = open().await;
            if r.status() == 200 {
                return r;
            }
            assert_eq!(r.status(), 429);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a closed stream's slot is freed");
    drop((second, reopened));
    running.shutdown().await;
}
