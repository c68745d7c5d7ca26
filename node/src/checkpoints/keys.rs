//! The checkpoint signing key: its file (0600, created on first start), and the history of the
//! keys this node signed with (public keys only, `data_dir/checkpoint-keys.json`).

use crate::config::Config;
use ledger::checkpoint::{CheckpointSigner, KeyRecord, TrustedKeys};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
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
pub(super) fn new_signer(
    cluster_id: &str,
    node_id: u64,
) -> anyhow::Result<(Zeroizing<[u8; 32]>, CheckpointSigner)> {
    use rand::RngCore;
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let public = CheckpointSigner::new("", &seed)?.public_key_hex();
    let kid = format!("{cluster_id}/node-{node_id}/{}", &public[..16]);
    let signer = CheckpointSigner::new(kid, &seed)?;
    Ok((seed, signer))
}

/// The key file's text for `seed` under `signer`'s KID, in a zeroizing buffer.
pub(super) fn key_file_text(
    seed: &[u8; 32],
    signer: &CheckpointSigner,
) -> anyhow::Result<Zeroizing<String>> {
    let seed_hex = Zeroizing::new(ledger::wire::hex::encode(seed));
    Ok(Zeroizing::new(serde_json::to_string(&KeyFileOut {
        kid: signer.kid(),
        seed: &seed_hex,
    })?))
}

/// Load the signing key named by the configuration, creating the file (0600) on first start.
/// In amnesia mode without a key file, a key is generated for this run only.
pub fn load_signer(config: &Config) -> anyhow::Result<CheckpointSigner> {
    let Some(path) = key_path(config) else {
        return Ok(new_signer(&config.cluster_id, config.node_id)?.1);
    };
    if path.exists() {
        return read_key(&path);
    }
    let (seed, signer) = new_signer(&config.cluster_id, config.node_id)?;
    let text = key_file_text(&seed, &signer)?;
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

/// Where this node keeps the history of its checkpoint keys (none in amnesia mode).
pub fn history_path(config: &Config) -> Option<PathBuf> {
    (!config.amnesia)
        .then(|| {
            config
                .data_dir
                .as_ref()
                .map(|d| d.join("checkpoint-keys.json"))
        })
        .flatten()
}

/// The `format` of the key history file.
const HISTORY_FORMAT: &str = "ron-ledger-checkpoint-keys/1";

/// The key history file: public keys only, oldest first, the key in use last.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFile {
    format: String,
    keys: Vec<KeyRecord>,
}

/// Every key this node has signed checkpoints with, oldest first; the last is the one in use
/// (its `last_tree_size` is `None`), every other one is retired with the size range it signed.
/// Kept in `data_dir/checkpoint-keys.json` (replaced atomically), in memory in amnesia mode.
#[derive(Debug)]
pub(super) struct KeyHistory {
    path: Option<PathBuf>,
    records: Vec<KeyRecord>,
}

impl KeyHistory {
    /// Read the history and bring it up to `signer`, the key loaded at start-up, at applied
    /// tree size `tree_size`: a new key file retires the previous key at that size (nothing it
    /// signed can be larger: it signed only applied trees). A key file holding a retired key
    /// stops start-up: a retired key never signs again.
    pub(super) fn open(
        path: Option<PathBuf>,
        signer: &CheckpointSigner,
        tree_size: u64,
    ) -> anyhow::Result<Self> {
        let records = match &path {
            Some(p) => read_history(p)?,
            None => Vec::new(),
        };
        let mut history = Self { path, records };
        let public_key = signer.public_key_hex();
        match history.records.last() {
            Some(current) if current.kid == signer.kid() => {
                if current.public_key != public_key {
                    anyhow::bail!(
                        "checkpoint key {:?}: the key file's public key is not the one published \
                         under that KID; install a key file with a new KID",
                        signer.kid()
                    );
                }
                return Ok(history);
            }
            _ => {}
        }
        if let Some(retired) = history.records.iter().find(|r| r.kid == signer.kid()) {
            anyhow::bail!(
                "checkpoint key {:?} was retired at tree size {}; a retired key does not sign \
                 again: install a new key file (or remove it to have one created)",
                retired.kid,
                retired.last_tree_size.unwrap_or(retired.first_tree_size)
            );
        }
        let previous = history.records.last().map(|r| r.kid.clone());
        history.switch_to(signer, tree_size)?;
        if let Some(previous) = previous {
            tracing::info!(
                retired = %previous,
                kid = %signer.kid(),
                tree_size,
                "the checkpoint key file holds a new key: the previous key is retired"
            );
        }
        Ok(history)
    }

    /// Retire the key in use at `tree_size` and record `signer`'s key as in use from there,
    /// then keep the history (durably, before anything is signed with the new key).
    pub(super) fn switch_to(
        &mut self,
        signer: &CheckpointSigner,
        tree_size: u64,
    ) -> anyhow::Result<()> {
        let mut records = self.records.clone();
        let first_tree_size = match records.last_mut() {
            Some(current) => {
                current.last_tree_size = Some(tree_size.max(current.first_tree_size));
                tree_size
            }
            // The key in use before there was a history may have signed from the start.
            None => 0,
        };
        records.push(KeyRecord {
            kid: signer.kid().to_string(),
            public_key: signer.public_key_hex(),
            first_tree_size,
            last_tree_size: None,
        });
        if let Some(path) = &self.path {
            let text = serde_json::to_vec_pretty(&HistoryFile {
                format: HISTORY_FORMAT.into(),
                keys: records.clone(),
            })?;
            crate::security::files::replace_private(path, &text)
                .map_err(|e| anyhow::anyhow!("key history {}: {e}", path.display()))?;
        }
        self.records = records;
        Ok(())
    }

    /// The whole history, oldest first.
    pub(super) fn records(&self) -> &[KeyRecord] {
        &self.records
    }
}

/// Read and check a history file (missing: none yet): every record a valid key, KIDs unique,
/// sizes in order, only the last one in use.
fn read_history(path: &Path) -> anyhow::Result<Vec<KeyRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => anyhow::bail!("key history {}: {e}", path.display()),
    };
    let bad = |why: String| anyhow::anyhow!("key history {}: {why}", path.display());
    let file: HistoryFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if file.format != HISTORY_FORMAT {
        return Err(bad(format!(
            "format {:?}; this node reads {HISTORY_FORMAT:?}",
            file.format
        )));
    }
    let mut keys = TrustedKeys::new();
    for (i, record) in file.keys.iter().enumerate() {
        if keys.get(&record.kid).is_some() {
            return Err(bad(format!("KID {:?} is named twice", record.kid)));
        }
        keys.insert_record(record).map_err(|e| bad(e.to_string()))?;
        let last = i + 1 == file.keys.len();
        if record.last_tree_size.is_none() != last {
            return Err(bad(format!(
                "KID {:?}: only the last key is in use",
                record.kid
            )));
        }
    }
    Ok(file.keys)
}
