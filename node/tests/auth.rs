//! Capabilities end to end, in process: one single TLS node (`client_auth = optional`) with
//! `[auth] enabled = true` and a two-key ring ("k1", "k2"). Every refused request is checked for
//! its HTTP status, its exact `error.reason`, the `rejected_total{reason}` and
//! `auth_failures_total` counters going up, nothing written (the event id stays unknown and the
//! tree size does not move), and a good write right after succeeding. Then revocation, the admin
//! gate (mTLS + admin capability), key rotation by reload, `/metrics`, and start-up failing
//! closed on a bad key file.
//!
//! Counters are process-global and tests in this binary run in parallel: every counter check
//! compares before/after within one step and only demands an increase of at least the expected
//! amount.

use ledger::capability::{Caveat, KeyRing, Op, RootKey, Token};
use node::config::Config;
use node::security::pki::{self, DevPki};
use node::security::tls;
use node::{Node, RunningNode};
use raft_store::NodeInfo;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use test_support::clock::now_secs;
use test_support::events::{account_json, raw_body, transfer_json};
use test_support::files::write_mode;
use test_support::https::Alpn;
use test_support::tokens::{ring, unique_id};

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];
/// A key that is in no ring: tokens minted with it under kid "k1" are forgeries.
const FORGER: [u8; 32] = [0x99; 32];

/// A fresh event (account or transfer) id for one case, unique in this process.
fn next_event_id() -> u128 {
    static NEXT: AtomicU64 = AtomicU64::new(1_000);
    u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Write `ring` as the key file at `path` with permission bits `mode`.
fn write_key_file(path: &Path, ring: &KeyRing, mode: u32) {
    write_mode(path, &ring.to_json(), mode);
}

fn base_overrides(key_file: &Path) -> Vec<(String, String)> {
    [
        ("node_id", "1".to_string()),
        ("api_addr", "127.0.0.1:1".to_string()),
        ("peer_addr", "127.0.0.1:2".to_string()),
        ("amnesia", "true".to_string()),
        ("auth.enabled", "true".to_string()),
        ("auth.key_file", key_file.display().to_string()),
        // Replaced by the test's own [tls] section where it serves TLS.
        ("tls.mtls_required", "false".to_string()),
        ("raft.heartbeat_ms", "50".to_string()),
        ("raft.election_timeout_min_ms", "150".to_string()),
        ("raft.election_timeout_max_ms", "300".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn config(key_file: &Path, tls: Option<tls::TlsSection>) -> Config {
    let mut c = node::config::load(None, vec![], &base_overrides(key_file)).unwrap();
    c.api_addr = "127.0.0.1:0".parse().unwrap();
    c.peer_addr = "127.0.0.1:0".parse().unwrap();
    c.log.level = "warn".into();
    if let Some(t) = tls {
        c.tls = t;
    }
    c
}

/// [`test_support::https::client`] for `pki`'s CA, with its client identity or without one.
fn https(pki: &DevPki, identity: bool) -> reqwest::Client {
    let (cert, key) = &pki.client;
    test_support::https::client(
        &pki.ca_cert,
        identity.then_some((cert.as_path(), key.as_path())),
        None,
        Duration::from_secs(5),
        Alpn::H2Http1,
    )
}

fn bearer(t: &Token) -> String {
    format!("Bearer {}", t.encode())
}

/// What a refused request must not have written.
enum Unwritten {
    /// These transfer ids stay unknown (and the tree does not grow).
    Transfers(Vec<u128>),
    /// This account id stays unknown (and the tree does not grow).
    Account(u128),
    /// This token id stays off the deny-list.
    Revocation([u8; 16]),
    /// Nothing to look up (a read-only admin call); the tree still must not grow.
    Nothing,
}

struct Harness {
    running: RunningNode,
    /// With the client certificate (admin identity).
    mtls: reqwest::Client,
    /// Without a client certificate.
    anon: reqwest::Client,
    base: String,
    cluster: String,
    k1: RootKey,
    k2: RootKey,
    _dir: tempfile::TempDir,
    key_file: std::path::PathBuf,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki::generate_dev_pki(
            &dir.path().join("pki"),
            1,
            &["127.0.0.1".into(), "localhost".into()],
            2,
        )
        .unwrap();
        let key_file = dir.path().join("caps.keys");
        write_key_file(&key_file, &ring(&[("k1", K1), ("k2", K2)]), 0o600);
        let mut section = pki.section(1).unwrap();
        section.client_auth = tls::ClientAuth::Optional;
        let running = Node::start(config(&key_file, Some(section)))
            .await
            .expect("node starts");
        let members = BTreeMap::from([(
            1,
            NodeInfo {
                api_addr: running.api_addr.clone(),
                peer_addr: running.peer_addr.clone(),
            },
        )]);
        running.node.raft.initialize(members).await.unwrap();
        running
            .node
            .raft
            .wait(Some(Duration::from_secs(10)))
            .state(openraft::ServerState::Leader, "leader")
            .await
            .unwrap();
        let base = format!("https://{}", running.api_addr);
        let cluster = running.node.config.cluster_id.clone();
        Harness {
            running,
            mtls: https(&pki, true),
            anon: https(&pki, false),
            base,
            cluster,
            k1: RootKey::new("k1", K1).unwrap(),
            k2: RootKey::new("k2", K2).unwrap(),
            _dir: dir,
            key_file,
        }
    }

    /// A token from `key` issued now, valid for an hour, for this cluster, plus `caveats`.
    fn mint_with(&self, key: &RootKey, caveats: Vec<Caveat>) -> Token {
        test_support::tokens::mint(key, unique_id(), now_secs(), 3_600, &self.cluster, caveats)
    }

    fn mint(&self, caveats: Vec<Caveat>) -> Token {
        self.mint_with(&self.k1, caveats)
    }

    fn full(&self) -> Token {
        self.mint(vec![])
    }

    fn admin(&self) -> Token {
        self.mint(vec![Caveat::Ops(BTreeSet::from([Op::Admin]))])
    }

    async fn send(
        &self,
        mtls: bool,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let client = if mtls { &self.mtls } else { &self.anon };
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => client.get(url),
            "POST" => client.post(url),
            other => panic!("method {other}"),
        };
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn post(&self, path: &str, authorization: Option<&str>, body: &str) -> (u16, Value) {
        self.send(false, "POST", path, authorization, Some(body))
            .await
    }

    async fn tree_size(&self) -> String {
        let (status, v) = self.send(false, "GET", "/v1/status", None, None).await;
        assert_eq!(status, 200, "{v}");
        v["tree_size"].as_str().unwrap_or("0").to_string()
    }

    async fn exists(&self, kind: &str, id: u128) -> bool {
        let (status, v) = self
            .send(false, "GET", &format!("/v1/{kind}/{id}"), None, None)
            .await;
        match status {
            200 => true,
            404 => false,
            _ => panic!("GET /v1/{kind}/{id}: {status} {v}"),
        }
    }

    /// A write that must be accepted with every event `ok`.
    async fn ok_write(&self, case: &str, path: &str, authorization: &str, body: &str) {
        let (status, v) = self.post(path, Some(authorization), body).await;
        assert_eq!(status, 200, "{case}: expected 200, got {status} {v}");
        for r in v["results"].as_array().unwrap() {
            assert_eq!(r["result"], "ok", "{case}: {v}");
        }
    }

    /// The node still takes a good write (a transfer 1 -> 2 of 1 with a full token).
    async fn healthy(&self, case: &str) {
        let id = next_event_id();
        let full = bearer(&self.full());
        self.ok_write(
            &format!("{case} (follow-up good write)"),
            "/v1/transfers",
            &full,
            &raw_body([transfer_json(id, 1, 2, 1)]),
        )
        .await;
        assert!(
            self.exists("transfers", id).await,
            "{case}: follow-up write"
        );
    }

    /// Send a request that must be refused with `status` / `reason`, and check the counters,
    /// that nothing was written, and that the node is still healthy.
    #[allow(clippy::too_many_arguments)]
    async fn refused(
        &self,
        case: &str,
        mtls: bool,
        path: &str,
        authorization: Option<&str>,
        body: &str,
        status: u16,
        reason: &str,
        unwritten: Unwritten,
    ) {
        let rejected = node::metrics::rejected_count(reason);
        let failures = node::metrics::auth_failure_count();
        let size = self.tree_size().await;
        let (got, v) = self
            .send(mtls, "POST", path, authorization, Some(body))
            .await;
        assert_eq!(got, status, "{case}: status (answer {v})");
        assert_eq!(v["error"]["reason"], reason, "{case}: reason (answer {v})");
        assert!(
            node::metrics::rejected_count(reason) > rejected,
            "{case}: rejected_total{{reason={reason:?}}} did not go up"
        );
        assert!(
            node::metrics::auth_failure_count() > failures,
            "{case}: auth_failures_total did not go up"
        );
        assert_eq!(self.tree_size().await, size, "{case}: the tree grew");
        match unwritten {
            Unwritten::Transfers(ids) => {
                for id in ids {
                    assert!(
                        !self.exists("transfers", id).await,
                        "{case}: transfer {id} was written"
                    );
                }
            }
            Unwritten::Account(id) => assert!(
                !self.exists("accounts", id).await,
                "{case}: account {id} was written"
            ),
            Unwritten::Revocation(id) => assert!(
                !self.running.node.is_revoked(&id).unwrap(),
                "{case}: the revocation was applied"
            ),
            Unwritten::Nothing => {}
        }
        self.healthy(case).await;
    }

    /// A refused one-transfer write (1 -> 2 of 1 in ledger 1) on `/v1/transfers`.
    async fn refused_transfer(
        &self,
        case: &str,
        authorization: Option<&str>,
        status: u16,
        reason: &str,
    ) {
        let id = next_event_id();
        let body = raw_body([transfer_json(id, 1, 2, 1)]);
        self.refused(
            case,
            false,
            "/v1/transfers",
            authorization,
            &body,
            status,
            reason,
            Unwritten::Transfers(vec![id]),
        )
        .await;
    }

    fn revoke_body(id_hex: &str) -> String {
        format!(r#"{{"token_id":"{id_hex}","kid":"k1","reason":"test"}}"#)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_guard_every_write_and_admin_call() {
    let started = Instant::now();
    let h = Harness::start().await;

    // ---- set-up: accounts 1, 2 (ledger 1) and 3 (ledger 2) with a full-power token.
    let full = bearer(&h.full());
    let setup = r#"[{"id":"1","ledger":1,"code":1},{"id":"2","ledger":1,"code":1},{"id":"3","ledger":2,"code":1}]"#;
    h.ok_write("set-up accounts", "/v1/accounts", &full, setup)
        .await;
    h.healthy("set-up").await;

    // ---- credentials missing or of the wrong scheme.
    h.refused_transfer("no Authorization header", None, 401, "unauth")
        .await;
    h.refused_transfer(
        "Authorization: Basic",
        Some("Basic dXNlcjpwYXNz"),
        401,
        "unauth",
    )
    .await;

    // The token is checked before the body is read: a bad body without credentials is
    // `unauth`, not `invalid_json`.
    h.refused(
        "no Authorization header, body not JSON",
        false,
        "/v1/transfers",
        None,
        "this is not json",
        401,
        "unauth",
        Unwritten::Nothing,
    )
    .await;
    let id = next_event_id();
    h.refused(
        "no Authorization header on /v1/accounts",
        false,
        "/v1/accounts",
        None,
        &raw_body([account_json(id, 1)]),
        401,
        "unauth",
        Unwritten::Account(id),
    )
    .await;

    // ---- forged MAC: one character of the MAC flipped.
    let text = h.full().encode();
    let mut chars: Vec<char> = text.chars().collect();
    let at = chars.len() - 20; // inside the 32-byte MAC, not the last (partial) character
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    assert_eq!(
        Token::decode(&flipped).map(|t| t.kid).ok().as_deref(),
        Some("k1"),
        "the flipped token must still decode (only the MAC changed)"
    );
    h.refused_transfer(
        "forged MAC (flipped character)",
        Some(&format!("Bearer {flipped}")),
        401,
        "cap_invalid",
    )
    .await;
    // ---- forged MAC: minted with a key that is not in the ring, under kid "k1".
    let forged = h.mint_with(&RootKey::new("k1", FORGER).unwrap(), vec![]);
    h.refused_transfer(
        "forged MAC (foreign key under kid k1)",
        Some(&bearer(&forged)),
        401,
        "cap_invalid",
    )
    .await;

    // ---- truncated token.
    let text = h.full().encode();
    h.refused_transfer(
        "truncated token",
        Some(&format!("Bearer {}", &text[..text.len() / 2])),
        401,
        "cap_invalid",
    )
    .await;

    // ---- validity window.
    let t = now_secs();
    let expired = Token::mint(
        &h.k1,
        unique_id(),
        t - 7_200,
        vec![Caveat::ExpiresAt(t - 60)],
    )
    .unwrap();
    h.refused_transfer("expired", Some(&bearer(&expired)), 401, "cap_expired")
        .await;
    let early = h.mint(vec![Caveat::NotBefore(now_secs() + 3_000)]);
    h.refused_transfer(
        "not yet valid",
        Some(&bearer(&early)),
        401,
        "cap_not_yet_valid",
    )
    .await;
    // Attenuating with a later expiry cannot revive an expired token (the minimum applies).
    let revived = expired
        .attenuate(vec![Caveat::ExpiresAt(now_secs() + 3_600)])
        .unwrap();
    h.refused_transfer(
        "expired, attenuated with a later ExpiresAt",
        Some(&bearer(&revived)),
        401,
        "cap_expired",
    )
    .await;
    // A holder can shorten the expiry offline.
    let shortened = h
        .full()
        .attenuate(vec![Caveat::ExpiresAt(now_secs() - 1)])
        .unwrap();
    h.refused_transfer(
        "full token attenuated to an expiry in the past",
        Some(&bearer(&shortened)),
        401,
        "cap_expired",
    )
    .await;
    let t = now_secs();
    let future = Token::mint(
        &h.k1,
        unique_id(),
        t + 3_600,
        vec![Caveat::ExpiresAt(t + 7_200)],
    )
    .unwrap();
    h.refused_transfer(
        "issued_at an hour in the future",
        Some(&bearer(&future)),
        401,
        "cap_not_yet_valid",
    )
    .await;
    let other = h.mint(vec![Caveat::Audience("other-cluster".into())]);
    h.refused_transfer("wrong audience", Some(&bearer(&other)), 401, "cap_invalid")
        .await;
    let t = now_secs();
    let long = Token::mint(
        &h.k1,
        unique_id(),
        t,
        vec![Caveat::ExpiresAt(t + 31 * 24 * 3600)],
    )
    .unwrap();
    h.refused_transfer(
        "lifetime over the cap (31 days)",
        Some(&bearer(&long)),
        401,
        "cap_invalid",
    )
    .await;
    let stranger = h.mint_with(&RootKey::new("k9", K1).unwrap(), vec![]);
    h.refused_transfer("unknown kid", Some(&bearer(&stranger)), 401, "cap_invalid")
        .await;

    // ---- operation not allowed.
    let accounts_only = bearer(&h.mint(vec![Caveat::Ops(BTreeSet::from([Op::CreateAccounts]))]));
    h.refused_transfer(
        "op not allowed (accounts.create token on /v1/transfers)",
        Some(&accounts_only),
        403,
        "policy_denied",
    )
    .await;
    let id = next_event_id();
    h.ok_write(
        "accounts.create token on /v1/accounts",
        "/v1/accounts",
        &accounts_only,
        &raw_body([account_json(id, 1)]),
    )
    .await;

    // ---- debit account not allowed; a mixed batch writes neither event.
    let debit1 = bearer(&h.mint(vec![Caveat::DebitAccounts(BTreeSet::from([1u128]))]));
    let id = next_event_id();
    h.refused(
        "debit account not allowed (DebitAccounts{1}, debit 2)",
        false,
        "/v1/transfers",
        Some(&debit1),
        &raw_body([transfer_json(id, 2, 1, 1)]),
        403,
        "policy_denied",
        Unwritten::Transfers(vec![id]),
    )
    .await;
    let (a, b) = (next_event_id(), next_event_id());
    h.refused(
        "mixed batch (debit 1 allowed, debit 2 not)",
        false,
        "/v1/transfers",
        Some(&debit1),
        &raw_body([transfer_json(a, 1, 2, 5), transfer_json(b, 2, 1, 5)]),
        403,
        "policy_denied",
        Unwritten::Transfers(vec![a, b]),
    )
    .await;
    let id = next_event_id();
    h.ok_write(
        "DebitAccounts{1} debiting 1",
        "/v1/transfers",
        &debit1,
        &raw_body([transfer_json(id, 1, 2, 5)]),
    )
    .await;
    // A closing hold closes its credit account too: a token that may debit only account 1
    // cannot close account 2 (nothing could post to 2 until the hold is voided, by debit 1).
    let id = next_event_id();
    let closing = format!(
        r#"[{{"id":"{id}","debit_account_id":"1","credit_account_id":"2","amount":"1","ledger":1,"code":1,"flags":["pending","closing_credit"]}}]"#
    );
    h.refused(
        "closing the credit account (DebitAccounts{1}, closing_credit to 2)",
        false,
        "/v1/transfers",
        Some(&debit1),
        &closing,
        403,
        "policy_denied",
        Unwritten::Transfers(vec![id]),
    )
    .await;
    let closed = |v: &Value| {
        v["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "closed"))
    };
    let (_, two) = h.send(false, "GET", "/v1/accounts/2", None, None).await;
    assert!(!closed(&two), "{two}");
    // With the credit account named as well, the same closing hold is allowed.
    let debit12 = bearer(&h.mint(vec![Caveat::DebitAccounts(BTreeSet::from([1u128, 2]))]));
    let id = next_event_id();
    h.ok_write(
        "DebitAccounts{1,2}: closing_credit to 2",
        "/v1/transfers",
        &debit12,
        &format!(
            r#"[{{"id":"{id}","debit_account_id":"1","credit_account_id":"2","amount":"1","ledger":1,"code":1,"flags":["pending","closing_credit"]}}]"#
        ),
    )
    .await;
    let (_, two) = h.send(false, "GET", "/v1/accounts/2", None, None).await;
    assert!(closed(&two), "the allowed closing hold closes 2: {two}");
    let void = next_event_id();
    h.ok_write(
        "void the closing hold (reopens 2)",
        "/v1/transfers",
        &debit12,
        &format!(
            r#"[{{"id":"{void}","debit_account_id":"1","credit_account_id":"2","amount":"1","pending_id":"{id}","ledger":1,"code":1,"flags":["void_pending_transfer"]}}]"#
        ),
    )
    .await;
    let (_, two) = h.send(false, "GET", "/v1/accounts/2", None, None).await;
    assert!(!closed(&two), "the void reopens 2: {two}");

    // ---- ledger not allowed.
    let ledger2 = bearer(&h.mint(vec![Caveat::Ledger(2)]));
    let id = next_event_id();
    h.refused(
        "ledger not allowed (Ledger(2) token, ledger-1 account)",
        false,
        "/v1/accounts",
        Some(&ledger2),
        &raw_body([account_json(id, 1)]),
        403,
        "policy_denied",
        Unwritten::Account(id),
    )
    .await;
    let id = next_event_id();
    h.ok_write(
        "Ledger(2) token, ledger-2 account",
        "/v1/accounts",
        &ledger2,
        &raw_body([account_json(id, 2)]),
    )
    .await;

    // Two Ledger caveats that disagree allow no ledger at all.
    let conflicting = h
        .mint(vec![Caveat::Ledger(1)])
        .attenuate(vec![Caveat::Ledger(2)])
        .unwrap();
    h.refused_transfer(
        "conflicting Ledger(1) + Ledger(2) caveats",
        Some(&bearer(&conflicting)),
        403,
        "policy_denied",
    )
    .await;

    // ---- amount cap.
    let max100 = bearer(&h.mint(vec![Caveat::MaxAmount(100)]));
    let id = next_event_id();
    h.refused(
        "amount over the cap (MaxAmount(100), 101)",
        false,
        "/v1/transfers",
        Some(&max100),
        &raw_body([transfer_json(id, 1, 2, 101)]),
        403,
        "policy_denied",
        Unwritten::Transfers(vec![id]),
    )
    .await;
    let id = next_event_id();
    h.ok_write(
        "amount at the cap (MaxAmount(100), 100)",
        "/v1/transfers",
        &max100,
        &raw_body([transfer_json(id, 1, 2, 100)]),
    )
    .await;

    // Amount 0 (take the referenced amount) counts as unbounded under a cap.
    let id = next_event_id();
    h.refused(
        "amount 0 under a cap (MaxAmount(100), 0 = unbounded)",
        false,
        "/v1/transfers",
        Some(&max100),
        &raw_body([transfer_json(id, 1, 2, 0)]),
        403,
        "policy_denied",
        Unwritten::Transfers(vec![id]),
    )
    .await;

    // ---- attenuation by the holder, offline.
    let narrowed = h.full().attenuate(vec![Caveat::MaxAmount(10)]).unwrap();
    let narrowed = bearer(&narrowed);
    let id = next_event_id();
    h.ok_write(
        "attenuated MaxAmount(10), amount 10",
        "/v1/transfers",
        &narrowed,
        &raw_body([transfer_json(id, 1, 2, 10)]),
    )
    .await;
    let id = next_event_id();
    h.refused(
        "attenuated MaxAmount(10), amount 11",
        false,
        "/v1/transfers",
        Some(&narrowed),
        &raw_body([transfer_json(id, 1, 2, 11)]),
        403,
        "policy_denied",
        Unwritten::Transfers(vec![id]),
    )
    .await;
    // Attenuating can never widen: Ops{transfers.create} + Ops{admin} is the empty intersection.
    let transfers_only = h.mint(vec![Caveat::Ops(BTreeSet::from([Op::CreateTransfers]))]);
    let widened = bearer(
        &transfers_only
            .attenuate(vec![Caveat::Ops(BTreeSet::from([Op::Admin]))])
            .unwrap(),
    );
    let victim = unique_id();
    h.refused(
        "attenuation cannot widen: Ops{transfers.create} + Ops{admin} on admin",
        true,
        "/v1/admin/revocations",
        Some(&widened),
        &Harness::revoke_body(&ledger::wire::hex::encode(&victim)),
        403,
        "policy_denied",
        Unwritten::Revocation(victim),
    )
    .await;
    h.refused_transfer(
        "attenuation cannot widen: Ops{transfers.create} + Ops{admin} on transfers (empty intersection)",
        Some(&widened),
        403,
        "policy_denied",
    )
    .await;
    let widened_both = bearer(
        &transfers_only
            .attenuate(vec![Caveat::Ops(BTreeSet::from([
                Op::CreateTransfers,
                Op::Admin,
            ]))])
            .unwrap(),
    );
    let victim = unique_id();
    h.refused(
        "attenuation cannot widen: Ops{transfers.create} + Ops{transfers.create,admin} on admin",
        true,
        "/v1/admin/revocations",
        Some(&widened_both),
        &Harness::revoke_body(&ledger::wire::hex::encode(&victim)),
        403,
        "policy_denied",
        Unwritten::Revocation(victim),
    )
    .await;
    let id = next_event_id();
    h.ok_write(
        "Ops{transfers.create} + Ops{transfers.create,admin} still transfers",
        "/v1/transfers",
        &widened_both,
        &raw_body([transfer_json(id, 1, 2, 1)]),
    )
    .await;

    // ---- unknown caveat.
    let unknown = h
        .full()
        .attenuate(vec![Caveat::Unknown {
            tag: 200,
            value: vec![1],
        }])
        .unwrap();
    h.refused_transfer(
        "unknown caveat (tag 200)",
        Some(&bearer(&unknown)),
        401,
        "cap_invalid",
    )
    .await;

    // ---- oversized token: node/src/auth.rs `bearer` refuses a header longer than
    // TOKEN_TEXT_MAX + "Bearer " as CapError::TooLarge, whose reason is cap_invalid (401).
    let huge = format!("Bearer {}", "A".repeat(5_000));
    h.refused_transfer(
        "oversized token (5000 chars)",
        Some(&huge),
        401,
        "cap_invalid",
    )
    .await;

    // ---- revocation.
    let admin = bearer(&h.admin());
    let revoked = h.full();
    let child = bearer(&revoked.attenuate(vec![Caveat::MaxAmount(1_000)]).unwrap());
    let tb = bearer(&revoked);
    let id = next_event_id();
    h.ok_write(
        "token T before revocation",
        "/v1/transfers",
        &tb,
        &raw_body([transfer_json(id, 1, 2, 1)]),
    )
    .await;
    let (status, v) = h
        .send(
            true,
            "POST",
            "/v1/admin/revocations",
            Some(&admin),
            Some(&Harness::revoke_body(&revoked.id_hex())),
        )
        .await;
    assert_eq!(status, 200, "revoke T with admin token + client cert: {v}");
    assert_eq!(v["result"], "ok", "revoke T: {v}");
    assert!(h.running.node.is_revoked(&revoked.id).unwrap());
    h.refused_transfer("revoked token T", Some(&tb), 401, "cap_revoked")
        .await;
    h.refused_transfer(
        "attenuated child of revoked T",
        Some(&child),
        401,
        "cap_revoked",
    )
    .await;
    let (status, v) = h
        .send(true, "GET", "/v1/admin/revocations", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "list revocations: {v}");
    let listed: Vec<&str> = v["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["token_id"].as_str())
        .collect();
    assert!(
        listed.contains(&revoked.id_hex().as_str()),
        "list revocations: {v}"
    );

    // ---- the admin gate.
    let victim = unique_id();
    let body = Harness::revoke_body(&ledger::wire::hex::encode(&victim));
    h.refused(
        "admin: revocations with admin token, no client cert",
        false,
        "/v1/admin/revocations",
        Some(&admin),
        &body,
        403,
        "policy_denied",
        Unwritten::Revocation(victim),
    )
    .await;
    h.refused(
        "admin: revocations with client cert, non-admin token",
        true,
        "/v1/admin/revocations",
        Some(&full),
        &body,
        403,
        "policy_denied",
        Unwritten::Revocation(victim),
    )
    .await;
    h.refused(
        "admin: revocations with client cert, no token",
        true,
        "/v1/admin/revocations",
        None,
        &body,
        401,
        "unauth",
        Unwritten::Revocation(victim),
    )
    .await;
    let rejected = node::metrics::rejected_count("policy_denied");
    let (status, v) = h
        .send(false, "GET", "/v1/admin/revocations", Some(&admin), None)
        .await;
    assert_eq!(
        (status, v["error"]["reason"].as_str()),
        (403, Some("policy_denied")),
        "admin: list revocations without client cert: {v}"
    );
    assert!(node::metrics::rejected_count("policy_denied") > rejected);
    for (case, mtls, auth, status, reason) in [
        (
            "admin: checkpoint with admin token, no client cert",
            false,
            Some(admin.as_str()),
            403,
            "policy_denied",
        ),
        (
            "admin: checkpoint with client cert, non-admin token",
            true,
            Some(full.as_str()),
            403,
            "policy_denied",
        ),
        (
            "admin: checkpoint with client cert, no token",
            true,
            None,
            401,
            "unauth",
        ),
    ] {
        h.refused(
            case,
            mtls,
            "/v1/admin/checkpoint",
            auth,
            "",
            status,
            reason,
            Unwritten::Nothing,
        )
        .await;
    }
    let (status, v) = h
        .send(true, "POST", "/v1/admin/checkpoint", Some(&admin), Some(""))
        .await;
    assert_eq!(
        status, 200,
        "admin: checkpoint with cert + admin token: {v}"
    );

    // A revoked admin token no longer opens the admin gate.
    let admin2 = h.admin();
    let (status, v) = h
        .send(
            true,
            "POST",
            "/v1/admin/revocations",
            Some(&admin),
            Some(&Harness::revoke_body(&admin2.id_hex())),
        )
        .await;
    assert_eq!(status, 200, "revoke a second admin token: {v}");
    let victim = unique_id();
    h.refused(
        "admin: revoked admin token with client cert",
        true,
        "/v1/admin/revocations",
        Some(&bearer(&admin2)),
        &Harness::revoke_body(&ledger::wire::hex::encode(&victim)),
        401,
        "cap_revoked",
        Unwritten::Revocation(victim),
    )
    .await;

    // ---- key rotation by reload.
    let from_k2 = bearer(&h.mint_with(&h.k2, vec![]));
    let from_k1 = bearer(&h.full());
    let id = next_event_id();
    h.ok_write(
        "k2 token before rotation",
        "/v1/transfers",
        &from_k2,
        &raw_body([transfer_json(id, 1, 2, 1)]),
    )
    .await;
    write_key_file(&h.key_file, &ring(&[("k1", K1)]), 0o600);
    h.running.node.auth.reload().expect("reload without k2");
    assert_eq!(
        h.running.node.auth.kids(),
        vec![("k1".to_string(), false)],
        "ring after reload"
    );
    h.refused_transfer(
        "k2 token after k2 was removed",
        Some(&from_k2),
        401,
        "cap_invalid",
    )
    .await;
    let id = next_event_id();
    h.ok_write(
        "k1 token after k2 was removed",
        "/v1/transfers",
        &from_k1,
        &raw_body([transfer_json(id, 1, 2, 1)]),
    )
    .await;
    // A loose file (0644), even one that would bring k2 back, is refused; the old ring stays.
    write_key_file(&h.key_file, &ring(&[("k1", K1), ("k2", K2)]), 0o644);
    let e = format!("{:#}", h.running.node.auth.reload().unwrap_err());
    assert!(
        e.contains(&h.key_file.display().to_string()) && e.contains("644"),
        "reload of a 0644 key file: {e}"
    );
    assert_eq!(h.running.node.auth.kids(), vec![("k1".to_string(), false)]);
    h.refused_transfer(
        "k2 token after a failed (0644) reload",
        Some(&from_k2),
        401,
        "cap_invalid",
    )
    .await;
    let id = next_event_id();
    h.ok_write(
        "k1 token after a failed (0644) reload",
        "/v1/transfers",
        &from_k1,
        &raw_body([transfer_json(id, 1, 2, 1)]),
    )
    .await;

    // Malformed JSON (mode 0600) is refused on reload too; the old ring stays.
    write_mode(&h.key_file, "{\"keys\": [", 0o600);
    let e = format!("{:#}", h.running.node.auth.reload().unwrap_err());
    assert!(
        e.contains(&h.key_file.display().to_string()) && e.contains("malformed"),
        "reload of a malformed key file: {e}"
    );
    assert_eq!(h.running.node.auth.kids(), vec![("k1".to_string(), false)]);
    let id = next_event_id();
    h.ok_write(
        "k1 token after a failed (malformed) reload",
        "/v1/transfers",
        &from_k1,
        &raw_body([transfer_json(id, 1, 2, 1)]),
    )
    .await;

    // ---- /metrics, no auth.
    let r = h
        .anon
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "/metrics");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("rejected_total{reason=\"cap_invalid\"}"),
        "/metrics: {text}"
    );
    // Counted by the kind of caller: these refusals came without a client certificate.
    let anonymous = text
        .lines()
        .find_map(|l| l.strip_prefix("auth_failures_total{peer=\"anonymous\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(anonymous.is_some_and(|n| n > 0), "/metrics: {text}");

    h.running.shutdown().await;
    println!("capabilities test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_closed_naming_a_bad_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.keys");
    let loose = dir.path().join("loose.keys");
    write_key_file(&loose, &ring(&[("k1", K1)]), 0o644);
    let garbage = dir.path().join("garbage.keys");
    write_mode(&garbage, "{\"keys\": [ not json", 0o600);
    for (case, path, what) in [
        ("missing key file", &missing, "cannot read"),
        ("key file mode 0644", &loose, "644"),
        ("malformed key file", &garbage, "malformed"),
    ] {
        let e = match Node::start(config(path, None)).await {
            Ok(n) => {
                n.shutdown().await;
                panic!("{case}: the node started");
            }
            Err(e) => format!("{e:#}"),
        };
        println!("{case}: {e}");
        assert!(
            e.contains(&path.display().to_string()),
            "{case}: {e} should name {}",
            path.display()
        );
        assert!(e.contains(what), "{case}: {e} should say {what}");
    }
    // No key file at all while auth is enabled: the configuration is refused, naming the key.
    let overrides: Vec<(String, String)> = base_overrides(&missing)
        .into_iter()
        .filter(|(k, _)| k != "auth.key_file")
        .collect();
    let e = node::config::load(None, vec![], &overrides)
        .unwrap_err()
        .to_string();
    println!("no auth.key_file: {e}");
    assert!(e.contains("auth.key_file"), "no auth.key_file: {e}");
}

/// A request carries exactly one credential: several `Authorization` headers (the first valid,
/// the next one not), or several tokens in one header, are refused as a whole with 401
/// `cap_ambiguous`, counted, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_credentials_are_refused_whole() {
    let h = Harness::start().await;
    let full = bearer(&h.full());
    let setup = r#"[{"id":"1","ledger":1,"code":1},{"id":"2","ledger":1,"code":1}]"#;
    h.ok_write("set-up accounts", "/v1/accounts", &full, setup)
        .await;
    let other = h.full().encode();
    let cases: [(&str, Vec<String>); 4] = [
        (
            "a valid token, then a forged one",
            vec![full.clone(), "Bearer rlcap1.AAAA".into()],
        ),
        (
            "two valid tokens in two headers",
            vec![full.clone(), bearer(&h.full())],
        ),
        (
            "two tokens in one header (comma)",
            vec![format!("{full}, {other}")],
        ),
        (
            "two tokens in one header (space)",
            vec![format!("{full} {other}")],
        ),
    ];
    for (case, values) in cases {
        let rejected = node::metrics::rejected_count("cap_ambiguous");
        let failures = node::metrics::auth_failure_count();
        let size = h.tree_size().await;
        let id = next_event_id();
        let mut req = h
            .anon
            .post(format!("{}/v1/transfers", h.base))
            .header("content-type", "application/json")
            .body(raw_body([transfer_json(id, 1, 2, 1)]));
        for v in &values {
            req = req.header("authorization", v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 401, "{case}: {v}");
        assert_eq!(v["error"]["reason"], "cap_ambiguous", "{case}: {v}");
        assert!(
            node::metrics::rejected_count("cap_ambiguous") > rejected,
            "{case}: not counted"
        );
        assert!(node::metrics::auth_failure_count() > failures, "{case}");
        assert_eq!(h.tree_size().await, size, "{case}: the tree grew");
        assert!(!h.exists("transfers", id).await, "{case}: written");
    }
    h.healthy("after ambiguous credentials").await;
}

/// Writes and admin calls take no query string: `POST /v1/transfers?dry_run=true` is refused
/// with 400 `invalid_query` before anything is sequenced, not committed with the parameter
/// ignored. An unknown path with a query is still `no_route`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_on_a_write_is_refused_before_sequencing() {
    let h = Harness::start().await;
    let full = bearer(&h.full());
    let admin = bearer(&h.admin());
    let setup = r#"[{"id":"1","ledger":1,"code":1},{"id":"2","ledger":1,"code":1}]"#;
    h.ok_write("set-up accounts", "/v1/accounts", &full, setup)
        .await;
    for query in ["dry_run=true", "a=1&a=2", "consistency=stale"] {
        let rejected = node::metrics::rejected_count("invalid_query");
        let size = h.tree_size().await;
        let id = next_event_id();
        let (status, v) = h
            .post(
                &format!("/v1/transfers?{query}"),
                Some(&full),
                &raw_body([transfer_json(id, 1, 2, 1)]),
            )
            .await;
        assert_eq!(status, 400, "?{query}: {v}");
        assert_eq!(v["error"]["reason"], "invalid_query", "?{query}: {v}");
        assert!(node::metrics::rejected_count("invalid_query") > rejected);
        assert_eq!(h.tree_size().await, size, "?{query}: the tree grew");
        assert!(!h.exists("transfers", id).await, "?{query}: committed");
    }
    let id = next_event_id();
    let (status, v) = h
        .post(
            "/v1/accounts?dry_run=1",
            Some(&full),
            &raw_body([account_json(id, 1)]),
        )
        .await;
    assert_eq!(
        (status, v["error"]["reason"].clone()),
        (400, "invalid_query".into()),
        "{v}"
    );
    assert!(!h.exists("accounts", id).await);
    for path in [
        "/v1/admin/snapshot?now=1",
        "/v1/admin/checkpoint?x=1",
        "/v1/admin/revocations?dry_run=true",
    ] {
        let (status, v) = h.send(true, "POST", path, Some(&admin), Some("{}")).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"]["reason"], "invalid_query", "{path}: {v}");
    }
    let (status, v) = h.post("/v1/nothing-here?x=1", Some(&full), "[]").await;
    assert_eq!(
        (status, v["error"]["reason"].clone()),
        (404, "no_route".into()),
        "{v}"
    );
    h.healthy("after refused queries").await;
}

/// Reversals are governance under dual control: the request's capability and a second one in
/// `X-Ron-Approval` must both allow `transfers.reverse` and be two tokens of two holders (the
/// holder is named by the token id, `holder_token_id`). Every refusal is `policy_denied`,
/// counted, and writes nothing; two holders reverse once, netting the original to zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversals_need_two_governance_capabilities_of_two_holders() {
    use ledger::capability::holder_token_id;
    let h = Harness::start().await;
    let full = bearer(&h.full());
    let setup = r#"[{"id":"1","ledger":1,"code":1},{"id":"2","ledger":1,"code":1}]"#;
    h.ok_write("set-up accounts", "/v1/accounts", &full, setup)
        .await;
    h.ok_write(
        "the original",
        "/v1/transfers",
        &full,
        &raw_body([transfer_json(500, 1, 2, 10)]),
    )
    .await;
    let holder = |name: &str, ops: &[Op]| {
        let id = holder_token_id(name, rand_tail());
        test_support::tokens::mint(
            &h.k1,
            id,
            now_secs(),
            3_600,
            &h.cluster,
            vec![Caveat::Ops(ops.iter().copied().collect())],
        )
    };
    let governance = [Op::CreateTransfers, Op::Reverse];
    let alice = holder("alice", &governance);
    let alice_again = holder("alice", &governance);
    let bob = holder("bob", &[Op::Reverse]);
    // An approver whose token is narrowed to another ledger, or to small amounts, approves
    // nothing outside that (the reversal takes the original's amount: 0, unbounded).
    let narrowed = |caveat: Caveat| {
        test_support::tokens::mint(
            &h.k1,
            holder_token_id("carol", rand_tail()),
            now_secs(),
            3_600,
            &h.cluster,
            vec![Caveat::Ops(BTreeSet::from([Op::Reverse])), caveat],
        )
    };
    let carol_ledger9 = narrowed(Caveat::Ledger(9));
    let carol_max5 = narrowed(Caveat::MaxAmount(5));
    let writer = h.mint(vec![Caveat::Ops(BTreeSet::from([
        Op::CreateAccounts,
        Op::CreateTransfers,
    ]))]);
    let reversal = |id: u128| {
        format!(
            r#"[{{"id":"{id}","debit_account_id":"2","credit_account_id":"1","amount":"0","pending_id":"500","ledger":1,"code":1,"flags":["reversal"]}}]"#
        )
    };
    let send = |token: &Token, approval: Option<&Token>, id: u128| {
        let mut req = h
            .anon
            .post(format!("{}/v1/transfers", h.base))
            .header("content-type", "application/json")
            .header("authorization", bearer(token))
            .body(reversal(id));
        if let Some(a) = approval {
            req = req.header("x-ron-approval", bearer(a));
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let cases: [(&str, &Token, Option<&Token>); 8] = [
        ("a writer token", &writer, None),
        (
            "a writer token with a governance approval",
            &writer,
            Some(&bob),
        ),
        ("a full token without an Ops caveat", &h.full(), Some(&bob)),
        ("one governance token alone", &alice, None),
        ("the same token twice", &alice, Some(&alice)),
        ("two tokens of the same holder", &alice, Some(&alice_again)),
        (
            "an approval restricted to another ledger",
            &alice,
            Some(&carol_ledger9),
        ),
        (
            "an approval restricted to small amounts",
            &alice,
            Some(&carol_max5),
        ),
    ];
    for (case, token, approval) in cases {
        let rejected = node::metrics::rejected_count("policy_denied");
        let size = h.tree_size().await;
        let (status, v) = send(token, approval, 600).await;
        assert_eq!(status, 403, "{case}: {v}");
        assert_eq!(v["error"]["reason"], "policy_denied", "{case}: {v}");
        assert!(
            node::metrics::rejected_count("policy_denied") > rejected,
            "{case}: not counted"
        );
        assert_eq!(h.tree_size().await, size, "{case}: the tree grew");
        assert!(!h.exists("transfers", 600).await, "{case}: written");
    }
    // Several approvals are ambiguous.
    let (status, v) = {
        let r = h
            .anon
            .post(format!("{}/v1/transfers", h.base))
            .header("content-type", "application/json")
            .header("authorization", bearer(&alice))
            .header("x-ron-approval", bearer(&bob))
            .header("x-ron-approval", bearer(&alice_again))
            .body(reversal(600))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status, v["error"]["reason"].clone()),
        (401, "cap_ambiguous".into()),
        "{v}"
    );
    // Two holders: the reversal is committed, a Merkle leaf like every event, and nets the
    // original to zero on both accounts.
    let (status, v) = send(&alice, Some(&bob), 600).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["result"], "ok", "{v}");
    assert!(v["results"][0]["leaf"].is_string(), "{v}");
    for id in [1, 2] {
        let (_, a) = h
            .send(false, "GET", &format!("/v1/accounts/{id}"), None, None)
            .await;
        assert_eq!(a["debits_posted"], "10", "account {id}: {a}");
        assert_eq!(a["credits_posted"], "10", "account {id}: {a}");
    }
    let (_, original) = h.send(false, "GET", "/v1/transfers/500", None, None).await;
    assert_eq!(original["state"], "reversed", "{original}");
    // Once: a second reversal of the same transfer changes nothing.
    let (status, v) = send(&alice, Some(&bob), 601).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["results"][0]["result"], "reversal_original_already_reversed",
        "{v}"
    );
    assert!(!h.exists("transfers", 601).await);
}

fn rand_tail() -> [u8; 8] {
    let id = unique_id();
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&id[8..]);
    tail
}
