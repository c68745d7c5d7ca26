//! Storage faults on one in-process node: a log append that fails with ENOSPC stops Raft, and
//! the node enters safe mode `disk_full` — recorded in `safe-mode.json`, reported on
//! `/v1/status`, writes refused with the reason — until an operator clears it after the
//! re-check passes.

mod common;

use node::start::Backends;
use raft_store::{MemoryLog, MemoryStateBackend, StoreError};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use test_support::events::{account_json, raw_body};

/// Appends fail with ENOSPC while set (a full disk).
#[derive(Default)]
struct Full(AtomicBool);

impl common::AppendGate for Full {
    fn before_append(&self) -> Result<(), StoreError> {
        if self.0.load(Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::from_raw_os_error(28)));
        }
        Ok(())
    }
}

type FillableLog = common::GatedLog<Full>;

async fn post(http: &reqwest::Client, base: &str, path: &str, body: String) -> (u16, Value) {
    common::post_json(http, &format!("{base}{path}"), body).await
}

/// A full disk under the log: the write that hit it is not acknowledged, the node enters safe
/// mode `disk_full` (status, marker file, the reason on every refused write), and an operator
/// clears it once space is back (the re-check writes a probe file and reads the store back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_puts_the_node_in_disk_full_safe_mode_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let log = Arc::new(FillableLog::default());
    let backends = Backends {
        log: log.clone(),
        state: Arc::new(MemoryStateBackend::new()),
    };
    let running = common::start_on(&data, backends).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    let accounts = |ids: std::ops::RangeInclusive<u128>| {
        raw_body(ids.map(|id| account_json(id, 1)).collect::<Vec<_>>())
    };

    // Nothing to clear yet.
    let (code, v) = post(&http, &base, "/v1/admin/safe-mode/clear", "{}".into()).await;
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (409, Some("not_in_safe_mode")),
        "{v}"
    );

    let (code, v) = post(&http, &base, "/v1/accounts", accounts(1..=2)).await;
    assert_eq!(code, 200, "{v}");
    log.gate.0.store(true, Ordering::SeqCst);
    let (code, v) = post(&http, &base, "/v1/accounts", accounts(3..=4)).await;
    assert_ne!(
        code, 200,
        "a write whose entry was not synced is not acknowledged: {v}"
    );

    let entered = async {
        loop {
            let v: Value = common::get_json(&http, &format!("{base}/v1/status")).await;
            if v["safe_mode_reason"] == "disk_full" {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(10), entered)
        .await
        .expect("the node enters safe mode disk_full");
    assert!(
        status["safe_mode"].as_str().unwrap().contains("disk_full"),
        "{status}"
    );
    let marker: Value =
        serde_json::from_slice(&std::fs::read(data.join("safe-mode.json")).unwrap()).unwrap();
    assert_eq!(marker["reason"], "disk_full");
    assert_eq!(node::metrics::safe_mode_value("disk_full"), 1);

    let scraped = common::get_text(&http, &format!("{base}/metrics")).await;
    assert!(
        scraped.contains("safe_mode{reason=\"disk_full\"} 1"),
        "{scraped}"
    );
    assert!(node::metrics::wal_fsync_fail_count() >= 1, "{scraped}");
    assert!(
        scraped.contains("committer_batch_latency_seconds_count"),
        "{scraped}"
    );

    let (code, v) = post(&http, &base, "/v1/accounts", accounts(5..=5)).await;
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (503, Some("safe_mode")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk_full"),
        "{v}"
    );
    assert_eq!(
        common::get_status(&http, &format!("{base}/v1/accounts/1?consistency=stale")).await,
        200,
        "what was written is still readable"
    );
    assert_eq!(
        common::get_status(&http, &format!("{base}/v1/accounts/3?consistency=stale")).await,
        404,
        "the unsynced write was not applied"
    );

    // The operator sees it in `ronctl cluster status`.
    let ronctl = |args: &[&str]| {
        std::process::Command::new(test_support::cluster::ronctl_binary())
            .env_remove("RONCTL_CA")
            .env_remove("RONCTL_TOKEN")
            .env_remove("RONCTL_TOKEN_FILE")
            .args(["--seeds", &running.api_addr, "--json"])
            .args(args)
            .output()
            .expect("run ronctl")
    };
    let out = ronctl(&["cluster", "status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["safe_mode"], "disk_full", "{rows}");

    // Space is back: the operator clears it (`ronctl cluster clear-safe-mode`); the re-check
    // passes, the record is gone.
    log.gate.0.store(false, Ordering::SeqCst);
    let out = ronctl(&["cluster", "clear-safe-mode", &running.api_addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "disk_full");
    assert_eq!(v["restart_required"], true);
    assert!(
        v["checked"].as_str().unwrap().contains("probe write"),
        "{v}"
    );
    assert!(!data.join("safe-mode.json").exists());
    // Clearing is idempotent; the node stays in safe mode until it is restarted.
    let (code, v) = post(&http, &base, "/v1/admin/safe-mode/clear", "{}".into()).await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = post(&http, &base, "/v1/accounts", accounts(6..=6)).await;
    assert_eq!(code, 503, "{v}");
    running.shutdown().await;
}

/// The memory state, whose account lookups fail their checksum while `damaged` is set (a
/// record the disk damaged under a read).
#[derive(Default)]
struct DamagedState {
    inner: MemoryStateBackend,
    damaged: AtomicBool,
}

mod delegate {
    use super::DamagedState;
    use ledger::{
        AccountRecord, Batch, Changes, ConsistencyProof, Hash, InclusionProof, LedgerMeta, Outcome,
        TransferRecord,
    };
    use raft_store::backend::{SnapshotSource, StateBackend};
    use raft_store::revocation::TokenId;
    use raft_store::{AppliedState, RevocationRecord, SnapshotData, SnapshotMeta, StoreError};
    use std::sync::atomic::Ordering;

    impl StateBackend for DamagedState {
        fn is_blocking(&self) -> bool {
            self.inner.is_blocking()
        }
        fn applied(&self) -> Result<AppliedState, StoreError> {
            self.inner.applied()
        }
        fn ledger_meta(&self) -> Result<LedgerMeta, StoreError> {
            self.inner.ledger_meta()
        }
        fn applied_with_meta(&self) -> Result<(AppliedState, LedgerMeta), StoreError> {
            self.inner.applied_with_meta()
        }
        fn apply(&self, batch: &Batch) -> Result<(Outcome, Changes), StoreError> {
            self.inner.apply(batch)
        }
        fn commit(
            &self,
            changes: Option<Changes>,
            applied: &AppliedState,
            sync: bool,
        ) -> Result<(), StoreError> {
            self.inner.commit(changes, applied, sync)
        }
        fn commit_admin(
            &self,
            write: &raft_store::AdminWrite,
            applied: &AppliedState,
            sync: bool,
        ) -> Result<(), StoreError> {
            self.inner.commit_admin(write, applied, sync)
        }
        fn cluster_version(&self) -> Result<u32, StoreError> {
            self.inner.cluster_version()
        }
        fn revocation(&self, token_id: &TokenId) -> Result<Option<RevocationRecord>, StoreError> {
            self.inner.revocation(token_id)
        }
        fn revocations(
            &self,
            after: Option<TokenId>,
            limit: usize,
        ) -> Result<Vec<RevocationRecord>, StoreError> {
            self.inner.revocations(after, limit)
        }
        fn build_snapshot(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError> {
            self.inner.build_snapshot()
        }
        fn receive_buffer(&self) -> Result<SnapshotData, StoreError> {
            self.inner.receive_buffer()
        }
        fn install_snapshot(
            &self,
            meta: &SnapshotMeta,
            data: SnapshotSource,
        ) -> Result<(), StoreError> {
            self.inner.install_snapshot(meta, data)
        }
        fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>, StoreError> {
            self.inner.current_snapshot()
        }
        fn digest(&self) -> Result<Hash, StoreError> {
            if self.damaged.load(Ordering::SeqCst) {
                return Err(damage());
            }
            self.inner.digest()
        }
        fn lookup_account(&self, id: u128) -> Result<Option<AccountRecord>, StoreError> {
            if self.damaged.load(Ordering::SeqCst) {
                return Err(damage());
            }
            self.inner.lookup_account(id)
        }
        fn lookup_transfer(&self, id: u128) -> Result<Option<TransferRecord>, StoreError> {
            self.inner.lookup_transfer(id)
        }
        fn lookup_transfer_read(
            &self,
            id: u128,
        ) -> Result<Option<ledger::TransferRead>, StoreError> {
            self.inner.lookup_transfer_read(id)
        }
        fn account_history(
            &self,
            account_id: u128,
            from: u64,
            to: u64,
            limit: usize,
        ) -> Result<Vec<u128>, StoreError> {
            self.inner.account_history(account_id, from, to, limit)
        }
        fn query_accounts(
            &self,
            filter: &ledger::Filter,
        ) -> Result<Vec<ledger::AccountRecord>, StoreError> {
            self.inner.query_accounts(filter)
        }
        fn query_transfers(
            &self,
            target: ledger::Target,
            filter: &ledger::Filter,
        ) -> Result<Vec<ledger::TransferRead>, StoreError> {
            self.inner.query_transfers(target, filter)
        }
        fn balances(
            &self,
            account_id: u128,
            range: raft_store::BalanceRange,
        ) -> Result<Vec<(u64, ledger::BalanceEntry)>, StoreError> {
            self.inner.balances(account_id, range)
        }
        fn leaf_data(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.leaf_data(index)
        }
        fn frontier_at(&self, size: u64) -> Result<ledger::Frontier, StoreError> {
            self.inner.frontier_at(size)
        }
        fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
            self.inner.inclusion_proof(index, size)
        }
        fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, StoreError> {
            self.inner.consistency_proof(old, new)
        }
        fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
            self.inner.root_at(size)
        }
    }

    fn damage() -> StoreError {
        StoreError::Corruption {
            cf: "accounts",
            key: "0000".into(),
            reason: "crc mismatch".into(),
        }
    }
}

/// A checksum failure met by a client read answers 503 `safe_mode` and puts the node in safe
/// mode `checksum_mismatch` (recorded, writes refused too); clearing is refused while the store
/// does not read back clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_met_by_a_read_puts_the_node_in_checksum_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let state = Arc::new(DamagedState::default());
    let backends = Backends {
        log: Arc::new(MemoryLog::new()),
        state: state.clone(),
    };
    let running = common::start_on(&data, backends).await;
    let base = format!("http://{}", running.api_addr);
    let http = reqwest::Client::new();
    let body = raw_body(vec![account_json(1, 1)]);
    let (code, v) = post(&http, &base, "/v1/accounts", body).await;
    assert_eq!(code, 200, "{v}");

    state.damaged.store(true, Ordering::SeqCst);
    let read = common::get_json(&http, &format!("{base}/v1/accounts/1?consistency=stale")).await;
    assert_eq!(read["error"]["reason"], "safe_mode", "{read}");
    let status = common::get_json(&http, &format!("{base}/v1/status")).await;
    assert_eq!(status["safe_mode_reason"], "checksum_mismatch", "{status}");
    let marker: Value =
        serde_json::from_slice(&std::fs::read(data.join("safe-mode.json")).unwrap()).unwrap();
    assert_eq!(marker["reason"], "checksum_mismatch");
    let (code, v) = post(
        &http,
        &base,
        "/v1/accounts",
        raw_body(vec![account_json(2, 1)]),
    )
    .await;
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (503, Some("safe_mode")),
        "{v}"
    );
    let (code, v) = post(&http, &base, "/v1/admin/safe-mode/clear", "{}".into()).await;
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (409, Some("safe_mode_check_failed")),
        "the store does not read back clean: {v}"
    );
    assert!(
        data.join("safe-mode.json").exists(),
        "a failed check changes nothing"
    );
    running.shutdown().await;
}
