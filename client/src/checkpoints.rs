//! Plain (unverified) access to the proof endpoints: checkpoints, the nodes' checkpoint keys,
//! export bundles. [`crate::verify`] builds its checks on these requests; `ronctl` uses them to
//! export and to collect keys. Nothing here trusts or checks what it fetches.
//!
//! ```no_run
//! # async fn demo(client: ron_ledger_client::Client) -> Result<(), ron_ledger_client::Error> {
//! let bundle = client.export(0, 100).await?;
//! let keys = ron_ledger_client::checkpoints::KeysFile::parse(
//!     &std::fs::read_to_string("keys.json").unwrap(),
//! ).unwrap();
//! let report = ledger::verify_bundle(&bundle, &keys.keys).unwrap();
//! # Ok(()) }
//! ```

use crate::client::Client;
use crate::error::Error;
use crate::retry::{Attempt, Req};
use crate::shared::Unbatched;
use ledger::checkpoint::{CheckpointError, KeyRecord, SignedCheckpoint, TrustedKeys};
use ledger::export::ExportBundle;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most checkpoints one `GET /v1/checkpoints` asks for.
pub const CHECKPOINTS_LIMIT_MAX: usize = 1_000;

/// One node's `GET /v1/checkpoints/keys`; also the keys-file form `ronctl keys` writes. Read
/// strictly: an unknown field or a KID named twice is an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointKeys {
    /// The cluster the keys sign for.
    pub cluster_id: String,
    /// `kid` → 64 lower-case hex digits of the Ed25519 public key (retired keys included).
    #[serde(deserialize_with = "ledger::wire::unique_keys")]
    pub keys: BTreeMap<String, String>,
    /// Each key's tree-size range: a retired key is trusted only for the sizes it signed.
    /// Every entry's KID must be in `keys` with the same public key. Absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<KeyRecord>,
}

/// What `POST /v1/admin/safe-mode/clear` did on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafeModeCleared {
    /// The reason the node was in safe mode for.
    pub reason: String,
    /// What the node checked before clearing.
    pub checked: String,
    /// Always true: the node's Raft stopped when it entered safe mode; a restart rejoins.
    pub restart_required: bool,
}

/// What `POST /v1/admin/checkpoint/rotate` did on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    /// The key retired, with the tree sizes it signed.
    pub retired: KeyRecord,
    /// The key the node signs with now.
    pub current: KeyRecord,
    /// The applied tree signed with the new key (`None` while the tree is empty).
    pub checkpoint: Option<SignedCheckpoint>,
}

/// A trusted-keys file as read: either `{"<kid>": "<hex>"}` or the [`CheckpointKeys`] shape
/// (whose `cluster_id` is then known too).
#[derive(Clone, Debug)]
pub struct KeysFile {
    /// The cluster named by the file, if it has the [`CheckpointKeys`] shape.
    pub cluster_id: Option<String>,
    /// The keys.
    pub keys: TrustedKeys,
}

impl KeysFile {
    /// Parse either accepted shape. Keys are checked as [`TrustedKeys::insert`] does; a KID
    /// named twice, or a field the shape does not have, is refused.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let answer = serde_json::from_str::<CheckpointKeys>(text);
        if let Err(e) = &answer {
            // A file that is not the flat shape either is reported as the shape it names.
            if text.contains("\"cluster_id\"") && TrustedKeys::from_json(text).is_err() {
                return Err(CheckpointError::MalformedKeySet(e.to_string()));
            }
        }
        if let Ok(answer) = answer {
            let mut keys = TrustedKeys::new();
            if answer.keys.len() > ledger::checkpoint::TRUSTED_KEYS_MAX {
                return Err(CheckpointError::MalformedKeySet(format!(
                    "{} keys; at most {}",
                    answer.keys.len(),
                    ledger::checkpoint::TRUSTED_KEYS_MAX
                )));
            }
            for (kid, hex) in &answer.keys {
                keys.insert(kid.clone(), hex)?;
            }
            let mut recorded = std::collections::BTreeSet::new();
            for record in &answer.history {
                // One range per key: a second record would silently widen (or narrow) it, and a
                // retired key could be trusted for every size again.
                if !recorded.insert(record.kid.as_str()) {
                    return Err(CheckpointError::MalformedKeySet(format!(
                        "history names key {:?} twice",
                        record.kid
                    )));
                }
                match answer.keys.get(&record.kid) {
                    Some(hex) if *hex == record.public_key => keys.insert_record(record)?,
                    _ => {
                        return Err(CheckpointError::MalformedKeySet(format!(
                        "history names key {:?}, which `keys` does not hold with that public key",
                        record.kid
                    )))
                    }
                }
            }
            return Ok(Self {
                cluster_id: Some(answer.cluster_id),
                keys,
            });
        }
        Ok(Self {
            cluster_id: None,
            keys: TrustedKeys::from_json(text)?,
        })
    }
}

#[derive(Deserialize)]
struct CheckpointList {
    checkpoints: Vec<SignedCheckpoint>,
}

impl Unbatched {
    /// GET `path` (retrying transient failures) and decode the JSON answer; a 404 is
    /// [`Error::Rejected`]. Returns the answering node's address too.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        pin: Option<String>,
    ) -> Result<(T, String), Error> {
        let req = Req {
            not_found_ok: false,
            pin,
            ..Req::get(path)
        };
        let (body, _, addr) = self.send_at(&req).await?;
        let body = body.ok_or_else(|| Error::Protocol(format!("empty answer to {path}")))?;
        let value =
            serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("{path}: {e}")))?;
        Ok((value, addr))
    }
}

impl Client {
    /// The newest signed checkpoint of the node serving the request (not verified: see
    /// [`Client::latest_verified_checkpoint`]). 404 `no_checkpoint` if it has none.
    pub async fn latest_checkpoint(&self) -> Result<SignedCheckpoint, Error> {
        let u = self.clone_without_batcher();
        Ok(u.get_json("/v1/checkpoints/latest", None).await?.0)
    }

    /// Up to `limit` (at most [`CHECKPOINTS_LIMIT_MAX`]) recent checkpoints, newest first (not
    /// verified).
    pub async fn checkpoints(&self, limit: usize) -> Result<Vec<SignedCheckpoint>, Error> {
        let limit = limit.clamp(1, CHECKPOINTS_LIMIT_MAX);
        let u = self.clone_without_batcher();
        let path = format!("/v1/checkpoints?limit={limit}");
        Ok(u.get_json::<CheckpointList>(&path, None)
            .await?
            .0
            .checkpoints)
    }

    /// Ask the node serving the request to sign a checkpoint of its applied tree now
    /// (`POST /v1/admin/checkpoint`).
    pub async fn make_checkpoint(&self) -> Result<SignedCheckpoint, Error> {
        let req = Req::post("/v1/admin/checkpoint", "application/json", b"{}".to_vec());
        let (body, _) = self.clone_without_batcher().send(&req).await?;
        let body = body.ok_or_else(|| Error::Protocol("empty checkpoint answer".into()))?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// The checkpoint keys of the node at `addr` (`GET /v1/checkpoints/keys`), one attempt.
    pub async fn checkpoint_keys_of(&self, addr: &str) -> Result<CheckpointKeys, Error> {
        let u = self.clone_without_batcher();
        match u.once_get(addr, "/v1/checkpoints/keys").await {
            Attempt::Done(r) => r.and_then(|v: Option<CheckpointKeys>| {
                v.ok_or_else(|| Error::Rejected {
                    status: 404,
                    reason: "not_found".into(),
                    message: format!("{addr} serves no checkpoint keys"),
                })
            }),
            Attempt::Retry(e) => Err(Error::Unavailable {
                attempts: 1,
                last: format!("{addr}: {e}"),
            }),
        }
    }

    /// Have the node at `addr` retire its checkpoint key and sign with a new one from now on
    /// (`POST /v1/admin/checkpoint/rotate`, admin), one attempt: a rotation is never repeated
    /// or sent to another node.
    pub async fn rotate_checkpoint_key_of(&self, addr: &str) -> Result<KeyRotation, Error> {
        self.clone_without_batcher()
            .once_post(addr, "/v1/admin/checkpoint/rotate", b"{}".to_vec())
            .await
    }

    /// Clear the safe mode of the node at `addr` (`POST /v1/admin/safe-mode/clear`, admin), one
    /// attempt. The node re-checks what the fault touched first and refuses (409) if the check
    /// fails; it must then be restarted to rejoin.
    pub async fn clear_safe_mode_of(&self, addr: &str) -> Result<SafeModeCleared, Error> {
        self.clone_without_batcher()
            .once_post(addr, "/v1/admin/safe-mode/clear", b"{}".to_vec())
            .await
    }

    /// Leaves `[from, to)` with proofs against a signed checkpoint (`GET /v1/export`); check it
    /// with [`ledger::verify_bundle`].
    pub async fn export(&self, from: u64, to: u64) -> Result<ExportBundle, Error> {
        if from >= to || to - from > ledger::export::BUNDLE_EVENTS_MAX {
            return Err(Error::Invalid(format!(
                "export range [{from}, {to}) must be non-empty and at most {} events",
                ledger::export::BUNDLE_EVENTS_MAX
            )));
        }
        let u = self.clone_without_batcher();
        let path = format!("/v1/export?from={from}&to={to}");
        Ok(u.get_json(&path, None).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::CheckpointSigner;

    #[test]
    fn keys_files_of_both_shapes_parse() {
        let signer = CheckpointSigner::new("n1", &[3u8; 32]).unwrap();
        let hex = signer.public_key_hex();
        let flat = KeysFile::parse(&format!(r#"{{"n1": "{hex}"}}"#)).unwrap();
        assert_eq!(flat.cluster_id, None);
        assert!(flat.keys.get("n1").is_some());
        let answer = KeysFile::parse(&format!(
            r#"{{"cluster_id": "c", "keys": {{"n1": "{hex}"}}}}"#
        ))
        .unwrap();
        assert_eq!(answer.cluster_id.as_deref(), Some("c"));
        assert!(answer.keys.get("n1").is_some());
        assert!(KeysFile::parse(r#"{"n1": "zz"}"#).is_err());
        assert!(KeysFile::parse(r#"{"cluster_id": "c", "keys": {"n1": "zz"}}"#).is_err());
    }

    #[test]
    fn a_kid_named_twice_or_an_unknown_field_is_refused() {
        let a = CheckpointSigner::new("n1", &[3u8; 32])
            .unwrap()
            .public_key_hex();
        let b = CheckpointSigner::new("n1", &[4u8; 32])
            .unwrap()
            .public_key_hex();
        for text in [
            format!(r#"{{"n1": "{a}", "n1": "{b}"}}"#),
            format!(r#"{{"cluster_id": "c", "keys": {{"n1": "{a}", "n1": "{b}"}}}}"#),
            format!(r#"{{"cluster_id": "c", "keys": {{"n1": "{a}"}}, "extra": 1}}"#),
            format!(r#"{{"cluster_id": "c", "keyz": {{"n1": "{a}"}}}}"#),
        ] {
            let e = KeysFile::parse(&text).expect_err(&text).to_string();
            assert!(
                e.contains("duplicate") || e.contains("unknown field"),
                "{text}: {e}"
            );
        }
    }

    /// A keys file's history limits a retired key to the sizes it signed; a history entry
    /// that `keys` lacks, or names with another public key, is refused.
    #[test]
    fn a_keys_file_history_bounds_retired_keys() {
        let old = CheckpointSigner::new("n1/a", &[3u8; 32]).unwrap();
        let new = CheckpointSigner::new("n1/b", &[4u8; 32]).unwrap();
        let (a, b) = (old.public_key_hex(), new.public_key_hex());
        let history = |a_key: &str| {
            format!(
                r#"{{"cluster_id": "c", "keys": {{"n1/a": "{a}", "n1/b": "{b}"}}, "history": [
                {{"kid": "n1/a", "public_key": "{a_key}", "first_tree_size": "0", "last_tree_size": "5"}},
                {{"kid": "n1/b", "public_key": "{b}", "first_tree_size": "5"}}]}}"#
            )
        };
        let file = KeysFile::parse(&history(&a)).unwrap();
        let root = ledger::merkle::empty_root();
        old.sign("c", 5, root, 1)
            .unwrap()
            .verify(&file.keys)
            .unwrap();
        new.sign("c", 6, root, 1)
            .unwrap()
            .verify(&file.keys)
            .unwrap();
        assert!(matches!(
            old.sign("c", 6, root, 1).unwrap().verify(&file.keys),
            Err(CheckpointError::OutsideKeyRange { .. })
        ));
        let e = KeysFile::parse(&history(&b)).unwrap_err().to_string();
        assert!(e.contains("n1/a"), "{e}");
        let stray = format!(
            r#"{{"cluster_id": "c", "keys": {{"n1/b": "{b}"}}, "history": [
            {{"kid": "n1/a", "public_key": "{a}", "first_tree_size": "0", "last_tree_size": "5"}}]}}"#
        );
        assert!(KeysFile::parse(&stray).is_err());
        // A second record for a key would widen its range again: refused, not last-wins.
        let twice = format!(
            r#"{{"cluster_id": "c", "keys": {{"n1/a": "{a}"}}, "history": [
            {{"kid": "n1/a", "public_key": "{a}", "first_tree_size": "0", "last_tree_size": "5"}},
            {{"kid": "n1/a", "public_key": "{a}", "first_tree_size": "0"}}]}}"#
        );
        let e = KeysFile::parse(&twice).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
    }
}
