//! The Raft log on RocksDB: the `log` column family (sealed entries keyed by index, u64 BE) and
//! the Raft records of the `meta` column family (vote, purged and committed log ids; the
//! current-snapshot record beside them belongs to `snapshots`). Appends, truncation, purges and
//! votes are written with `sync = true`: the WAL is fsynced before the call returns. A purge
//! first flushes the state (which has no WAL), so no crash can leave the state behind the log.
//!
//! This module is [`LogBackend`] for RocksDB. It never touches the ledger tables, and never
//! decodes an entry or a meta record (the log store seals and opens them).

use super::db::RocksBackend;
use super::layout::{parse_index, CF_LOG, CF_META, KEY_END};
use crate::backend::{meta_key, DiskStats, LogBackend};
use crate::error::StoreError;
use rocksdb::{IteratorMode, WriteBatch};

impl LogBackend for RocksBackend {
    fn is_blocking(&self) -> bool {
        true
    }

    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        let cf = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        for (index, bytes) in entries {
            batch.put_cf(cf, index.to_be_bytes(), bytes);
        }
        self.write(batch, true)
    }

    fn read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let from = start.to_be_bytes();
        let iter = self.db.iterator_cf(
            self.cf(CF_LOG)?,
            IteratorMode::From(&from, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            let index = parse_index(CF_LOG, &key)?;
            if index >= end {
                break;
            }
            out.push((index, value.into_vec()));
        }
        Ok(out)
    }

    fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match self
            .db
            .iterator_cf(self.cf(CF_LOG)?, IteratorMode::End)
            .next()
        {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item?;
                Ok(Some((parse_index(CF_LOG, &key)?, value.into_vec())))
            }
        }
    }

    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_LOG)?, &from.to_be_bytes()[..], &KEY_END[..]);
        self.write(batch, true)
    }

    fn purge(&self, upto: u64, purged: Vec<u8>) -> Result<(), StoreError> {
        // The state is written without the WAL: the entries purged here are what a crash would
        // apply again. openraft purges only what a snapshot of the applied state covers, so the
        // state has applied them; flushing it first makes that state what a crash leaves.
        self.flush_state()?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_LOG)?,
            0u64.to_be_bytes(),
            upto.saturating_add(1).to_be_bytes(),
        );
        batch.put_cf(self.cf(CF_META)?, meta_key::PURGED, purged);
        self.write(batch, true)
    }

    fn meta_get(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    fn meta_put(&self, key: &'static str, value: Vec<u8>, sync: bool) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META)?, key, value);
        self.write(batch, sync)
    }

    fn disk_stats(&self) -> Option<DiskStats> {
        Some(RocksBackend::disk_stats(self))
    }
}
