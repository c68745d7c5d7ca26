//! The on-disk layout of the RocksDB database: every column family name, the fixed keys of the
//! `state` and `meta` tables, and how each table's keys are encoded (big-endian, so RocksDB's
//! byte order is the numeric order) and parsed back.
//!
//! This module owns the bytes of every key; values are sealed records (`crate::record`). It must
//! never change an encoding or a name — the database written by an earlier build must open — and
//! never reads or writes the database itself.

use crate::error::StoreError;
use crate::record::hex;
use ledger::{ExpiryKey, HistoryKey, IndexField, IndexKey};

pub(super) const CF_LOG: &str = "log";
pub(super) const CF_META: &str = "meta";
pub(super) const CF_STATE: &str = "state";
pub(super) const CF_ACCOUNTS: &str = "accounts";
pub(super) const CF_TRANSFERS: &str = "transfers";
pub(super) const CF_STATUSES: &str = "statuses";
pub(super) const CF_EXPIRY: &str = "expiry";
pub(super) const CF_HISTORY: &str = "history";
/// The secondary indexes (`ledger::query`): [`index_key`] → id.
pub(super) const CF_INDEX: &str = "index";
/// Balance history of `history`-flagged accounts: [`history_key`] → `ledger::BalanceEntry`.
pub(super) const CF_BALANCES: &str = "balances";
pub(super) const CF_LEAVES: &str = "leaves";
pub(super) const CF_NODES: &str = "nodes";
/// The capability deny-list: token id → [`crate::RevocationRecord`] (not part of the Merkle
/// tree).
pub(super) const CF_REVOKED: &str = "revoked";
pub(super) const ALL_CFS: [&str; 13] = [
    CF_LOG,
    CF_META,
    CF_STATE,
    CF_ACCOUNTS,
    CF_TRANSFERS,
    CF_STATUSES,
    CF_EXPIRY,
    CF_HISTORY,
    CF_INDEX,
    CF_BALANCES,
    CF_LEAVES,
    CF_NODES,
    CF_REVOKED,
];
/// The column families that hold replicated state (replaced whole by a snapshot install).
pub(super) const LEDGER_CFS: [&str; 10] = [
    CF_ACCOUNTS,
    CF_TRANSFERS,
    CF_STATUSES,
    CF_EXPIRY,
    CF_HISTORY,
    CF_INDEX,
    CF_BALANCES,
    CF_LEAVES,
    CF_NODES,
    CF_REVOKED,
];
/// The column families a snapshot carries, in stream order. `nodes` is derived: the receiver
/// rebuilds it from the leaves.
pub(super) const SNAPSHOT_CFS: [&str; 9] = [
    CF_ACCOUNTS,
    CF_TRANSFERS,
    CF_STATUSES,
    CF_EXPIRY,
    CF_HISTORY,
    CF_INDEX,
    CF_BALANCES,
    CF_LEAVES,
    CF_REVOKED,
];
/// The column families the state digest covers, in the order it is fed: the tables
/// `ledger::digest` reads, then the deny-list (`crate::revocation::combine_digest`). Leaves and
/// nodes are covered by the root in the ledger metadata.
pub(super) const DIGEST_CFS: [&str; 8] = [
    CF_ACCOUNTS,
    CF_TRANSFERS,
    CF_STATUSES,
    CF_EXPIRY,
    CF_HISTORY,
    CF_INDEX,
    CF_BALANCES,
    CF_REVOKED,
];
/// `state`: the [`crate::AppliedState`].
pub(super) const KEY_APPLIED: &[u8] = b"applied";
/// `meta`: the storage format (`u32`, see `super::db::STORAGE_FORMAT`).
pub(super) const KEY_STORAGE_FORMAT: &str = "storage_format";
/// `state`: the cluster's effective version (`u32`, see `crate::cluster_version`); absent until
/// the cluster first advances (every store of release 0.1.0).
pub(super) const KEY_CLUSTER_VERSION: &[u8] = b"cluster_version";
/// `state`: the [`ledger::LedgerMeta`].
pub(super) const KEY_LEDGER: &[u8] = b"ledger";
/// `meta`: the current snapshot's metadata and file name.
pub(super) const KEY_SNAPSHOT: &str = "snapshot";
/// `meta`: an install in progress — the snapshot's metadata and file name (see
/// `super::install`); present only between the start of an install and its last batch.
pub(super) const KEY_INSTALL: &str = "install";
/// Longer than any key we write: the exclusive end of a whole-table range delete.
pub(super) const KEY_END: [u8; 32] = [0xff; 32];

/// Key of an account, transfer or status: the id, big-endian.
pub(super) fn be128(v: u128) -> [u8; 16] {
    v.to_be_bytes()
}

pub(super) fn expiry_key(k: &ExpiryKey) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&k.expires_at.to_be_bytes());
    out[8..].copy_from_slice(&k.transfer_id.to_be_bytes());
    out
}

pub(super) fn history_key(k: &HistoryKey) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&k.account_id.to_be_bytes());
    out[16..].copy_from_slice(&k.timestamp.to_be_bytes());
    out
}

/// Key of a secondary index entry: field (1 byte), value (u128 BE), timestamp (u64 BE), so
/// one field-and-value's entries are contiguous and in timestamp order.
pub(super) fn index_key(k: &IndexKey) -> [u8; 25] {
    let mut out = [0u8; 25];
    out[0] = k.field as u8;
    out[1..17].copy_from_slice(&k.value.to_be_bytes());
    out[17..].copy_from_slice(&k.timestamp.to_be_bytes());
    out
}

pub(super) fn parse_index_key(key: &[u8]) -> Result<IndexKey, StoreError> {
    let bad = || bad_key(CF_INDEX, key);
    let (&field, rest) = key.split_first().ok_or_else(bad)?;
    let field = IndexField::from_u8(field).ok_or_else(bad)?;
    let (value, ts) = split_key::<16, 8>(CF_INDEX, rest).map_err(|_| bad())?;
    Ok(IndexKey {
        field,
        value: u128::from_be_bytes(value),
        timestamp: u64::from_be_bytes(ts),
    })
}

/// Key of an interior node: level (1 byte) then index (u64 BE), so a level's nodes are
/// contiguous and in index order.
pub(super) fn node_key(level: u8, index: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = level;
    out[1..].copy_from_slice(&index.to_be_bytes());
    out
}

pub(super) fn bad_key(cf: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corruption {
        cf,
        key: hex(key),
        reason: "malformed key".into(),
    }
}

/// The two big-endian halves of a 24-byte index key: `(first N bytes, the rest)`.
fn split_key<const N: usize, const M: usize>(
    cf: &'static str,
    key: &[u8],
) -> Result<([u8; N], [u8; M]), StoreError> {
    let bad = || bad_key(cf, key);
    if key.len() != N + M {
        return Err(bad());
    }
    let head = key[..N].try_into().map_err(|_| bad())?;
    let tail = key[N..].try_into().map_err(|_| bad())?;
    Ok((head, tail))
}

/// A log index or leaf index key (u64 BE).
pub(super) fn parse_index(cf: &'static str, key: &[u8]) -> Result<u64, StoreError> {
    Ok(u64::from_be_bytes(
        key.try_into().map_err(|_| bad_key(cf, key))?,
    ))
}

/// An id key (u128 BE).
pub(super) fn parse_id(cf: &'static str, key: &[u8]) -> Result<u128, StoreError> {
    Ok(u128::from_be_bytes(
        key.try_into().map_err(|_| bad_key(cf, key))?,
    ))
}

pub(super) fn parse_expiry(key: &[u8]) -> Result<ExpiryKey, StoreError> {
    let (at, id) = split_key::<8, 16>(CF_EXPIRY, key)?;
    Ok(ExpiryKey {
        expires_at: u64::from_be_bytes(at),
        transfer_id: u128::from_be_bytes(id),
    })
}

pub(super) fn parse_history(cf: &'static str, key: &[u8]) -> Result<HistoryKey, StoreError> {
    let (id, ts) = split_key::<16, 8>(cf, key)?;
    Ok(HistoryKey {
        account_id: u128::from_be_bytes(id),
        timestamp: u64::from_be_bytes(ts),
    })
}
