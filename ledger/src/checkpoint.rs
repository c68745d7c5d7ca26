//! Signed checkpoints: a node's Ed25519 statement "cluster `cluster_id` had `tree_size` leaves
//! with root `root` at cluster time `timestamp`", under key id `kid`. Auditors check them with
//! [`TrustedKeys`] and then check inclusion and consistency proofs against the signed root.
//!
//! The signed bytes ([`Checkpoint::signing_bytes`]) are a fixed, domain-separated,
//! length-prefixed layout, independent of JSON or serde:
//!
//! ```text
//! "ron-ledger/checkpoint/v1\0"     25 bytes (ASCII, then one zero byte)
//! len(cluster_id)                   u16 big-endian
//! cluster_id                        UTF-8
//! tree_size                         u64 big-endian
//! root                              32 bytes
//! timestamp                         u64 big-endian
//! len(kid)                          u16 big-endian
//! kid                               UTF-8
//! ```
//!
//! Keys come from 32 seed bytes the caller supplies (the node reads them from a key file); this
//! module never generates randomness. Verification uses `verify_strict` (no malleable or
//! small-order signatures or keys).
//!
//! ```
//! use ledger::checkpoint::{CheckpointSigner, TrustedKeys};
//! use ledger::merkle::empty_root;
//!
//! let signer = CheckpointSigner::new("node-1", &[7u8; 32]).unwrap();
//! let signed = signer.sign("prod", 0, empty_root(), 1_000).unwrap();
//! let keys = TrustedKeys::from_json(&format!(r#"{{"node-1": "{}"}}"#, signer.public_key_hex()))
//!     .unwrap();
//! signed.verify(&keys).unwrap();
//! ```

use crate::merkle::Hash;
use crate::wire;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Domain separator at the start of every checkpoint's signed bytes.
pub const CHECKPOINT_DOMAIN: &[u8; 25] = b"ron-ledger/checkpoint/v1\0";
/// Longest cluster id a checkpoint carries (bytes of UTF-8).
pub const CLUSTER_ID_BYTES_MAX: usize = 256;
/// Longest key id a checkpoint carries (bytes of UTF-8).
pub const KID_BYTES_MAX: usize = 256;
/// Most keys a [`TrustedKeys`] set holds.
pub const TRUSTED_KEYS_MAX: usize = 1024;

/// Why a checkpoint could not be signed or did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint names a key id the verifier does not trust.
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    /// The signature is not a valid (strict) Ed25519 signature of the checkpoint by that key.
    #[error("bad checkpoint signature")]
    BadSignature,
    /// A trusted key is not a valid Ed25519 public key.
    #[error("malformed public key for {kid:?}: {reason}")]
    MalformedKey {
        /// The key id.
        kid: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The trusted-keys document is not a JSON object of `kid: hex`.
    #[error("malformed trusted keys: {0}")]
    MalformedKeySet(String),
    /// The checkpoint's key was retired (or came into use) outside the tree size it states:
    /// a retired key signs nothing past the size it stopped at.
    #[error("key {kid:?} signed tree sizes {first}..={last}, not {tree_size}", last = last.map_or("".to_string(), |l| l.to_string()))]
    OutsideKeyRange {
        /// The key id.
        kid: String,
        /// The size the checkpoint states.
        tree_size: u64,
        /// The first size the key may sign.
        first: u64,
        /// The last size the key signed before it was retired (`None`: in use).
        last: Option<u64>,
    },
    /// A checkpoint of 0 leaves whose root is not the empty tree's: no tree has it, and a
    /// verifier that remembered it could accept no later checkpoint.
    #[error("a checkpoint of 0 leaves must carry the empty tree's root")]
    NotTheEmptyRoot,
    /// A text field is longer than the layout allows.
    #[error("{field} is {bytes} bytes; at most {max}")]
    FieldTooLong {
        /// `cluster_id` or `kid`.
        field: &'static str,
        /// Its length.
        bytes: usize,
        /// The bound.
        max: usize,
    },
}

/// What a checkpoint states (the unsigned part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The cluster.
    pub cluster_id: String,
    /// Leaves in the tree.
    #[serde(with = "wire::dec")]
    pub tree_size: u64,
    /// The tree's root at `tree_size`.
    #[serde(with = "wire::hash")]
    pub root: Hash,
    /// Cluster time (ns) of the last event in the tree.
    #[serde(with = "wire::dec")]
    pub timestamp: u64,
    /// Which key signs it.
    pub kid: String,
}

impl Checkpoint {
    /// The exact bytes that are signed (layout in the module documentation).
    pub fn signing_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let cluster = bounded("cluster_id", &self.cluster_id, CLUSTER_ID_BYTES_MAX)?;
        let kid = bounded("kid", &self.kid, KID_BYTES_MAX)?;
        let mut out = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 2 + 8 + 32 + 8 + 2 + 2 * 256);
        out.extend_from_slice(CHECKPOINT_DOMAIN);
        out.extend_from_slice(&cluster.0.to_be_bytes());
        out.extend_from_slice(cluster.1);
        out.extend_from_slice(&self.tree_size.to_be_bytes());
        out.extend_from_slice(&self.root.0);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&kid.0.to_be_bytes());
        out.extend_from_slice(kid.1);
        Ok(out)
    }
}

/// A text field's length prefix and bytes, if within `max`.
fn bounded<'a>(
    field: &'static str,
    text: &'a str,
    max: usize,
) -> Result<(u16, &'a [u8]), CheckpointError> {
    let bytes = text.as_bytes();
    let too_long = CheckpointError::FieldTooLong {
        field,
        bytes: bytes.len(),
        max,
    };
    if bytes.len() > max {
        return Err(too_long);
    }
    let len = u16::try_from(bytes.len()).map_err(|_| too_long)?;
    Ok((len, bytes))
}

/// A checkpoint and its signature.
///
/// JSON: `{"cluster_id": "prod", "tree_size": "42", "root": "<64 hex>", "timestamp": "1000",
/// "kid": "node-1", "signature": "<128 hex>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    /// The cluster.
    pub cluster_id: String,
    /// Leaves in the tree.
    #[serde(with = "wire::dec")]
    pub tree_size: u64,
    /// The tree's root at `tree_size`.
    #[serde(with = "wire::hash")]
    pub root: Hash,
    /// Cluster time (ns) of the last event in the tree.
    #[serde(with = "wire::dec")]
    pub timestamp: u64,
    /// Which key signed it.
    pub kid: String,
    /// Ed25519 signature of [`Checkpoint::signing_bytes`].
    #[serde(with = "wire::signature")]
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    /// The statement without its signature.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            cluster_id: self.cluster_id.clone(),
            tree_size: self.tree_size,
            root: self.root,
            timestamp: self.timestamp,
            kid: self.kid.clone(),
        }
    }

    /// Check the signature with the trusted key named by `kid` (strict Ed25519), and that the
    /// key's published size range (if the trusted set has one) covers `tree_size`.
    pub fn verify(&self, keys: &TrustedKeys) -> Result<(), CheckpointError> {
        let trusted = keys
            .keys
            .get(&self.kid)
            .ok_or_else(|| CheckpointError::UnknownKid(self.kid.clone()))?;
        let message = self.checkpoint().signing_bytes()?;
        trusted
            .key
            .verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| CheckpointError::BadSignature)?;
        if self.tree_size == 0 && self.root != crate::merkle::empty_root() {
            return Err(CheckpointError::NotTheEmptyRoot);
        }
        let (first, last) = trusted.sizes;
        if self.tree_size < first || last.is_some_and(|l| self.tree_size > l) {
            return Err(CheckpointError::OutsideKeyRange {
                kid: self.kid.clone(),
                tree_size: self.tree_size,
                first,
                last,
            });
        }
        Ok(())
    }
}

/// A node's checkpoint signing key. Built from 32 seed bytes; the secret is zeroized when the
/// signer is dropped (ed25519-dalek's `zeroize` feature) and never printed.
pub struct CheckpointSigner {
    kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("kid", &self.kid)
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer for key id `kid` from a 32-byte Ed25519 seed.
    pub fn new(kid: impl Into<String>, seed: &[u8; 32]) -> Result<Self, CheckpointError> {
        let kid = kid.into();
        bounded("kid", &kid, KID_BYTES_MAX)?;
        Ok(Self {
            kid,
            key: SigningKey::from_bytes(seed),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, 64 lower-case hex digits (the form [`TrustedKeys`] reads).
    pub fn public_key_hex(&self) -> String {
        wire::hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Sign a checkpoint of `tree_size` leaves with root `root` at cluster time `timestamp`.
    pub fn sign(
        &self,
        cluster_id: &str,
        tree_size: u64,
        root: Hash,
        timestamp: u64,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let checkpoint = Checkpoint {
            cluster_id: cluster_id.to_string(),
            tree_size,
            root,
            timestamp,
            kid: self.kid.clone(),
        };
        let signature = self.key.sign(&checkpoint.signing_bytes()?).to_bytes();
        Ok(SignedCheckpoint {
            cluster_id: checkpoint.cluster_id,
            tree_size,
            root,
            timestamp,
            kid: checkpoint.kid,
            signature,
        })
    }
}

/// One entry of a node's key history (`GET /v1/checkpoints/keys`, `history`): a checkpoint key
/// with the tree sizes it signs. A node that rotates its key retires the old one at the size
/// its tree had then; checkpoints that key signed before stay verifiable, and none past that
/// size is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// The key id.
    pub kid: String,
    /// 64 lower-case hex digits of the Ed25519 public key.
    pub public_key: String,
    /// The tree size when the key came into use (0 if it was in use from the start).
    #[serde(with = "wire::dec")]
    pub first_tree_size: u64,
    /// The tree size when it was retired; absent (or `null`) while it is in use.
    #[serde(
        default,
        with = "wire::opt_dec",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_tree_size: Option<u64>,
}

/// A trusted key and the tree sizes it may sign, `(first, last)` (`last` `None`: no end).
#[derive(Clone, Debug, PartialEq, Eq)]
struct TrustedKey {
    key: VerifyingKey,
    sizes: (u64, Option<u64>),
}

/// The public keys a verifier trusts, by key id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: BTreeMap<String, TrustedKey>,
}

impl TrustedKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse `{"<kid>": "<64 hex public key>", ...}`. A KID named twice is refused, not read
    /// last-wins.
    pub fn from_json(text: &str) -> Result<Self, CheckpointError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let map: BTreeMap<String, String> = wire::unique_keys(&mut de)
            .and_then(|map| de.end().map(|()| map))
            .map_err(|e| CheckpointError::MalformedKeySet(e.to_string()))?;
        if map.len() > TRUSTED_KEYS_MAX {
            return Err(CheckpointError::MalformedKeySet(format!(
                "{} keys; at most {TRUSTED_KEYS_MAX}",
                map.len()
            )));
        }
        let mut keys = Self::new();
        for (kid, hex) in map {
            keys.insert(kid, &hex)?;
        }
        Ok(keys)
    }

    /// Trust `public_key_hex` (64 lower-case hex digits) under `kid`. Weak (small-order) keys
    /// are refused.
    pub fn insert(&mut self, kid: String, public_key_hex: &str) -> Result<(), CheckpointError> {
        let malformed = |reason: &str| CheckpointError::MalformedKey {
            kid: kid.clone(),
            reason: reason.to_string(),
        };
        bounded("kid", &kid, KID_BYTES_MAX)?;
        let bytes: [u8; 32] = wire::hex::decode_array(public_key_hex)
            .ok_or_else(|| malformed("expected 64 lower-case hex digits"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| malformed("not a curve point"))?;
        if key.is_weak() {
            return Err(malformed("weak (small-order) key"));
        }
        self.keys.insert(
            kid,
            TrustedKey {
                key,
                sizes: (0, None),
            },
        );
        Ok(())
    }

    /// Trust `record`'s key, for checkpoints of the sizes it covers only. When `kid` is
    /// trusted already, it must be the same public key.
    pub fn insert_record(&mut self, record: &KeyRecord) -> Result<(), CheckpointError> {
        if let Some(last) = record.last_tree_size {
            if last < record.first_tree_size {
                return Err(CheckpointError::MalformedKey {
                    kid: record.kid.clone(),
                    reason: format!(
                        "retired at tree size {last}, before it came into use at {}",
                        record.first_tree_size
                    ),
                });
            }
        }
        let mut one = Self::new();
        one.insert(record.kid.clone(), &record.public_key)?;
        let mut trusted = one.keys.remove(&record.kid).expect("inserted above");
        if let Some(known) = self.keys.get(&record.kid) {
            if known.key != trusted.key {
                return Err(CheckpointError::MalformedKey {
                    kid: record.kid.clone(),
                    reason: "the history names another public key for it".into(),
                });
            }
        }
        trusted.sizes = (record.first_tree_size, record.last_tree_size);
        self.keys.insert(record.kid.clone(), trusted);
        Ok(())
    }

    /// The key trusted under `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid).map(|k| &k.key)
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
