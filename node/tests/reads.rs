//! What reads answer, in process on one RocksDB node: `/v1/status` is one consistent snapshot
//! under concurrent writes, and transfer reads say where each transfer stands.

mod common;

use node::{Node, RunningNode};
use serde_json::json;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::events::{account_json, raw_body};

async fn start(dir: &std::path::Path) -> RunningNode {
    let running = start_uninitialized(dir).await;
    common::initialize(&running).await;
    running
}

async fn start_uninitialized(dir: &std::path::Path) -> RunningNode {
    Node::start(common::config(dir)).await.expect("node starts")
}

/// A private (0700) data directory under `dir`.
fn data_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    data
}

/// `/v1/status` pairs its `applied_index` with the `tree_size` and `root` that entry produced
/// (the receipts of the writes say which tree size each log index produced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pairs_the_applied_index_with_its_own_tree_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&data_dir(dir.path())).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();

    // Writers: 4 tasks, each creating 120 accounts one request at a time; every receipt says
    // which tree size its log index produced.
    let mut writers = Vec::new();
    for w in 0..4u128 {
        let (http, base) = (http.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let mut receipts = Vec::new();
            for i in 0..120u128 {
                let id = 1 + w * 1_000 + i;
                let r = http
                    .post(format!("{base}/v1/accounts"))
                    .header("content-type", "application/json")
                    .body(raw_body([account_json(id, 1)]))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["results"][0]["result"], "ok", "{v}");
                let index: u64 = v["log_index"].as_str().unwrap().parse().unwrap();
                let size: u64 = v["tree_size"].as_str().unwrap().parse().unwrap();
                receipts.push((index, size));
            }
            receipts
        }));
    }
    // The reader samples /v1/status until every writer is done.
    let mut samples = Vec::new();
    while writers.iter().any(|w| !w.is_finished()) {
        let v: Value = common::get_json(&http, &format!("{base}/v1/status")).await;
        samples.push(v);
    }
    let mut produced: BTreeMap<u64, u64> = BTreeMap::new();
    for w in writers {
        for (index, size) in w.await.unwrap() {
            let before = produced.insert(index, size);
            assert!(before.is_none_or(|b| b == size), "index {index}: two sizes");
        }
    }
    assert!(samples.len() >= 20, "too few samples ({})", samples.len());
    let mut checked = 0;
    for s in &samples {
        let Some(applied) = s["applied_index"].as_u64() else {
            continue;
        };
        let size: u64 = s["tree_size"].as_str().unwrap_or("0").parse().unwrap();
        // Only the writes add leaves: the tree at `applied` is the one the newest write entry
        // at or before it produced (none yet: the empty tree).
        let expected = produced
            .range(..=applied)
            .next_back()
            .map_or(0, |(_, size)| *size);
        assert_eq!(
            size, expected,
            "status paired applied_index {applied} with tree_size {size}: {s}"
        );
        let root = s["root"].as_str().unwrap();
        if size == 0 {
            continue;
        }
        assert_eq!(
            root,
            running.node.state.root_at(size).unwrap().to_hex(),
            "status root is not the root at its tree size"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} samples had an applied index");
    running.shutdown().await;
}

fn transfer(id: u128, flags: &[&str], pending_id: u128, amount: u128, timeout: u32) -> Value {
    json!({"id": id.to_string(), "debit_account_id": "1", "credit_account_id": "2",
           "amount": amount.to_string(), "pending_id": pending_id.to_string(),
           "ledger": 1, "code": 1, "flags": flags, "timeout": timeout})
}

async fn write(http: &reqwest::Client, base: &str, path: &str, events: Vec<Value>) {
    let r = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(raw_body(events))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    for e in v["results"].as_array().unwrap() {
        assert_eq!(e["result"], "ok", "{v}");
    }
}

async fn state_of(http: &reqwest::Client, base: &str, id: u128) -> String {
    let v: Value = common::get_json(http, &format!("{base}/v1/transfers/{id}")).await;
    assert_eq!(v["id"], id.to_string(), "{v}");
    v["state"].as_str().unwrap_or("(none)").to_string()
}

/// Transfer reads (one transfer, and an account's history) carry `state`: a hold is `pending`
/// until posted, voided or expired; a reversed transfer is `reversed`; post and void events are
/// `posted` and `voided`; a plain transfer is `posted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_reads_say_where_each_transfer_stands() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&data_dir(dir.path())).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    let (h, b) = (&http, base.as_str());
    write(
        h,
        b,
        "/v1/accounts",
        vec![account_json(1, 1), account_json(2, 1)],
    )
    .await;
    write(
        h,
        b,
        "/v1/transfers",
        vec![
            transfer(10, &[], 0, 5, 0),
            transfer(11, &["pending"], 0, 5, 0),
            transfer(12, &["pending"], 0, 5, 0),
            transfer(13, &["pending"], 0, 5, 0),
            transfer(14, &["pending"], 0, 5, 1),
            transfer(15, &[], 0, 5, 0),
        ],
    )
    .await;
    for id in [11, 12, 13, 14] {
        assert_eq!(state_of(h, b, id).await, "pending", "hold {id}");
    }
    assert_eq!(state_of(h, b, 10).await, "posted");
    write(
        h,
        b,
        "/v1/transfers",
        vec![
            transfer(20, &["post_pending_transfer"], 11, 0, 0),
            transfer(21, &["void_pending_transfer"], 12, 0, 0),
            // Money goes back: the reversal debits the original's credit account.
            json!({"id": "22", "debit_account_id": "2", "credit_account_id": "1", "amount": "0",
                   "pending_id": "15", "ledger": 1, "code": 1, "flags": ["reversal"]}),
        ],
    )
    .await;
    for (id, state) in [
        (11, "posted"),
        (12, "voided"),
        (13, "pending"),
        (15, "reversed"),
        (20, "posted"),
        (21, "voided"),
        (22, "posted"),
    ] {
        assert_eq!(state_of(h, b, id).await, state, "transfer {id}");
    }
    // Hold 14 expires one second of cluster time after it was made, at the first entry applied
    // after that: keep writing until it has.
    let mut next = 100u128;
    loop {
        next += 1;
        write(h, b, "/v1/transfers", vec![transfer(next, &[], 0, 1, 0)]).await;
        if state_of(h, b, 14).await == "expired" {
            break;
        }
        assert!(next < 100 + 400, "hold 14 never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        state_of(h, b, 13).await,
        "pending",
        "a hold without timeout stays pending"
    );
    // The account's history carries the same states.
    let page: Value =
        common::get_json(&http, &format!("{base}/v1/accounts/1/transfers?limit=1000")).await;
    let states: BTreeMap<String, String> = page["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (id, state) in [
        ("11", "posted"),
        ("12", "voided"),
        ("14", "expired"),
        ("15", "reversed"),
    ] {
        assert_eq!(
            states.get(id).map(String::as_str),
            Some(state),
            "history {id}: {page}"
        );
    }
    running.shutdown().await;
}

/// GET `path` from `base`: the status and the JSON body.
async fn status_and_body(http: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = http.get(format!("{base}{path}")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap())
}

/// `/readyz` is 503 with `no_leader` until the node has a leader, then 200; `/healthz` is alive
/// throughout. (Every reason and threshold: the unit tests of `http::health`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_why_a_node_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_uninitialized(&data_dir(dir.path())).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    let get = |path: &'static str| status_and_body(&http, &base, path);
    let (status, v) = get("/readyz").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["reasons"], json!(["no_leader"]), "{v}");
    assert_eq!(get("/healthz").await.0, 200);
    common::initialize(&running).await;
    let (status, v) = get("/readyz").await;
    assert_eq!((status, v["ready"].clone()), (200, json!(true)), "{v}");
    running.shutdown().await;
}

/// A path id that is not valid percent-encoded UTF-8 answers 400 `invalid_id` with the API's
/// JSON error body, like any malformed id; a leading zero is malformed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_path_ids_answer_json_invalid_id() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&data_dir(dir.path())).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    for path in [
        "/v1/accounts/%ff",
        "/v1/accounts/%ff/transfers",
        "/v1/transfers/%c3%28",
        "/v1/accounts/007",
        "/v1/transfers/x1",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["reason"], "invalid_id", "{path}: {v}");
    }
    running.shutdown().await;
}

/// A node in safe mode (here `root_mismatch`, as divergence detection enters it) refuses writes
/// and linearizable reads with 503 `safe_mode`, still serves stale reads and `/healthz`, says
/// why on `/v1/status`, `/readyz` and the `safe_mode{reason}` gauge, and comes back in safe mode
/// after a restart until the marker file is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_mode_refuses_writes_and_linearizable_reads_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let running = start(&data).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", running.api_addr);
    write(&http, &base, "/v1/accounts", vec![account_json(1, 1)]).await;
    running.node.enter_safe_mode(node::safe_mode::Fault {
        reason: "root_mismatch".into(),
        message: "test fault".into(),
    });
    let check = |base: String| {
        let http = http.clone();
        async move {
            let post_account = |id: u128| {
                http.post(format!("{base}/v1/accounts"))
                    .header("content-type", "application/json")
                    .body(raw_body(vec![account_json(id, 1)]))
                    .send()
            };
            let write = post_account(2).await.unwrap();
            assert_eq!(write.status(), 503);
            let v: Value = write.json().await.unwrap();
            assert_eq!(v["error"]["reason"], "safe_mode", "{v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("root_mismatch"),
                "{v}"
            );
            // A batch whose every event fails prevalidation (id 0) is refused the same way, not
            // answered event by event.
            let invalid = post_account(0).await.unwrap();
            assert_eq!(invalid.status(), 503);
            assert_eq!(
                common::get_status(&http, &format!("{base}/v1/accounts/1")).await,
                503
            );
            assert_eq!(
                common::get_status(&http, &format!("{base}/v1/accounts/1?consistency=stale")).await,
                200,
                "stale reads are still served"
            );
            assert_eq!(
                common::get_status(&http, &format!("{base}/v1/accounts/2?consistency=stale")).await,
                404,
                "the refused write wrote nothing"
            );
            assert_eq!(
                common::get_status(&http, &format!("{base}/healthz")).await,
                200
            );
            let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
            assert_eq!(ready.status(), 503);
            let v: Value = ready.json().await.unwrap();
            assert_eq!(v["safe_mode_reason"], "root_mismatch", "{v}");
            assert!(v["reasons"]
                .as_array()
                .unwrap()
                .contains(&json!("safe_mode")));
            let v: Value = common::get_json(&http, &format!("{base}/v1/status")).await;
            assert_eq!(v["safe_mode_reason"], "root_mismatch", "{v}");
            let metrics = common::get_text(&http, &format!("{base}/metrics")).await;
            assert!(
                metrics.contains("safe_mode{reason=\"root_mismatch\"} 1"),
                "{metrics}"
            );
        }
    };
    check(base).await;
    running.shutdown().await;
    assert!(data.join("safe-mode.json").exists());

    // A restart comes back in safe mode.
    let again = start_uninitialized(&data).await;
    check(format!("http://{}", again.api_addr)).await;
    again.shutdown().await;

    // Removing the marker (once the cause is gone) lets the node start normally.
    std::fs::remove_file(data.join("safe-mode.json")).unwrap();
    let cleared = start_uninitialized(&data).await;
    assert_eq!(cleared.node.safe_mode(), None);
    cleared
        .node
        .raft
        .wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "leader")
        .await
        .unwrap();
    write(
        &http,
        &format!("http://{}", cleared.api_addr),
        "/v1/accounts",
        vec![account_json(3, 1)],
    )
    .await;
    cleared.shutdown().await;
}

/// Send `request` on a fresh connection and read the answer until the node closes it.
async fn raw(addr: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The node may answer and close before it has read everything (a too-long head).
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Requests the HTTP library refuses before routing — a malformed request line, a bad
/// `Content-Length`, a `Transfer-Encoding` other than `chunked`, a header line without a colon,
/// an oversized target, too many headers — each get their status line and are counted in
/// `rejected_total{reason}`; the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_router_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&data_dir(dir.path())).await;
    let addr = running.api_addr.clone();
    let long_target = format!(
        "GET /v1/accounts/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "1".repeat(70_000)
    );
    let many_headers = format!(
        "GET /v1/status HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..120)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bad request line",
            b"GET\x01/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
        ),
        (
            "Content-Length not a number",
            b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
        ),
        (
            "Transfer-Encoding gzip",
            b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
        ),
        (
            "a malformed chunk in the body",
            b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
        ),
        (
            "header line without a colon",
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
        ),
        (
            "target over 65,534 bytes",
            long_target.into_bytes(),
            "414",
            "uri_too_long",
        ),
        (
            "120 headers",
            many_headers.into_bytes(),
            "431",
            "headers_too_large",
        ),
    ];
    for (what, request, status, reason) in cases {
        let before = node::metrics::rejected_count(reason);
        let answer = raw(&addr, &request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {answer:?}"
        );
        // Counted after hyper has written the answer and ended the connection.
        let counted = async {
            while node::metrics::rejected_count(reason) <= before {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), counted)
            .await
            .unwrap_or_else(|_| panic!("{what}: rejected_total{{reason={reason:?}}} not counted"));
    }
    // A declared body over twice `limits.body_bytes_max` is refused at once, before it is sent
    // (the node used to wait for it until the request deadline, then answer 408).
    let answer = raw(
        &addr,
        b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 99999999999\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer:?}");
    assert!(!answer.contains("100 Continue"), "{answer:?}");
    assert!(answer.contains("\"too_large\""), "{answer:?}");
    let ok = raw(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok:?}");
    running.shutdown().await;
}

/// A snapshot built on request shows in `snapshot_duration_seconds{what="build",outcome="ok"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_builds_are_measured() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&data_dir(dir.path())).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    write(&http, &base, "/v1/accounts", vec![account_json(1, 1)]).await;
    let count = |text: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("snapshot_duration_seconds_count")
                    && l.contains("what=\"build\"")
                    && l.contains("outcome=\"ok\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let scrape = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = count(&scrape().await);
    let r = http
        .post(format!("{base}/v1/admin/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let measured = async {
        while count(&scrape().await) <= before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), measured)
        .await
        .expect("the build is measured");
    running.shutdown().await;
}

/// The console's assets are the committed bundle, served with their content types and the
/// console's security headers; `/v1/cluster` (what the console's cluster page reads) carries
/// each member's own status, latest signed checkpoint and keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_its_security_headers_and_the_cluster_view() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&data_dir(dir.path())).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    let dist = test_support::paths::package_dir(env!("CARGO_MANIFEST_DIR")).join("console-dist");
    for (path, file, content_type) in [
        ("/console", "index.html", "text/html; charset=utf-8"),
        ("/console/", "index.html", "text/html; charset=utf-8"),
        (
            "/console/app.js",
            "app.js",
            "text/javascript; charset=utf-8",
        ),
        ("/console/app.css", "app.css", "text/css; charset=utf-8"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let headers = r.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        let csp = header("content-security-policy");
        assert_eq!(csp, node::http::console::CONTENT_SECURITY_POLICY, "{path}");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        let body = r.bytes().await.unwrap();
        assert_eq!(body, std::fs::read(dist.join(file)).unwrap(), "{path}");
    }
    // The page loads its script from a file (no inline script) and names no other host.
    let page = std::fs::read_to_string(dist.join("index.html")).unwrap();
    assert!(page.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    assert_eq!(
        common::get_status(&http, &format!("{base}/console/missing.js")).await,
        404
    );

    // The write creates a leaf, so there is a checkpoint to show.
    write(&http, &base, "/v1/accounts", vec![account_json(1, 1)]).await;
    let v: Value = common::get_json(&http, &format!("{base}/v1/cluster")).await;
    assert_eq!(v["node_id"], 1, "{v}");
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{v}");
    let m = &members[0];
    assert_eq!(m["id"], 1);
    assert_eq!(m["status"]["ok"]["role"], "leader", "{m}");
    assert_eq!(m["status"]["ok"]["tree_size"], "1", "{m}");
    assert_eq!(m["checkpoint"]["ok"]["tree_size"], "1", "{m}");
    assert_eq!(
        m["checkpoint"]["ok"]["root"], m["status"]["ok"]["root"],
        "{m}"
    );
    let kid = m["checkpoint"]["ok"]["kid"].as_str().unwrap();
    assert!(m["keys"]["ok"]["keys"][kid].is_string(), "{m}");
}

/// Bad input is answered 400 whatever the cluster's state: a node with no leader checks the path
/// and query of a linearizable read before it looks for a leader, and only a valid read gets 503
/// `no_leader`. (A cluster test once saw `limit=abc` answered `no_leader` during an election.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reads_are_rejected_before_any_leader_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_uninitialized(&data_dir(dir.path())).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let answer = status_and_body(&http, &base, path);
        async move {
            let (status, v) = answer.await;
            (status, v["error"]["reason"].as_str().map(str::to_string))
        }
    };
    for (path, reason) in [
        ("/v1/accounts/1/transfers?limit=abc", "invalid_query"),
        ("/v1/accounts/1/transfers?side=up", "invalid_query"),
        (
            "/v1/accounts/1/transfers?from=1&timestamp_min=2",
            "invalid_query",
        ),
        ("/v1/accounts?limit=0", "invalid_query"),
        ("/v1/transfers?side=debits", "invalid_query"),
        ("/v1/transfers?code=65536", "invalid_query"),
        (
            "/v1/accounts/1/balances?as_of_leaf=1&as_of_timestamp=1",
            "invalid_query",
        ),
        ("/v1/accounts/1/balance-history?ledger=1", "invalid_query"),
        (
            "/v1/accounts/1/transfers?consistency=sometimes",
            "invalid_query",
        ),
        ("/v1/accounts/0x10", "invalid_id"),
        ("/v1/transfers/-1", "invalid_id"),
        ("/v1/accounts/abc/balances", "invalid_id"),
    ] {
        assert_eq!(get(path).await, (400, Some(reason.to_string())), "{path}");
    }
    for path in [
        "/v1/accounts/1",
        "/v1/transfers/1",
        "/v1/accounts?limit=5",
        "/v1/accounts/1/transfers?side=debits&limit=10",
    ] {
        assert_eq!(get(path).await, (503, Some("no_leader".into())), "{path}");
    }
    running.shutdown().await;
}
