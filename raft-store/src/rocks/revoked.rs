//! The capability deny-list on RocksDB: the `revoked` column family, token id (16 bytes) →
//! sealed [`RevocationRecord`]. Not part of the Merkle tree; covered by the state digest and
//! carried in snapshots.
//!
//! This module stages records into a write batch, and answers point lookups (every write
//! request) and pages in token id order. It never decides which records are new (that is
//! `crate::revocation::plan`: the first record of a token id is kept), never writes a batch
//! itself, and never serves a record filed under another token id.

use super::db::RocksBackend;
use super::layout::CF_REVOKED;
use crate::error::StoreError;
use crate::record::{hex, open, seal};
use crate::revocation::{RevocationRecord, TokenId};
use ledger::codec::Kind;
use rocksdb::{IteratorMode, WriteBatch};

/// Decode a deny-list record and check it is filed under its own token id.
pub(super) fn open_revocation(key: &[u8], value: &[u8]) -> Result<RevocationRecord, StoreError> {
    let r: RevocationRecord = open(Kind::StateRecord, CF_REVOKED, key, value)?;
    if key != r.token_id {
        return Err(StoreError::Corruption {
            cf: CF_REVOKED,
            key: hex(key),
            reason: "record filed under another token id".into(),
        });
    }
    Ok(r)
}

impl RocksBackend {
    /// Add deny-list records to `batch` (keyed by token id).
    pub(super) fn stage_revocations(
        &self,
        batch: &mut WriteBatch,
        records: &[RevocationRecord],
    ) -> Result<(), StoreError> {
        let cf = self.cf(CF_REVOKED)?;
        for r in records {
            batch.put_cf(cf, r.token_id, seal(Kind::StateRecord, r));
        }
        Ok(())
    }

    /// The record of `token_id`, if it was revoked.
    pub(super) fn revocation_record(
        &self,
        token_id: &TokenId,
    ) -> Result<Option<RevocationRecord>, StoreError> {
        match self.db.get_pinned_cf(self.cf(CF_REVOKED)?, token_id)? {
            None => Ok(None),
            Some(bytes) => open_revocation(token_id, &bytes).map(Some),
        }
    }

    /// Up to `limit` records with token ids after `after` (from the start if `None`).
    pub(super) fn revocation_page(
        &self,
        after: Option<TokenId>,
        limit: usize,
    ) -> Result<Vec<RevocationRecord>, StoreError> {
        let mode = match &after {
            Some(a) => IteratorMode::From(a, rocksdb::Direction::Forward),
            None => IteratorMode::Start,
        };
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_REVOKED)?, mode) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item?;
            if after.is_some_and(|a| key.as_ref() == a) {
                continue;
            }
            out.push(open_revocation(&key, &value)?);
        }
        Ok(out)
    }
}
