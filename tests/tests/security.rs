//! Security with real processes: a 3-node cluster on TLS with mutual TLS between nodes and
//! capabilities, JSON logs at debug level. A workload with good and bad capabilities, a
//! revocation and signed checkpoints runs; then every log line is scanned for secret material —
//! tokens, MACs, capability root keys, checkpoint signing seeds, TLS private keys, checkpoint
//! signatures — none may appear, while the lines that must be there carry `corr_id`, `peer`,
//! `reason` and `kid`.

use base64::Engine;
use ledger::capability::{Caveat, Op};
use serde_json::{json, Value};
use std::time::Duration;
use test_support::cluster::{self, Cluster, SERIAL};
use test_support::events::{accounts_json, transfer_body};
use test_support::process::outcome;
use test_support::wait::wait_for;
use test_support::{clock, tokens};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The MAC of a token: the last 32 bytes of its binary form.
fn mac_of(token: &str) -> Vec<u8> {
    let body = token.strip_prefix("rlcap1.").expect("token prefix");
    let bin = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .expect("base64url");
    bin[bin.len() - 32..].to_vec()
}

/// Every secret form worth looking for: the text itself, plus hex and base64 of raw bytes.
fn forms(label: &str, raw: &[u8], out: &mut Vec<(String, String)>) {
    out.push((format!("{label} (hex)"), hex(raw)));
    out.push((
        format!("{label} (base64)"),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw),
    ));
    out.push((
        format!("{label} (base64url)"),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
    ));
}

async fn post_as(c: &Cluster, id: u64, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = c
        .http
        .post(c.url(id, path))
        .header("authorization", format!("Bearer {token}"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_carry_tokens_macs_keys_or_signatures() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::with_log(
        3,
        "[checkpoint]\ninterval_events = 5\n",
        "json",
        "debug,openraft=info,h2=info,hyper=info,hyper_util=info,rustls=info,reqwest=info,tower=info",
    );
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
    let narrow = cluster::mint(
        &c.pki,
        vec![Caveat::DebitAccounts([1].into()), Caveat::MaxAmount(10)],
    );
    let expired = {
        // Expired one second after it was issued, an hour ago.
        let now = clock::now_secs();
        let ring = tokens::read_ring(&c.pki.join("caps.keys"));
        tokens::mint(
            ring.minting_key().unwrap(),
            [9; 16],
            now - 3600,
            1,
            "test",
            vec![],
        )
        .encode()
    };
    let mut forged = writer.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let tokens = [
        ("admin token", c.token.clone()),
        ("writer token", writer.clone()),
        ("narrow token", narrow.clone()),
        ("expired token", expired.clone()),
        ("forged token", forged.clone()),
    ];

    // Workload: accepted writes through every node, refusals of every kind, a revocation.
    let accounts = accounts_json(1..=2);
    assert_eq!(
        post_as(&c, 2, &writer, "/v1/accounts", accounts).await.0,
        200
    );
    for i in 0..12u128 {
        let node = 1 + (i as u64 % 3);
        let (status, body) = post_as(
            &c,
            node,
            &writer,
            "/v1/transfers",
            transfer_body(100 + i, 1, 2, 5),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        post_as(
            &c,
            1,
            &narrow,
            "/v1/transfers",
            transfer_body(200, 1, 2, 10)
        )
        .await
        .0,
        200
    );
    let refusals = [
        (&narrow, transfer_body(201, 2, 1, 1), "policy_denied"),
        (&narrow, transfer_body(202, 1, 2, 11), "policy_denied"),
        (&expired, transfer_body(203, 1, 2, 1), "cap_expired"),
        (&forged, transfer_body(204, 1, 2, 1), "cap_invalid"),
    ];
    for (token, body, reason) in refusals {
        for node in 1..=3 {
            let (status, answer) = post_as(&c, node, token, "/v1/transfers", body.clone()).await;
            assert_eq!(
                answer["error"]["reason"], reason,
                "node {node}: {status} {answer}"
            );
        }
    }
    let narrow_id = ledger::capability::Token::decode(&narrow).unwrap().id_hex();
    let (status, body) = c
        .post(
            3,
            "/v1/admin/revocations",
            json!({"token_id": narrow_id, "kid": "k1", "reason": "lost"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for(
        "every node denies the revoked token",
        Duration::from_secs(10),
        || async {
            let mut all = true;
            for node in 1..=3 {
                let (_, answer) = post_as(
                    &c,
                    node,
                    &narrow,
                    "/v1/transfers",
                    transfer_body(205, 1, 2, 1),
                )
                .await;
                all &= answer["error"]["reason"] == "cap_revoked";
            }
            all
        },
    )
    .await;
    // A write sent to a follower is forwarded to the leader under the client's correlation id:
    // the leader's lines for it name the same `corr_id`.
    let leader = c.leader(&[1, 2, 3]).await;
    let follower = if leader == 1 { 2 } else { 1 };
    let forwarded_corr_id = "fwd-corr-7f3a";
    let r = c
        .http
        .post(c.url(follower, "/v1/transfers"))
        .header("authorization", format!("Bearer {writer}"))
        .header("x-request-id", forwarded_corr_id)
        .json(&transfer_body(300, 1, 2, 1))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(forwarded_corr_id)
    );
    // Signed checkpoints: their signatures are secrets-adjacent material that must stay out of logs.
    let (status, cp) = c.post(1, "/v1/admin/checkpoint", json!({})).await.unwrap();
    assert_eq!(status, 200, "{cp}");
    let mut signatures = Vec::new();
    for node in 1..=3 {
        let (status, list) = c.get(node, "/v1/checkpoints").await.unwrap();
        assert_eq!(status, 200, "{list}");
        for cp in list["checkpoints"].as_array().expect("checkpoint list") {
            signatures.push(cp["signature"].as_str().expect("signature").to_string());
        }
    }
    assert!(!signatures.is_empty());
    for id in 1..=3 {
        c.kill(id);
    }

    // Everything secret, in every likely encoding.
    let mut secrets: Vec<(String, String)> = Vec::new();
    for (label, token) in &tokens {
        secrets.push((label.to_string(), token.clone()));
        let body = token.trim_start_matches("rlcap1.");
        // Any long stretch of the token, not just the whole of it.
        secrets.push((
            format!("{label} (middle)"),
            body[body.len() / 3..body.len() / 3 + 24].to_string(),
        ));
        forms(&format!("{label} MAC"), &mac_of(token), &mut secrets);
    }
    let ring: Value =
        serde_json::from_str(&std::fs::read_to_string(c.pki.join("caps.keys")).unwrap()).unwrap();
    for k in ring["keys"].as_array().expect("keys") {
        let key = k["key"].as_str().expect("key hex").to_string();
        secrets.push(("capability root key".into(), key));
    }
    for id in 1..=3 {
        let file = c.dir.path().join(format!("node-{id}/checkpoint.key"));
        let kf: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        secrets.push((
            format!("checkpoint seed of node {id}"),
            kf["seed"].as_str().unwrap().to_string(),
        ));
        let pem = std::fs::read_to_string(c.pki.join(format!("node-{id}.key"))).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        secrets.push((
            format!("TLS key of node {id}"),
            body[..40.min(body.len())].to_string(),
        ));
    }
    for (i, sig) in signatures.iter().enumerate() {
        secrets.push((format!("checkpoint signature {i}"), sig.clone()));
    }

    let mut lines = 0usize;
    let mut with_fields = 0usize;
    for id in 1..=3 {
        let log = std::fs::read_to_string(&c.node(id).log).unwrap();
        for line in log.lines() {
            lines += 1;
            for (label, secret) in &secrets {
                assert!(
                    !line.contains(secret.as_str()),
                    "node {id} logged the {label}: {line}"
                );
            }
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => panic!("node {id} wrote a line that is not JSON: {line}"),
            };
            if v["fields"]["reason"] == "cap_expired" || v["fields"]["reason"] == "policy_denied" {
                let span = &v["span"];
                if span["corr_id"].is_string() && span["peer"].is_string() {
                    with_fields += 1;
                }
            }
        }
    }
    assert!(lines > 100, "expected a busy debug log, got {lines} lines");
    assert!(
        with_fields >= 6,
        "refusals must be logged with reason, corr_id and peer ({with_fields} such lines)"
    );
    let leader_log = std::fs::read_to_string(&c.node(leader).log).unwrap();
    let forwarded_lines = leader_log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["span"]["corr_id"] == forwarded_corr_id
                && v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("forwarded write"))
        })
        .count();
    assert!(
        forwarded_lines >= 1,
        "the leader (node {leader}) logged the write forwarded by node {follower} without its corr_id"
    );
    let kid_logged = (1..=3).any(|id| {
        std::fs::read_to_string(&c.node(id).log)
            .unwrap()
            .lines()
            .any(|l| l.contains("\"kid\":\"k1\"") && l.contains("policy_denied"))
    });
    assert!(kid_logged, "a policy refusal names the token's KID");
}

/// `ronctl cap`: mint from the key ring, inspect without the MAC, attenuate offline, write with
/// the narrowed token, revoke it as admin over mTLS, and see every node refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ronctl_mints_attenuates_inspects_and_revokes() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    for id in 1..=3 {
        c.start(id);
    }
    c.init(&[1, 2, 3]).await;
    let seeds = (1..=3)
        .map(|id| c.node(id).api.clone())
        .collect::<Vec<_>>()
        .join(",");
    let env = c.ronctl_env();
    let ronctl = |token_file: Option<&std::path::Path>, args: &[&str]| {
        let mut cmd = std::process::Command::new(cluster::ronctl_binary());
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["--seeds", &seeds]);
        if let Some(t) = token_file {
            cmd.env("RONCTL_TOKEN_FILE", t);
        }
        outcome(cmd.args(args).output().expect("run ronctl"))
    };
    let dir = c.dir.path().to_path_buf();
    let keys = c.pki.join("caps.keys");
    let (app, narrow) = (dir.join("app.token"), dir.join("narrow.token"));
    let (code, out, err) = ronctl(
        None,
        &[
            "cap",
            "mint",
            "--keys",
            keys.to_str().unwrap(),
            "--cluster-id",
            "test",
            "--ttl",
            "1h",
            "--ops",
            "accounts.create,transfers.create",
            "--debit",
            "1",
            "--out",
            app.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&app).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "token files are private");
    let (code, out, err) = ronctl(
        None,
        &[
            "cap",
            "attenuate",
            app.to_str().unwrap(),
            "--max-amount",
            "10",
            "--out",
            narrow.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let narrow_text = std::fs::read_to_string(&narrow).unwrap().trim().to_string();
    let (code, out, err) = ronctl(
        None,
        &["--json", "cap", "inspect", narrow.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["kid"], "k1");
    let caveats = info["caveats"].to_string();
    assert!(
        caveats.contains("max_amount=10") && caveats.contains("debit=1"),
        "{info}"
    );
    let mac = mac_of(&narrow_text);
    for secret in [
        hex(&mac),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac),
    ] {
        assert!(!out.contains(&secret), "inspect printed the MAC: {out}");
    }
    assert!(
        !out.contains(narrow_text.trim_start_matches("rlcap1.")),
        "inspect printed the token"
    );

    // The narrowed token writes within its caveats and is refused outside them (exit 3).
    let ok = ronctl(
        Some(&narrow),
        &[
            "account", "create", "--id", "1", "--ledger", "1", "--code", "1",
        ],
    );
    assert_eq!(ok.0, 0, "{ok:?}");
    let ok = ronctl(
        Some(&narrow),
        &[
            "account", "create", "--id", "2", "--ledger", "1", "--code", "1",
        ],
    );
    assert_eq!(ok.0, 0, "{ok:?}");
    let t = |id: &str, amount: &str| {
        vec![
            "transfer".to_string(),
            "create".into(),
            "--id".into(),
            id.into(),
            "--debit".into(),
            "1".into(),
            "--credit".into(),
            "2".into(),
            "--amount".into(),
            amount.into(),
            "--ledger".into(),
            "1".into(),
            "--code".into(),
            "1".into(),
        ]
    };
    let args = t("10", "10");
    let (code, out, err) = ronctl(
        Some(&narrow),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "within the caveats: {out}{err}");
    let args = t("11", "11");
    let (code, out, err) = ronctl(
        Some(&narrow),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("policy_denied"), "{err}");

    // Revoking the parent revokes the narrowed child (same id); every node refuses it.
    let (code, out, err) = ronctl(
        None,
        &[
            "cap",
            "revoke",
            app.to_str().unwrap(),
            "--reason",
            "rotated",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ronctl(None, &["--json", "cap", "revoked"]);
    assert_eq!(code, 0, "{out}{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let id = ledger::capability::Token::decode(&narrow_text)
        .unwrap()
        .id_hex();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["token_id"] == id.as_str() && r["reason"] == "rotated"),
        "{out}"
    );
    wait_for(
        "every node refuses the revoked token",
        Duration::from_secs(10),
        || async {
            let mut all = true;
            for node in 1..=3 {
                let (_, answer) = post_as(
                    &c,
                    node,
                    &narrow_text,
                    "/v1/accounts",
                    json!([{"id":"5","ledger":1,"code":1}]),
                )
                .await;
                all &= answer["error"]["reason"] == "cap_revoked";
            }
            all
        },
    )
    .await;
    // Without an admin capability, revoking is refused.
    let (code, _, err) = ronctl(
        Some(&narrow),
        &["cap", "revoke", "--id", &"00".repeat(16), "--kid", "k1"],
    );
    assert_eq!(code, 3, "{err}");
}
