//! Leader stability under a sustained stream of maximum batches: several writers each send
//! requests of `BATCH_EVENTS_MAX` (8,190) transfers back to back, through every node. Every
//! request must be answered 200 with every transfer `ok` on its first attempt (no timeout, no
//! `no_leader`), and while the stream runs the leader and its term must not change on any node.
//! Before the append budget (see `node::start::append_budget_ms`) the first batch already failed:
//! appends timed out at the heartbeat interval, the term moved and requests answered 504.
//! Real processes, TLS, mutual TLS and capabilities on, as everywhere in `tests/`.

use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::cluster::{Cluster, SERIAL};
use test_support::events::transfer_json;

const ACCOUNTS: u128 = 16;
const WRITERS: u128 = 2;
const BATCHES_PER_WRITER: u128 = 4;
const BATCH: u128 = ledger::limits::BATCH_EVENTS_MAX as u128;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_maximum_batches_keeps_one_leader_and_answers_every_request() {
    let _serial = SERIAL.lock().await;
    // The default write budget (10 s) is sized for release builds (and must stay below the
    // 30 s request timeout); these are debug binaries,
    // about ten times slower at applying a full batch, on a machine other tests share. A
    // larger budget keeps this test about leadership: a change of term still fails it.
    let mut c = Cluster::new(3, "\n[limits]\nwrite_timeout_ms = 25000");
    c.start_three_with_accounts(ACCOUNTS).await;
    let leader = c.leader(&[1, 2, 3]).await;
    let term = c.status(leader).await.unwrap()["term"].as_u64().unwrap();

    // Watch every node's view of leader and term while the stream runs.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (http, done) = (c.http.clone(), done.clone());
        let urls: Vec<String> = (1..=3).map(|id| c.url(id, "/v1/status")).collect();
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                for url in &urls {
                    if let Ok(r) = http.get(url).send().await {
                        if let Ok(v) = r.json::<Value>().await {
                            seen.insert((v["term"].as_u64(), v["leader"].as_u64()));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        })
    };

    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let http = c.http.clone();
        let urls: Vec<String> = (1..=3).map(|id| c.url(id, "/v1/transfers")).collect();
        writers.push(tokio::spawn(async move {
            for b in 0..BATCHES_PER_WRITER {
                let first = 1_000_000 + (w * BATCHES_PER_WRITER + b) * BATCH;
                let body = Value::Array(
                    (first..first + BATCH)
                        .map(|id| transfer_json(id, 1 + id % ACCOUNTS, 1 + (id + 5) % ACCOUNTS, 1))
                        .collect(),
                );
                let url = &urls[((w + b) % 3) as usize];
                let sent = Instant::now();
                let r = http.post(url).json(&body).send().await;
                let r = r.unwrap_or_else(|e| panic!("writer {w} batch {b} via {url}: {e}"));
                let code = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(code, 200, "writer {w} batch {b} via {url}: {v}");
                let results = v["results"].as_array().expect("results");
                assert_eq!(results.len() as u128, BATCH);
                assert!(
                    results.iter().all(|r| r["result"] == "ok"),
                    "writer {w} batch {b}: a transfer was not ok"
                );
                println!("writer {w} batch {b}: {} ms", sent.elapsed().as_millis());
            }
        }));
    }
    for t in writers {
        t.await.expect("writer");
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let seen = watcher.await.unwrap();
    let total = WRITERS * BATCHES_PER_WRITER * BATCH;
    println!(
        "{total} transfers in {} requests of {BATCH} in {:.1} s ({:.0} transfers/s, debug build)",
        WRITERS * BATCHES_PER_WRITER,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        seen,
        BTreeSet::from([(Some(term), Some(leader))]),
        "leader {leader} in term {term} must stay the only leader any node sees"
    );
    for id in 1..=3 {
        let s = c.status(id).await.unwrap();
        assert_eq!(s["term"].as_u64(), Some(term), "node {id}: {s}");
    }
    c.converged(&[1, 2, 3]).await;
    let balances = c.balances(leader, ACCOUNTS).await;
    let debits: u128 = balances.values().map(|b| b.0).sum();
    let credits: u128 = balances.values().map(|b| b.1).sum();
    assert_eq!((debits, credits), (total, total));
}
