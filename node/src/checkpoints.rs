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
//! zeroizes its key when dropped.

use crate::config::Config;
use ledger::checkpoint::{CheckpointSigner, SignedCheckpoint};
use ledger::LedgerMeta;
use raft_store::{StateBackend, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// The key file as read. The seed's text is moved into a zeroizing buffer as soon as it is
/// parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// Key id, as published with the public key.
    kid: String,
    /// The 32-byte Ed25519 seed, hex.
    seed: String,
}

/// The key file as written (borrowing, so the only copies of the seed are zeroizing buffers).
#[derive(Serialize)]
struct KeyFileOut<'a> {
    kid: &'a str,
    seed: &'a str,
}

/// Where this node's key file is, if it has one.
pub fn key_path(config: &Config) -> Option<PathBuf> {
    config.checkpoint.key_file.clone().or_else(|| {
        (!config.amnesia)
            .then(|| config.data_dir.as_ref().map(|d| d.join("checkpoint.key")))
            .flatten()
    })
}

/// A new random seed and its signer, whose KID is `<cluster>/node-<id>/<public key prefix>`.
fn new_signer(config: &Config) -> anyhow::Result<(Zeroizing<[u8; 32]>, CheckpointSigner)> {
    use rand::RngCore;
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let public = CheckpointSigner::new("", &seed)?.public_key_hex();
    let kid = format!(
        "{}/node-{}/{}",
        config.cluster_id,
        config.node_id,
        &public[..16]
    );
    let signer = CheckpointSigner::new(kid, &seed)?;
    Ok((seed, signer))
}

/// Load the signing key named by the configuration, creating the file (0600) on first start.
/// In amnesia mode without a key file, a key is generated for this run only.
pub fn load_signer(config: &Config) -> anyhow::Result<CheckpointSigner> {
    let Some(path) = key_path(config) else {
        return Ok(new_signer(config)?.1);
    };
    if path.exists() {
        return read_key(&path);
    }
    let (seed, signer) = new_signer(config)?;
    let seed_hex = Zeroizing::new(ledger::wire::hex::encode(seed.as_ref()));
    let text = Zeroizing::new(serde_json::to_string(&KeyFileOut {
        kid: signer.kid(),
        seed: &seed_hex,
    })?);
    crate::security::files::write_private_file(&path, &text)?;
    tracing::info!(kid = %signer.kid(), "created a checkpoint signing key");
    Ok(signer)
}

fn read_key(path: &Path) -> anyhow::Result<CheckpointSigner> {
    let text = crate::security::files::read_private_file(path, "key file")?;
    let file: KeyFile = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("key file {}: not a key file ({e})", path.display()))?;
    let seed_hex = Zeroizing::new(file.seed);
    let bytes = Zeroizing::new(ledger::wire::hex::decode(&seed_hex).ok_or_else(|| {
        anyhow::anyhow!("key file {}: seed is not 64 hex digits", path.display())
    })?);
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("key file {}: seed is not 32 bytes", path.display()))?,
    );
    Ok(CheckpointSigner::new(file.kid, &seed)?)
}

/// Where this node keeps its retained checkpoints across restarts (none in amnesia mode).
pub fn log_path(config: &Config) -> Option<PathBuf> {
    (!config.amnesia)
        .then(|| {
            config
                .data_dir
                .as_ref()
                .map(|d| d.join("checkpoints.jsonl"))
        })
        .flatten()
}

/// The retained checkpoints on disk: one JSON checkpoint per line, oldest first, appended and
/// synced as each is signed, and rewritten (atomically) to the newest `retention` when it has
/// grown to twice that.
struct CheckpointLog {
    path: PathBuf,
    lines: usize,
}

impl CheckpointLog {
    /// Read the file (missing: none yet). A line that does not parse — a write torn by a crash
    /// — is skipped with a warning; the next compaction drops it.
    fn open(path: PathBuf, retention: usize) -> anyhow::Result<(Self, VecDeque<SignedCheckpoint>)> {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("checkpoint log {}: {e}", path.display()),
        };
        let mut newest_first = VecDeque::new();
        let mut lines = 0;
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            match serde_json::from_str::<SignedCheckpoint>(line) {
                Ok(cp) => newest_first.push_front(cp),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    line = n + 1,
                    error = %e,
                    "skipping an unreadable line of the checkpoint log"
                ),
            }
        }
        newest_first.truncate(retention);
        if !newest_first.is_empty() {
            tracing::info!(
                checkpoints = newest_first.len(),
                path = %path.display(),
                "checkpoints signed before the restart are served again"
            );
        }
        Ok((Self { path, lines }, newest_first))
    }

    /// Append `cp` durably; compact first when the file holds twice `retained.len()` lines.
    fn append(
        &mut self,
        cp: &SignedCheckpoint,
        retained: &VecDeque<SignedCheckpoint>,
        retention: usize,
    ) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if self.lines >= retention.saturating_mul(2) {
            let mut text = String::new();
            for c in retained.iter().rev() {
                text.push_str(&serde_json::to_string(c).map_err(std::io::Error::other)?);
                text.push('\n');
            }
            let tmp = self.path.with_extension("jsonl.tmp");
            let _ = std::fs::remove_file(&tmp);
            crate::security::files::write_new_private(&tmp, text.as_bytes())?;
            std::fs::rename(&tmp, &self.path)?;
            self.lines = retained.len();
            return Ok(());
        }
        let mut line = serde_json::to_string(cp).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        self.lines += 1;
        Ok(())
    }
}

/// This node's signer and the checkpoints it made.
pub struct Checkpoints {
    signer: CheckpointSigner,
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
    /// in the data directory by earlier runs (in amnesia mode, from none).
    pub fn new(config: &Config, signer: CheckpointSigner) -> anyhow::Result<Self> {
        let retention = config.checkpoint.retention;
        let (log, made) = match log_path(config) {
            Some(path) => {
                let (log, made) = CheckpointLog::open(path, retention)?;
                (Some(log), made)
            }
            None => (None, VecDeque::new()),
        };
        Ok(Self {
            signer,
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

    /// This node's public key, by KID.
    pub fn public_keys(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(self.signer.kid().to_string(), self.signer.public_key_hex())])
    }

    /// The KID this node signs with.
    pub fn kid(&self) -> &str {
        self.signer.kid()
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
        let signed = self
            .signer
            .sign(
                &self.cluster_id,
                meta.tree.size,
                meta.root,
                meta.last_timestamp,
            )
            .map_err(|e| StoreError::Task(format!("sign checkpoint: {e}")))?;
        tracing::debug!(tree_size = meta.tree.size, kid = %self.signer.kid(), "signed checkpoint for a read");
        *self.on_read() = Some(signed.clone());
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
        let signed = self
            .signer
            .sign(&self.cluster_id, size, meta.root, meta.last_timestamp)
            .map_err(|e| StoreError::Task(format!("sign checkpoint: {e}")))?;
        tracing::info!(tree_size = size, kid = %self.signer.kid(), "signed checkpoint");
        made.push_front(signed.clone());
        made.truncate(self.retention);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = log.as_mut() {
            // Served already from memory; a failed write only costs its survival of a restart.
            if let Err(e) = log.append(&signed, &made, self.retention) {
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
        let cps = Checkpoints::new(&c, load_signer(&c).unwrap()).unwrap();
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
        let cps = Checkpoints::new(&c, load_signer(&c).unwrap()).unwrap();
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

    #[test]
    fn retained_checkpoints_survive_a_restart_and_their_log_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.checkpoint.interval_events = 1;
        c.checkpoint.retention = 3;
        let state = raft_store::MemoryStateBackend::new();
        let before = {
            let cps = Checkpoints::new(&c, load_signer(&c).unwrap()).unwrap();
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
        let again = Checkpoints::new(&c, load_signer(&c).unwrap()).unwrap();
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
        let torn = Checkpoints::new(&c, load_signer(&c).unwrap()).unwrap();
        assert_eq!(torn.list(10), before);
        // Nothing is kept in amnesia mode.
        let mut amnesic = c.clone();
        amnesic.amnesia = true;
        assert!(log_path(&amnesic).is_none());
    }
}
