//! The Merkle tree as RocksDB stores it, for proofs: leaf hashes recomputed from the preimages in
//! `leaves`, and perfect-subtree roots read from `nodes`, so an inclusion or consistency proof
//! reads O(log n) records.
//!
//! This module only reads. It never writes a leaf or a node (apply's `Changes` do, through
//! `tables`), and never decides which tree size may be read (callers bound it by the applied
//! tree first).

use super::db::{RocksBackend, NODE_LEVEL_MIN};
use super::layout::{node_key, CF_LEAVES, CF_NODES};
use crate::error::StoreError;
use crate::record::hex;
use ledger::codec::Kind;
use ledger::merkle::{leaf_hash, Hash};
use ledger::proof::TreeSource;

/// The Merkle tree as stored: leaf preimages (hashed on read) and interior nodes.
pub(super) struct StoredTree<'a>(pub(super) &'a RocksBackend);

impl TreeSource for StoredTree<'_> {
    type Error = StoreError;

    fn leaf_hash(&self, index: u64) -> Result<Hash, StoreError> {
        let data = self
            .0
            .leaf_preimage(index)?
            .ok_or_else(|| StoreError::Corruption {
                cf: CF_LEAVES,
                key: hex(&index.to_be_bytes()),
                reason: "leaf of the applied tree missing".into(),
            })?;
        Ok(leaf_hash(&data))
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        // Format 2 keeps no node below `NODE_LEVEL_MIN`; one rule for both formats (format 1's
        // low nodes go unread): an inclusion proof reads at most 15 more leaves than before.
        if level < NODE_LEVEL_MIN {
            return Ok(None);
        }
        self.0
            .get(CF_NODES, Kind::StateRecord, &node_key(level, index))
    }
}
