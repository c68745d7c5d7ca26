//! The web console end to end, in headless Chromium against a real 3-node cluster: the console
//! loads with no console error and no request leaving the node, shows all three members with the
//! same root, finds an account and a transfer written through the SDK, verifies the transfer's
//! proof in the browser (and an export bundle offline), and, served through a proxy that alters
//! one hash of every inclusion proof, reports the proof as failed; through a proxy that alters
//! one hash of every consistency proof, a browser that remembers an earlier checkpoint refuses
//! the node's newer one as a fork.
//!
//! The browser is driven by `console/e2e/run.mjs` (Node.js, `playwright-core` from
//! `console/package-lock.json`, Debian's `/usr/bin/chromium`); `scripts/install-deps.sh`
//! installs all three. Screenshots are kept in `target/debug/console-e2e/`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::cluster::{Cluster, SERIAL};
use test_support::events::{accounts, transfer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest request head the proxy reads (the browser's GETs are well under 8 KiB).
const REQUEST_HEAD_BYTES_MAX: usize = 64 * 1024;

fn repo_root() -> PathBuf {
    test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR"))
}

/// `target/debug/console-e2e/`, next to the binaries the test runs.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("console-e2e");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Alter one hash of a proof answer (inclusion: `proof.path`, consistency: `path`): the first
/// path element gets another last digit.
fn tamper(body: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let path = if v.get("proof").is_some() {
        &mut v["proof"]["path"]
    } else {
        &mut v["path"]
    };
    let first = path.get_mut(0)?;
    let mut hash = first.as_str()?.to_string();
    let last = hash.pop()?;
    hash.push(if last == '0' { '1' } else { '0' });
    *first = Value::String(hash);
    serde_json::to_vec(&v).ok()
}

/// A plain-HTTP proxy on loopback in front of `upstream` (HTTPS): every GET is relayed, and
/// every answer to a path starting with `lie_on` has one hash altered (counted in `tampered`).
/// One request per connection (`Connection: close`), which is all the console needs.
async fn tampering_proxy(
    lie_on: &'static str,
    upstream: String,
    http: reqwest::Client,
    tampered: Arc<AtomicUsize>,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (http, upstream, tampered) = (http.clone(), upstream.clone(), tampered.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    if head.len() > REQUEST_HEAD_BYTES_MAX {
                        return;
                    }
                }
                let line = String::from_utf8_lossy(&head);
                let mut parts = line.split_whitespace();
                let (Some("GET"), Some(path)) = (parts.next(), parts.next()) else {
                    let _ = conn
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                };
                let Ok(answer) = http.get(format!("{upstream}{path}")).send().await else {
                    let _ = conn
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                };
                let status = answer.status().as_u16();
                let mut out = format!("HTTP/1.1 {status} Relayed\r\n");
                for (name, value) in answer.headers() {
                    let skip = ["content-length", "connection", "transfer-encoding"];
                    if !skip.contains(&name.as_str()) {
                        if let Ok(value) = value.to_str() {
                            out.push_str(&format!("{name}: {value}\r\n"));
                        }
                    }
                }
                let mut body = answer.bytes().await.unwrap_or_default().to_vec();
                if path.starts_with(lie_on) && status == 200 {
                    if let Some(altered) = tamper(&body) {
                        body = altered;
                        tampered.fetch_add(1, Ordering::SeqCst);
                    }
                }
                out.push_str(&format!(
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                ));
                let _ = conn.write_all(out.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

/// Every node's checkpoint keys in one keys file (`{"cluster_id", "keys", "history"}`, the shape
/// `ronctl keys` writes).
async fn keys_file(c: &Cluster, path: &Path) {
    let mut keys = serde_json::Map::new();
    let mut history = Vec::new();
    for id in 1..=3 {
        let (code, v) = c.get(id, "/v1/checkpoints/keys").await.expect("keys");
        assert_eq!(code, 200, "{v}");
        keys.extend(v["keys"].as_object().expect("keys").clone());
        history.extend(v["history"].as_array().cloned().unwrap_or_default());
    }
    assert_eq!(keys.len(), 3, "one key per node");
    let file =
        json!({"cluster_id": test_support::cluster::CLUSTER_ID, "keys": keys, "history": history});
    std::fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).expect("keys file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_cluster_and_verifies_proofs_in_headless_chromium() {
    let _serial = SERIAL.lock().await;
    let runner = repo_root().join("console/e2e/run.mjs");
    assert!(
        repo_root()
            .join("console/node_modules/playwright-core")
            .exists(),
        "console/node_modules is missing: run `npm ci` in console/ (scripts/install-deps.sh with INSTALL_TEST_DEPS=1 does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: apt-get install chromium chromium-driver (scripts/install-deps.sh with INSTALL_TEST_DEPS=1 does)"
    );

    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    let client =
        ron_ledger_client::Client::new(c.client_config((1..=3).map(|id| c.node(id).api.clone())))
            .expect("client");
    let created = client
        .create_accounts(accounts(1..=4))
        .await
        .expect("accounts");
    assert!(
        created
            .iter()
            .all(|o| o.result == ledger::CreateAccountResult::Ok),
        "{created:?}"
    );
    // What a browser verified earlier: node 1's checkpoint of the 4 accounts.
    let (code, early) = c
        .get(1, "/v1/checkpoints/latest")
        .await
        .expect("checkpoint");
    assert_eq!((code, &early["tree_size"]), (200, &json!("4")), "{early}");
    let transfers: Vec<_> = (100..110u128)
        .map(|id| transfer(id, 1 + id % 2, 3 + id % 2, id))
        .collect();
    let written = client.create_transfers(transfers).await.expect("transfers");
    assert!(
        written
            .iter()
            .all(|o| o.result == ledger::CreateTransferResult::Ok),
        "{written:?}"
    );
    let (_, root) = c.converged(&[1, 2, 3]).await;

    let dir = c.dir.path().to_path_buf();
    let keys = dir.join("console-keys.json");
    keys_file(&c, &keys).await;
    let (code, bundle) = c.get(1, "/v1/export?from=0&to=14").await.expect("export");
    assert_eq!(code, 200, "{bundle}");
    let bundle_file = dir.join("bundle.json");
    std::fs::write(&bundle_file, serde_json::to_vec(&bundle).unwrap()).expect("bundle");

    let tampered = Arc::new(AtomicUsize::new(0));
    let plain = test_support::https::client(
        &c.pki.join("ca.pem"),
        None,
        None,
        Duration::from_secs(15),
        test_support::https::Alpn::None,
    );
    let (proxy, proxy_task) = tampering_proxy(
        "/v1/proofs/inclusion",
        c.url(1, ""),
        plain.clone(),
        tampered.clone(),
    )
    .await;
    let forked = Arc::new(AtomicUsize::new(0));
    let (fork_proxy, fork_proxy_task) = tampering_proxy(
        "/v1/proofs/consistency",
        c.url(1, ""),
        plain,
        forked.clone(),
    )
    .await;

    let shots = screenshot_dir();
    let certs: Vec<String> = (1..=3)
        .map(|id| c.pki.join(format!("node-{id}.pem")).display().to_string())
        .collect();
    let started = Instant::now();
    // The script bounds each wait itself; `timeout` bounds the whole run (Chromium included).
    let mut run = std::process::Command::new("timeout");
    run.args(["--kill-after=10", "180", "node"])
        .arg(&runner)
        .current_dir(repo_root().join("console"))
        .env("CONSOLE_E2E_NODE", c.url(1, ""))
        .env("CONSOLE_E2E_PROXY", &proxy)
        .env("CONSOLE_E2E_FORK_PROXY", &fork_proxy)
        .env("CONSOLE_E2E_REMEMBER", early.to_string())
        .env("CONSOLE_E2E_CERTS", certs.join(":"))
        .env("CONSOLE_E2E_KEYS", &keys)
        .env("CONSOLE_E2E_BUNDLE", &bundle_file)
        .env("CONSOLE_E2E_ACCOUNT", "2")
        .env("CONSOLE_E2E_TRANSFER", "101")
        .env("CONSOLE_E2E_SHOTS", &shots);
    let out = tokio::task::spawn_blocking(move || run.output())
        .await
        .expect("join")
        .expect("run node");
    proxy_task.abort();
    fork_proxy_task.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "browser run took {:?}; screenshots in {}",
        started.elapsed(),
        shots.display()
    );
    assert!(out.status.success(), "run.mjs: {stdout}\n{stderr}");
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("run.mjs printed no result ({e}): {stdout}\n{stderr}"));
    assert!(r["error"].is_null(), "browser run failed: {r}");

    // Nothing left the node, and the page logged no error.
    assert_eq!(r["offHost"], json!([]), "{r}");
    assert_eq!(r["consoleErrors"], json!([]), "{r}");
    assert_eq!(r["failedRequests"], json!([]), "{r}");

    // All three members, each with the root the nodes converged on.
    let members = r["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{r}");
    for m in members {
        assert_eq!(m["root"], root, "{r}");
    }
    assert_eq!(
        members.iter().filter(|m| m["role"] == "leader").count(),
        1,
        "{r}"
    );
    assert!(
        r["agreement"]
            .as_str()
            .unwrap()
            .starts_with("All 3 members have the same root"),
        "{r}"
    );
    assert_eq!(r["keys"], 3, "{r}");

    // The account and the transfer the SDK wrote.
    let account = r["account"].as_str().expect("account");
    assert!(account.contains("transfer 101"), "{account}");
    let transfer_page = r["transfer"].as_str().expect("transfer");
    assert!(transfer_page.contains("posted"), "{transfer_page}");
    assert!(transfer_page.contains("account 2"), "{transfer_page}");

    // The transfer's proof verifies in the browser, step by step, and the browser remembers
    // the checkpoint; every node's latest checkpoint verifies; the bundle verifies offline.
    assert_eq!(r["verify"]["outcome"], "verified", "{r}");
    let steps: Vec<&str> = r["verify"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for step in [
        "checkpoint signature",
        "consistency",
        "leaf names it",
        "inclusion path",
    ] {
        assert!(
            steps.iter().any(|s| s.starts_with(step)),
            "{step}: {steps:?}"
        );
    }
    let remembered: Value =
        serde_json::from_str(r["remembered"].as_str().expect("remembered")).unwrap();
    assert_eq!(remembered["cluster_id"], test_support::cluster::CLUSTER_ID);
    assert_eq!(r["checkpointsVerified"], 3, "{r}");
    assert_eq!(r["bundle"]["outcome"], "verified", "{r}");
    assert!(
        r["bundle"]["text"]
            .as_str()
            .unwrap()
            .starts_with("OK: 14 events [0, 14)"),
        "{r}"
    );

    // Through the lying proxy the same proof is refused, naming the failed check.
    assert!(
        tampered.load(Ordering::SeqCst) >= 1,
        "the proxy altered a proof"
    );
    assert_eq!(r["tampered"]["outcome"], "failed", "{r}");
    let last = r["tampered"]["steps"]
        .as_array()
        .and_then(|s| s.last())
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        last.starts_with("InclusionFailed") && last.contains("expected root"),
        "{r}"
    );

    // On a phone's viewport the page fits its width (wide tables scroll inside their box).
    assert_eq!(r["phoneOverflow"], false, "{r}");
    // A browser that remembers the 4-leaf checkpoint, served a consistency proof with one hash
    // altered, refuses the node's 14-leaf checkpoint as a fork (what it remembers is kept).
    assert!(
        forked.load(Ordering::SeqCst) >= 1,
        "the proxy altered a consistency proof"
    );
    assert_eq!(r["forked"]["outcome"], "failed", "{r}");
    let last = r["forked"]["steps"]
        .as_array()
        .and_then(|s| s.last())
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        last.starts_with("Fork") && last.contains("size 14") && last.contains("accepted size 4"),
        "{r}"
    );
    let kept: Value = serde_json::from_str(r["forkedRemembered"].as_str().expect("kept")).unwrap();
    assert_eq!(kept["tree_size"], "4", "{r}");

    for name in [
        "cluster",
        "account",
        "transfer",
        "proofs",
        "phone-cluster",
        "tampered",
        "forked",
    ] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name}.png is a PNG");
    }
}
