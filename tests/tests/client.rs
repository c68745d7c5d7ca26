//! The SDK and `ronctl` against real 3-node clusters (real `ron-ledger` processes).

use ledger::{AccountFlags, CreateTransferResult as T};
use ron_ledger_client::{Client, ClientConfig, Consistency, Error};
use std::process::Command;
use std::time::{Duration, Instant};
use test_support::cluster::{self, ronctl_binary, Cluster, SERIAL};
use test_support::events::{accounts, transfer};
use test_support::ports::free_port;
use test_support::process::outcome;
use test_support::wait::poll;

fn client_for(c: &Cluster, ids: &[u64]) -> Client {
    let seeds: Vec<String> = ids.iter().map(|id| c.node(*id).api.clone()).collect();
    Client::new(c.client_config(seeds)).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_survives_leader_kill_and_commits_every_transfer_once() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    let client = client_for(&c, &[1, 2, 3]);
    let r = client.create_accounts(accounts(1..=6)).await.unwrap();
    assert!(r.iter().all(|x| x.result.is_success()));
    let leader = c.leader(&[1, 2, 3]).await;
    assert_eq!(
        client.cached_leader().as_deref(),
        Some(c.node(leader).api.as_str()),
        "writes go straight to the leader"
    );

    // 300 transfers from 6 concurrent streams through the auto-batcher.
    let mut tasks = Vec::new();
    for s in 0..6u128 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut moved = Vec::new();
            for k in 0..50u128 {
                let id = 1_000 + s * 100 + k;
                let (d, cr) = (1 + s, 1 + (s + 1) % 6);
                let r = client
                    .submit_transfer(transfer(id, d, cr, 1))
                    .await
                    .expect("acknowledged");
                assert_eq!(r.result, T::Ok, "transfer {id}");
                moved.push((d, cr));
            }
            moved
        }));
    }
    // Kill the leader while the streams run.
    poll(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async {
            let found = client
                .lookup_transfer(1_010, Consistency::Linearizable)
                .await;
            if matches!(found, Ok(Some(_))) {
                Ok(())
            } else {
                Err("no progress")
            }
        },
    )
    .await;
    c.kill(leader);
    let mut expected = [0u128; 7];
    let mut credited = [0u128; 7];
    for t in tasks {
        for (d, cr) in t.await.expect("stream") {
            expected[d as usize] += 1;
            credited[cr as usize] += 1;
        }
    }
    assert_ne!(
        client.cached_leader().as_deref(),
        Some(c.node(leader).api.as_str()),
        "found the new leader"
    );
    for id in 1..=6u128 {
        let a = client
            .lookup_account(id, Consistency::Linearizable)
            .await
            .unwrap()
            .expect("account");
        assert_eq!(
            (a.debits_posted, a.credits_posted),
            (expected[id as usize], credited[id as usize]),
            "account {id}: exactly once"
        );
    }
    for s in 0..6u128 {
        for k in 0..50u128 {
            assert!(client
                .lookup_transfer(1_000 + s * 100 + k, Consistency::Linearizable)
                .await
                .unwrap()
                .is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_seed_rejections_and_membership_changes() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(4, "");
    for id in 1..=4 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    // The first seed is dead.
    let dead = format!("127.0.0.1:{}", free_port());
    let client = Client::new(c.client_config([dead, c.node(2).api.clone()])).unwrap();
    let mut wallet = accounts(1..=2);
    wallet[1].flags = AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
    assert!(client
        .create_accounts(wallet)
        .await
        .unwrap()
        .iter()
        .all(|x| x.result.is_success()));

    // A ledger rejection is an event result, not an error, and is not retried into success.
    let r = client
        .create_transfers(vec![transfer(1, 2, 1, 5)])
        .await
        .unwrap();
    assert_eq!(r[0].result, T::ExceedsCredits);
    // A request the server refuses is a typed error naming the reason, returned at once.
    let start = Instant::now();
    let e = client.add_learner(0, "x", "y").await.unwrap_err();
    assert!(
        matches!(&e, Error::Rejected { status: 400, reason, .. } if reason == "invalid_request"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a 4xx is not retried"
    );
    // Client-side bounds are checked before sending.
    assert!(matches!(
        client.create_transfers(Vec::new()).await,
        Err(Error::Invalid(_))
    ));

    // Membership changes: add node 4, then drop node 2 (the only live seed) and stop it.
    client
        .add_learner(4, &c.node(4).api, &c.node(4).peer)
        .await
        .unwrap();
    client.change_membership(&[1, 3, 4]).await.unwrap();
    c.kill(2);
    let r = client
        .create_transfers(vec![transfer(2, 1, 2, 7)])
        .await
        .expect("the client followed the membership change");
    assert_eq!(r[0].result, T::Ok);
    let a = client
        .lookup_account(2, Consistency::Linearizable)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.credits_posted, 7);
}

fn ronctl(env: &[(&str, String)], seeds: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ronctl_binary())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("--seeds")
        .arg(seeds)
        .args(args)
        .output()
        .expect("run ronctl");
    outcome(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ronctl_commands_output_and_exit_codes() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    let seeds = format!("{},{}", c.node(1).api, c.node(3).api);
    let env = c.ronctl_env();
    let (code, out, err) = ronctl(
        &env,
        &seeds,
        &[
            "account", "create", "--id", "1", "--ledger", "1", "--code", "1",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok"), "{out}");
    let (code, _, _) = ronctl(
        &env,
        &seeds,
        &[
            "account",
            "create",
            "--id",
            "2",
            "--ledger",
            "1",
            "--code",
            "1",
            "--flags",
            "debits_must_not_exceed_credits",
        ],
    );
    assert_eq!(code, 0);
    let (code, out, _) = ronctl(
        &env,
        &seeds,
        &[
            "transfer", "create", "--id", "10", "--debit", "1", "--credit", "2", "--amount", "25",
            "--ledger", "1", "--code", "1",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // Insufficient funds: processed, but not ok → exit 1, the code printed.
    let (code, out, _) = ronctl(
        &env,
        &seeds,
        &[
            "transfer", "create", "--id", "11", "--debit", "2", "--credit", "1", "--amount", "26",
            "--ledger", "1", "--code", "1",
        ],
    );
    assert_eq!(code, 1);
    assert!(out.contains("exceeds_credits"), "{out}");
    let (code, out, _) = ronctl(&env, &seeds, &["--json", "account", "get", "2"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["credits_posted"], "25");
    let (code, out, _) = ronctl(&env, &seeds, &["account", "history", "1"]);
    assert_eq!(code, 0);
    assert!(out.lines().count() >= 2 && out.contains("25"), "{out}");
    // A reader that goes away (`ronctl … | head`) ends ronctl quietly, exit 141, no panic.
    let mut child = Command::new(ronctl_binary())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["--seeds", &seeds, "account", "history", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ronctl");
    drop(child.stdout.take());
    let closed = child.wait_with_output().expect("ronctl ends");
    let err = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(closed.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let (code, out, _) = ronctl(&env, &seeds, &["cluster", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("leader") && out.lines().count() >= 4, "{out}");
    // Import: CSV with a summary by result code.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let mut text = String::from("id,debit_account_id,credit_account_id,amount,ledger,code,flags\n");
    for i in 0..50 {
        text.push_str(&format!("{},1,2,1,1,1,\n", 100 + i));
    }
    text.push_str("200,2,1,1000,1,1,\n");
    std::fs::write(&csv, text).unwrap();
    let (code, out, _) = ronctl(
        &env,
        &seeds,
        &["--json", "transfer", "import", csv.to_str().unwrap()],
    );
    assert_eq!(code, 1, "one row fails → exit 1: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["results"]["ok"], 50);
    assert_eq!(v["results"]["exceeds_credits"], 1);
    // Usage errors → 2; unknown account → 3; nobody reachable → 4.
    assert_eq!(
        ronctl(&env, &seeds, &["transfer", "create", "--id", "x"]).0,
        2
    );
    assert_eq!(ronctl(&env, &seeds, &["account", "get", "999"]).0, 3);
    let dead = format!("127.0.0.1:{}", free_port());
    let (code, _, err) = ronctl(&env, &dead, &["--retry-for", "2", "account", "get", "1"]);
    assert_eq!(code, 4, "{err}");
    // bench: a small run, JSON result written.
    let out_file = dir.path().join("bench.json");
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--transfers",
            "2000",
            "--concurrency",
            "2",
            "--batch",
            "250",
            "--accounts",
            "50",
            "--out",
            out_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, _, err) = ronctl(&env, &seeds, &args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&out_file).unwrap()).unwrap()
    };
    let v = bench(&[]);
    assert_eq!(v["transfers"], 2000);
    assert!(v["transfers_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["request_latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    // Open loop: 8 requests of 250 offered at 1,000 transfers/s are due 0.25 s apart, so the
    // run cannot end before the last is due (1.75 s after the first).
    let v = bench(&["--rate", "1000"]);
    assert_eq!(v["offered_rate"], 1000.0);
    assert!(v["seconds"].as_f64().unwrap() >= 1.75, "{v}");
    assert_eq!(v["requests"], 8, "{v}");
    for bad in ["0", "-5", "NaN", "inf", "1e-300"] {
        assert_eq!(
            ronctl(&env, &seeds, &["bench", "--rate", bad]).0,
            2,
            "--rate {bad}"
        );
    }
}

/// `ron-ledger certs` writes a private PKI and refuses to overwrite it; `ron-ledger start` with
/// `[tls] enabled = true` serves HTTPS only; ronctl and the SDK reach it with the CA (and a
/// client identity), and fail without it.
#[tokio::test]
async fn certs_start_with_tls_and_ronctl_and_sdk_over_https() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    let certs = |extra: &[&str]| {
        Command::new(cluster::binary())
            .args(["certs", "--out"])
            .arg(&pki)
            .args(["--nodes", "1", "--days", "2"])
            .args(extra)
            .output()
            .expect("run certs")
    };
    let out = certs(&[]);
    assert!(out.status.success(), "{out:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&pki), 0o700);
    for f in [
        "ca.pem",
        "ca.key",
        "node-1.pem",
        "node-1.key",
        "client-ca.pem",
        "client-ca.key",
        "client.pem",
        "client.key",
        "caps.keys",
    ] {
        assert_eq!(mode(&pki.join(f)), 0o600, "{f}");
    }
    let again = certs(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("ca.pem"));
    // Renewing the certificates keeps the capability key ring: minted tokens stay valid.
    let ring = std::fs::read(pki.join("caps.keys")).unwrap();
    assert!(certs(&["--force"]).status.success());
    assert_eq!(std::fs::read(pki.join("caps.keys")).unwrap(), ring);
    // A directory holding only the key ring gets the certificates and keeps the ring.
    for f in std::fs::read_dir(&pki).unwrap() {
        let path = f.unwrap().path();
        if path.file_name() != Some(std::ffi::OsStr::new("caps.keys")) {
            std::fs::remove_file(path).unwrap();
        }
    }
    let out = certs(&[]);
    assert!(out.status.success(), "{out:?}");
    assert!(pki.join("ca.pem").exists());
    assert_eq!(std::fs::read(pki.join("caps.keys")).unwrap(), ring);

    let (api, peer) = (free_port(), free_port());
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "node_id = 1\ncluster_id = \"{1}\"\namnesia = true\napi_addr = \"127.0.0.1:{api}\"\npeer_addr = \"127.0.0.1:{peer}\"\n\
             [log]\nformat = \"text\"\nlevel = \"warn\"\n\
             [auth]\nkey_file = \"{0}/caps.keys\"\n\
             [tls]\nenabled = true\ncert_file = \"{0}/node-1.pem\"\nkey_file = \"{0}/node-1.key\"\nca_file = \"{0}/ca.pem\"\nclient_ca_file = \"{0}/client-ca.pem\"\n",
            pki.display(),
            cluster::CLUSTER_ID,
        ),
    )
    .unwrap();
    // Writes need a capability: one minted from the key ring `certs` wrote.
    let token_file = dir.path().join("writer.token");
    test_support::files::write_private(
        &token_file,
        &cluster::mint(
            &pki,
            vec![ledger::capability::Caveat::Ops(
                [ledger::capability::Op::CreateAccounts]
                    .into_iter()
                    .collect(),
            )],
        ),
    );
    let env = vec![("RONCTL_TOKEN_FILE", token_file.display().to_string())];
    let mut child = Command::new(cluster::binary())
        .args(["start", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    let seeds = format!("https://127.0.0.1:{api}");
    let (ca, cert, key) = (
        pki.join("ca.pem"),
        pki.join("client.pem"),
        pki.join("client.key"),
    );
    let tls_args = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--ca".into(),
            ca.display().to_string(),
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    poll(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async {
            let args = tls_args(&["--retry-for", "1", "cluster", "status"]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = ronctl(&env, &seeds, &args);
            if code == 0 {
                Ok(())
            } else {
                Err(format!("{out}{err}"))
            }
        },
    )
    .await;
    let args = tls_args(&[
        "account", "create", "--id", "1", "--ledger", "1", "--code", "1",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = ronctl(&env, &seeds, &args);
    assert_eq!(code, 0, "{out}{err}");
    // Without the CA, https is refused by the client; cleartext gets no answer from the node.
    let (code, _, err) = ronctl(&env, &seeds, &["account", "get", "1"]);
    assert_ne!(code, 0, "{err}");
    let (code, _, _) = ronctl(
        &env,
        &format!("127.0.0.1:{api}"),
        &["--retry-for", "1", "account", "get", "1"],
    );
    assert_ne!(code, 0);

    let mut config = ClientConfig::new([seeds.clone()]);
    config.tls = Some(ron_ledger_client::ClientTls::from_files(&ca, None).expect("ca"));
    let client = Client::new(config).expect("client");
    let account = client
        .lookup_account(1, Consistency::Linearizable)
        .await
        .expect("read over https");
    assert!(account.is_some());
    let _ = child.kill();
    let _ = child.wait();
}

/// The README's SDK example (`client/examples/quickstart.rs`) works against a cluster like the
/// README's own: HTTPS with mutual TLS and capabilities, with a writer-only token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sdk_example_runs_against_a_tls_and_capabilities_cluster() {
    use ledger::capability::{Caveat, Op};
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    let writer = cluster::mint(
        &c.pki,
        vec![Caveat::Ops(
            [Op::CreateAccounts, Op::CreateTransfers].into(),
        )],
    );
    let token_file = c.dir.path().join("writer.token");
    test_support::files::write_private(&token_file, &writer);
    let seeds = (1..=3)
        .map(|id| c.node(id).api.clone())
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new(cluster::example_binary("quickstart"))
        .arg(&c.pki)
        .arg(&token_file)
        .arg(&seeds)
        .output()
        .expect("run the quickstart example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "quickstart failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("posted at leaf"), "{stdout}");
    assert!(stdout.contains("verified: leaf"), "{stdout}");
}
