//! Signed checkpoints of this node's applied Merkle tree.
//!
//! Every node signs checkpoints of its **own** applied state with its **own** Ed25519 key. A
//! checkpoint's content — cluster id, tree size, root, and the cluster time of the last event —
//! is a deterministic function of the applied log, so any two nodes' checkpoints of one tree size
//! carry the same root; a client that trusts the cluster's published keys (one per node) can
//! verify a checkpoint from whichever node answers. A node signs when its tree grows past another
//! multiple of `checkpoint.interval_events`, on start-up (if the tree is not empty) and on
//! request; it keeps the newest `checkpoint.retention`.
//!
//! The signing key lives in a key file readable only by the node (mode 0600, checked at start);
//! only its KID is ever logged or returned. The seed is zeroized after use, and the signer
//! zeroizes its key when dropped. A node rotates its key on request ([`Checkpoints::rotate`])
//! or when it starts with a new key file; the keys it signed with before stay published with
//! the tree sizes they signed ([`keys::KeyHistory`]), so what they signed still verifies.

mod keys;
mod log;

pub use keys::{history_path, key_path, load_signer};
pub use log::log_path;

use crate::config::Config;
use keys::KeyHistory;
use ledger::checkpoint::{CheckpointSigner, KeyRecord, SignedCheckpoint};
use ledger::LedgerMeta;
use log::CheckpointLog;
use raft_store::{StateBackend, StoreError};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// What [`Checkpoints::rotate`] did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Rotation {
    /// The key retired, with the sizes it signed.
    pub retired: KeyRecord,
    /// The key in use now.
    pub current: KeyRecord,
    /// The applied tree signed with the new key (`None` while the tree is empty).
    pub checkpoint: Option<SignedCheckpoint>,
}

/// Why a rotation did not happen (the old key stays in use).
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The applied state could not be read.
    #[error(transparent)]
    Storage(StoreError),
    /// The new key could not be made or kept.
    #[error("{0}")]
    Key(String),
}

/// This node's signer and the checkpoints it made.
pub struct Checkpoints {
    /// The key in use; read and replaced only while `made` is held, so that nothing is signed
    /// with a key after it was retired.
    signer: RwLock<Arc<CheckpointSigner>>,
    /// Every key this node signed with; changed only while `made` is held.
    history: Mutex<KeyHistory>,
    /// Where a rotated key is written (`None`: amnesia mode, the key lives for this run).
    key_path: Option<PathBuf>,
    node_id: u64,
    cluster_id: String,
    interval: u64,
    retention: usize,
    /// Newest first: interval and admin checkpoints, up to `retention`.
    made: Mutex<VecDeque<SignedCheckpoint>>,
    /// Where `made` is kept across restarts (`None` in amnesia mode).
    log: Mutex<Option<CheckpointLog>>,
    /// The newest checkpoint a read caused (replaced by the next one; never retained).
    on_read: Mutex<Option<SignedCheckpoint>>,
    /// When a read last caused a signature; held while a read waits for its turn to sign.
    read_signed_at: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    read_sign_interval: std::time::Duration,
}

impl Checkpoints {
    /// Checkpoints signed by `signer` as the configuration says, starting from those retained
    /// in the data directory by earlier runs (in amnesia mode, from none). `tree_size` is the
    /// applied tree's size now: a key file holding a new key retires the previous one there.
    pub fn new(config: &Config, signer: CheckpointSigner, tree_size: u64) -> anyhow::Result<Self> {
        let retention = config.checkpoint.retention;
        let history = KeyHistory::open(history_path(config), &signer, tree_size)?;
        let (log, made) = match log_path(config) {
            Some(path) => {
                let (log, made) = CheckpointLog::open(path, retention)?;
                (Some(log), made)
            }
            None => (None, VecDeque::new()),
        };
        Ok(Self {
            signer: RwLock::new(Arc::new(signer)),
            history: Mutex::new(history),
            key_path: key_path(config),
            node_id: config.node_id,
            cluster_id: config.cluster_id.clone(),
            interval: config.checkpoint.interval_events,
            retention,
            made: Mutex::new(made),
            log: Mutex::new(log),
            on_read: Mutex::new(None),
            read_signed_at: tokio::sync::Mutex::new(None),
            read_sign_interval: std::time::Duration::from_millis(
                config.checkpoint.read_sign_interval_ms,
            ),
        })
    }

    /// Every public key this node signed with (the one in use and the retired ones), by KID.
    pub fn public_keys(&self) -> BTreeMap<String, String> {
        self.key_history()
            .into_iter()
            .map(|r| (r.kid, r.public_key))
            .collect()
    }

    /// The key history, oldest first: the retired keys with the tree sizes they signed, then
    /// the key in use.
    pub fn key_history(&self) -> Vec<KeyRecord> {
        self.history().records().to_vec()
    }

    /// The KID this node signs with now.
    pub fn kid(&self) -> String {
        self.signer().kid().to_string()
    }

    fn signer(&self) -> Arc<CheckpointSigner> {
        self.signer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn history(&self) -> std::sync::MutexGuard<'_, KeyHistory> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Retire the key in use at the applied tree's size and sign from now on with a new one:
    /// the new key file replaces the old one (atomically; the old seed is gone), the history
    /// records both, and the applied tree is signed at once with the new key (retained). What
    /// the old key signed stays verifiable with the published history. Answers the retired
    /// record, the new one, and the new checkpoint (`None` while the tree is empty).
    pub fn rotate(&self, state: &dyn StateBackend) -> Result<Rotation, RotateError> {
        let mut made = self.made();
        let meta = state.ledger_meta().map_err(RotateError::Storage)?;
        let (seed, signer) = keys::new_signer(&self.cluster_id, self.node_id)
            .map_err(|e| RotateError::Key(e.to_string()))?;
        // The key file first: a crash after it leaves the new key in the file, and the next
        // start retires the old one in the history (see `KeyHistory::open`).
        if let Some(path) = &self.key_path {
            let text =
                keys::key_file_text(&seed, &signer).map_err(|e| RotateError::Key(e.to_string()))?;
            crate::security::files::replace_private(path, text.as_bytes())
                .map_err(|e| RotateError::Key(format!("write key file {}: {e}", path.display())))?;
        }
        drop(seed);
        let mut history = self.history();
        history
            .switch_to(&signer, meta.tree.size)
            .map_err(|e| RotateError::Key(e.to_string()))?;
        let records = history.records();
        let retired = records[records.len() - 2].clone();
        let current = records[records.len() - 1].clone();
        drop(history);
        *self.signer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(signer);
        tracing::warn!(
            retired = %retired.kid,
            kid = %current.kid,
            tree_size = meta.tree.size,
            "checkpoint key rotated"
        );
        let checkpoint = self
            .sign_locked(&mut made, &meta)
            .map_err(RotateError::Storage)?;
        Ok(Rotation {
            retired,
            current,
            checkpoint,
        })
    }

    fn made(&self) -> std::sync::MutexGuard<'_, VecDeque<SignedCheckpoint>> {
        self.made.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_read(&self) -> std::sync::MutexGuard<'_, Option<SignedCheckpoint>> {
        self.on_read.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The checkpoint a read caused, if it is newer than every retained one.
    fn newer_on_read(&self, retained: Option<&SignedCheckpoint>) -> Option<SignedCheckpoint> {
        let on_read = self.on_read().clone()?;
        match retained {
            Some(r) if r.tree_size >= on_read.tree_size => None,
            _ => Some(on_read),
        }
    }

    /// The newest checkpoint.
    pub fn latest(&self) -> Option<SignedCheckpoint> {
        let retained = self.made().front().cloned();
        self.newer_on_read(retained.as_ref()).or(retained)
    }

    /// Up to `limit` checkpoints, newest first: the retained ones, led by the one a read
    /// caused when it is newer.
    pub fn list(&self, limit: usize) -> Vec<SignedCheckpoint> {
        let made = self.made();
        let mut out: Vec<SignedCheckpoint> = self.newer_on_read(made.front()).into_iter().collect();
        out.extend(made.iter().cloned());
        out.truncate(limit);
        out
    }

    /// For an unauthenticated read: the newest checkpoint if it covers the applied tree, else
    /// a new signature of the applied tree — at most one per `read_sign_interval_ms`; a read
    /// inside the window waits out its rest (reads queue, and one signature serves them all).
    /// `None` while the tree is empty.
    pub async fn sign_for_read(
        &self,
        state: &dyn StateBackend,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        let covers = |size: u64| self.latest().filter(|c| c.tree_size >= size);
        let size = state.ledger_meta()?.tree.size;
        if size == 0 {
            return Ok(None);
        }
        if let Some(c) = covers(size) {
            return Ok(Some(c));
        }
        let mut signed_at = self.read_signed_at.lock().await;
        if let Some(at) = *signed_at {
            let wait = self.read_sign_interval.saturating_sub(at.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        // Another read may have signed while this one waited; cover what is applied now.
        let meta = state.ledger_meta()?;
        if let Some(c) = covers(meta.tree.size) {
            return Ok(Some(c));
        }
        let signed = {
            // Under `made`, like every signature: a rotation cannot retire the key meanwhile.
            let _made = self.made();
            let signer = self.signer();
            let signed = signer
                .sign(
                    &self.cluster_id,
                    meta.tree.size,
                    meta.root,
                    meta.last_timestamp,
                )
                .map_err(|e| StoreError::Task(format!("sign checkpoint: {e}")))?;
            tracing::debug!(tree_size = meta.tree.size, kid = %signer.kid(), "signed checkpoint for a read");
            *self.on_read() = Some(signed.clone());
            signed
        };
        *signed_at = Some(tokio::time::Instant::now());
        Ok(Some(signed))
    }

    /// Sign the applied tree now (or return the newest checkpoint if it already covers it).
    /// `None` while the tree is empty.
    pub fn sign_now(
        &self,
        state: &dyn StateBackend,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.sign_if(&state.ledger_meta()?, |latest, size| latest < size)
    }

    /// Called as the applied state moves: sign when the tree crossed another interval boundary
    /// (or when nothing was signed yet this run).
    pub fn on_applied(&self, state: &dyn StateBackend) -> Result<(), StoreError> {
        let interval = self.interval;
        self.sign_if(&state.ledger_meta()?, |latest, size| {
            size / interval > latest / interval
        })?;
        Ok(())
    }

    /// Sign `meta`'s tree if it is not empty and `due(newest signed size, size)` (always due when
    /// nothing was signed yet); otherwise the newest checkpoint.
    fn sign_if(
        &self,
        meta: &LedgerMeta,
        due: impl FnOnce(u64, u64) -> bool,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        let size = meta.tree.size;
        if size == 0 {
            return Ok(None);
        }
        let mut made = self.made();
        if let Some(latest) = made.front() {
            if !due(latest.tree_size, size) {
                let latest = latest.clone();
                return Ok(Some(self.newer_on_read(Some(&latest)).unwrap_or(latest)));
            }
        }
        self.sign_locked(&mut made, meta)
    }

    /// Sign `meta`'s tree with the key in use (`made` held), retain and keep the checkpoint.
    /// `None` while the tree is empty.
    fn sign_locked(
        &self,
        made: &mut VecDeque<SignedCheckpoint>,
        meta: &LedgerMeta,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        let size = meta.tree.size;
        if size == 0 {
            return Ok(None);
        }
        let signer = self.signer();
        let signed = signer
            .sign(&self.cluster_id, size, meta.root, meta.last_timestamp)
            .map_err(|e| StoreError::Task(format!("sign checkpoint: {e}")))?;
        tracing::info!(tree_size = size, kid = %signer.kid(), "signed checkpoint");
        made.push_front(signed.clone());
        made.truncate(self.retention);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = log.as_mut() {
            // Served already from memory; a failed write only costs its survival of a restart.
            if let Err(e) = log.append(&signed, made, self.retention) {
                tracing::error!(error = %e, path = %log.path.display(), "checkpoint not kept on disk");
            }
        }
        Ok(Some(signed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn config(dir: &Path) -> Config {
        let mut c = crate::config::load(
            None,
            Vec::new(),
            &[
                ("node_id".into(), "2".into()),
                ("api_addr".into(), "127.0.0.1:1".into()),
                ("peer_addr".into(), "127.0.0.1:2".into()),
                ("data_dir".into(), dir.display().to_string()),
                ("auth.enabled".into(), "false".into()),
                ("tls.mtls_required".into(), "false".into()),
            ],
        )
        .unwrap();
        c.checkpoint.key_file = Some(dir.join("k.json"));
        c
    }

    #[test]
    fn the_key_file_is_created_private_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let first = load_signer(&c).unwrap();
        let path = dir.path().join("k.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_signer(&c).unwrap();
        assert_eq!(first.kid(), again.kid());
        assert_eq!(first.public_key_hex(), again.public_key_hex());
        assert!(first.kid().starts_with("ron-ledger/node-2/"));
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let seed = file["seed"].as_str().unwrap();
        assert_eq!(seed.len(), 64);
        assert!(
            !format!("{first:?}").contains(seed),
            "Debug never shows the seed"
        );
    }

    #[test]
    fn a_readable_or_malformed_key_file_stops_start_up_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        load_signer(&c).unwrap();
        let path = dir.path().join("k.json");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_signer(&c).expect_err("refused").to_string();
        assert!(e.contains("k.json") && e.contains("chmod 600"), "{e}");
        std::fs::write(&path, "{\"kid\":\"x\",\"seed\":\"zz\"}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_signer(&c).expect_err("refused").to_string();
        assert!(e.contains("k.json") && e.contains("hex"), "{e}");
    }

    #[test]
    fn checkpoints_follow_the_interval_and_the_retention() {
        use ledger::{Account, Batch, Operation};
        use raft_store::StateBackend as _;
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.checkpoint.interval_events = 4;
        c.checkpoint.retention = 2;
        let cps = Checkpoints::new(&c, load_signer(&c).unwrap(), 0).unwrap();
        let state = raft_store::MemoryStateBackend::new();
        assert!(cps.sign_now(&state).unwrap().is_none(), "empty tree");
        let mut next = 1u128;
        for round in 0..4u64 {
            let accounts = (0..3)
                .map(|_| {
                    next += 1;
                    Account {
                        id: next,
                        ledger: 1,
                        code: 1,
                        ..Default::default()
                    }
                })
                .collect();
            let batch = Batch {
                timestamp: 1_000 + round,
                operations: vec![Operation::CreateAccounts(accounts)],
            };
            let (_, changes) = state.apply(&batch).unwrap();
            state
                .commit(Some(changes), &raft_store::AppliedState::default(), true)
                .unwrap();
            cps.on_applied(&state).unwrap();
        }
        // Sizes 3, 6, 9, 12: signed at 3 (first), 6 (crossed 4), 9 (crossed 8), 12 (crossed 12).
        let list = cps.list(10);
        assert_eq!(list.len(), 2, "retention");
        assert_eq!(list[0].tree_size, 12);
        assert_eq!(list[1].tree_size, 9);
        let mut keys = ledger::checkpoint::TrustedKeys::new();
        for (kid, public) in cps.public_keys() {
            keys.insert(kid, &public).unwrap();
        }
        list[0].verify(&keys).unwrap();
    }

    /// Reads may cause signing, bounded: one signature per `read_sign_interval_ms` (a read in
    /// the window waits, then is covered), kept apart from the retained checkpoints.
    #[tokio::test]
    async fn reads_sign_at_most_once_per_interval_and_never_evict_retained_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.checkpoint.interval_events = 1_000;
        c.checkpoint.retention = 2;
        c.checkpoint.read_sign_interval_ms = 300;
        let cps = Checkpoints::new(&c, load_signer(&c).unwrap(), 0).unwrap();
        let state = raft_store::MemoryStateBackend::new();
        assert!(
            cps.sign_for_read(&state).await.unwrap().is_none(),
            "empty tree"
        );
        create_account(&state, 2);
        cps.on_applied(&state).unwrap();
        assert_eq!(
            cps.list(10).len(),
            1,
            "the first applied event is signed (retained)"
        );
        create_account(&state, 3);
        let first = cps.sign_for_read(&state).await.unwrap().unwrap();
        assert_eq!(first.tree_size, 2, "a read covers what is applied");
        // Nothing new: the same checkpoint, no new signature, no wait.
        let again = cps.sign_for_read(&state).await.unwrap().unwrap();
        assert_eq!(again, first);
        // The tree grew inside the window: the read waits out the window, then is covered.
        create_account(&state, 4);
        let t = tokio::time::Instant::now();
        let second = cps.sign_for_read(&state).await.unwrap().unwrap();
        assert_eq!(second.tree_size, 3);
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(250),
            "signed again after {:?}, inside the 300 ms window",
            t.elapsed()
        );
        assert_eq!(cps.latest(), Some(second.clone()));
        // Read-caused checkpoints lead the list but are not retained: one slot, replaced.
        let list = cps.list(10);
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(list[0], second);
        assert_eq!(
            list[1].tree_size, 1,
            "the retained interval checkpoint stays"
        );
        // An admin checkpoint at the same size is retained and supersedes the read's.
        let admin = cps.sign_now(&state).unwrap().unwrap();
        assert_eq!(admin.tree_size, 3);
        assert_eq!(cps.list(10).len(), 2);
    }

    /// Apply one entry creating account `id` and commit it.
    fn create_account(state: &raft_store::MemoryStateBackend, id: u128) {
        use raft_store::StateBackend as _;
        let batch = ledger::Batch {
            timestamp: 1_000 + id as u64,
            operations: vec![ledger::Operation::CreateAccounts(vec![ledger::Account {
                id,
                ledger: 1,
                code: 1,
                ..Default::default()
            }])],
        };
        let (_, changes) = state.apply(&batch).unwrap();
        state
            .commit(Some(changes), &raft_store::AppliedState::default(), true)
            .unwrap();
    }

    /// The keys `/v1/checkpoints/keys` publishes, as a verifier trusts them (ranges included).
    fn trusted(cps: &Checkpoints) -> ledger::checkpoint::TrustedKeys {
        let mut keys = ledger::checkpoint::TrustedKeys::new();
        for record in cps.key_history() {
            keys.insert_record(&record).unwrap();
        }
        keys
    }

    /// A rotation retires the old key at the applied size and signs with a new one at once;
    /// both stay published (across a restart too), what the old key signed still verifies, and
    /// the new key file replaced the old one (0600).
    #[test]
    fn a_rotated_key_stays_published_and_its_checkpoints_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.checkpoint.interval_events = 1;
        let state = raft_store::MemoryStateBackend::new();
        let cps = Checkpoints::new(&c, load_signer(&c).unwrap(), 0).unwrap();
        for id in 1..=3 {
            create_account(&state, id);
            cps.on_applied(&state).unwrap();
        }
        let old_kid = cps.kid();
        let old = cps.latest().unwrap();
        assert_eq!((old.tree_size, old.kid.as_str()), (3, old_kid.as_str()));
        let r = cps.rotate(&state).unwrap();
        assert_eq!(r.retired.kid, old_kid);
        assert_eq!(
            (r.retired.first_tree_size, r.retired.last_tree_size),
            (0, Some(3))
        );
        assert_eq!(
            (r.current.first_tree_size, r.current.last_tree_size),
            (3, None)
        );
        let new_kid = cps.kid();
        assert_ne!(new_kid, old_kid);
        let signed = r
            .checkpoint
            .expect("the applied tree is signed with the new key");
        assert_eq!(
            (signed.tree_size, signed.kid.as_str()),
            (3, new_kid.as_str())
        );
        let key_file = std::fs::read_to_string(dir.path().join("k.json")).unwrap();
        assert!(key_file.contains(&new_kid) && !key_file.contains(&old_kid));
        let mode = std::fs::metadata(dir.path().join("k.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        create_account(&state, 4);
        cps.on_applied(&state).unwrap();
        assert_eq!(cps.latest().unwrap().kid, new_kid);
        // A restart loads the new key and keeps the whole history.
        drop(cps);
        let again = Checkpoints::new(&c, load_signer(&c).unwrap(), 4).unwrap();
        assert_eq!(again.kid(), new_kid);
        assert_eq!(again.public_keys().len(), 2);
        let keys = trusted(&again);
        old.verify(&keys)
            .expect("a checkpoint of the retired key still verifies");
        for cp in again.list(10) {
            cp.verify(&keys).unwrap();
        }
    }

    /// A new key file put in place between runs retires the previous key at the applied size
    /// then; the old key file put back afterwards stops start-up (a retired key never signs
    /// again).
    #[test]
    fn a_new_key_file_retires_the_old_key_and_a_retired_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let state = raft_store::MemoryStateBackend::new();
        let first = Checkpoints::new(&c, load_signer(&c).unwrap(), 0).unwrap();
        create_account(&state, 1);
        create_account(&state, 2);
        let old = first.sign_now(&state).unwrap().unwrap();
        drop(first);
        let path = dir.path().join("k.json");
        let old_file = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let second = Checkpoints::new(&c, load_signer(&c).unwrap(), 2).unwrap();
        let history = second.key_history();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].kid, old.kid);
        assert_eq!(history[0].last_tree_size, Some(2));
        assert_eq!(history[1].first_tree_size, 2);
        old.verify(&trusted(&second)).unwrap();
        drop(second);
        std::fs::remove_file(&path).unwrap();
        crate::security::files::write_new_private(&path, &old_file).unwrap();
        let e = Checkpoints::new(&c, load_signer(&c).unwrap(), 2)
            .err()
            .expect("a retired key is refused")
            .to_string();
        assert!(e.contains("retired") && e.contains(&old.kid), "{e}");
    }

    #[test]
    fn retained_checkpoints_survive_a_restart_and_their_log_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.checkpoint.interval_events = 1;
        c.checkpoint.retention = 3;
        let state = raft_store::MemoryStateBackend::new();
        let before = {
            let cps = Checkpoints::new(&c, load_signer(&c).unwrap(), 0).unwrap();
            for id in 1..=10 {
                create_account(&state, id);
                cps.on_applied(&state).unwrap();
            }
            cps.list(10)
        };
        assert_eq!(
            before.iter().map(|c| c.tree_size).collect::<Vec<_>>(),
            [10, 9, 8]
        );
        let path = dir.path().join("checkpoints.jsonl");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 6, "the log is compacted: {lines} lines");
        // A restart serves the same checkpoints, and they still verify.
        let again = Checkpoints::new(&c, load_signer(&c).unwrap(), 0).unwrap();
        assert_eq!(again.list(10), before);
        let mut keys = ledger::checkpoint::TrustedKeys::new();
        for (kid, public) in again.public_keys() {
            keys.insert(kid, &public).unwrap();
        }
        for cp in &before {
            cp.verify(&keys).unwrap();
        }
        // A line torn by a crash is skipped, not fatal.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"cluster_id\":\"te").unwrap();
        drop(f);
        let torn = Checkpoints::new(&c, load_signer(&c).unwrap(), 0).unwrap();
        assert_eq!(torn.list(10), before);
        // Nothing is kept in amnesia mode.
        let mut amnesic = c.clone();
        amnesic.amnesia = true;
        assert!(log_path(&amnesic).is_none());
    }
}
