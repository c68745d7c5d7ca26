//! The account cache: the committed record of recently touched accounts, in front of the
//! `accounts` table for apply's reads — the two accounts of every transfer, each a RocksDB point
//! read through the memtables and table files otherwise (about 12 % of the apply path's
//! instructions, `docs/BENCHMARKS.md`).
//!
//! It holds only what is committed: a record read from the table, or one a commit has just
//! written (after the write succeeded). A snapshot install empties it. It is bounded by
//! [`ACCOUNT_CACHE_ENTRIES`] and emptied whole when full — apply refills what it touches. Nothing
//! but apply reads through it (queries and lookups read the table or a view), so what a
//! client sees never depends on it, and apply's results cannot: a hit is the same record the
//! table holds.

use ledger::AccountRecord;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most accounts the cache holds (about 11 MiB of records and map at ~170 bytes each).
pub const ACCOUNT_CACHE_ENTRIES: usize = 65_536;

#[derive(Default)]
struct Inner {
    records: HashMap<u128, AccountRecord, foldhash::fast::RandomState>,
    /// Bumped by every commit and by emptying: a record read from the table before either is
    /// not put in afterwards (it may be older than what the commit wrote).
    generation: u64,
}

/// See the module docs.
#[derive(Default)]
pub(super) struct AccountCache(Mutex<Inner>);

impl AccountCache {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached record of `id`, or the generation to pass to [`Self::fill`] after reading it.
    pub(super) fn get(&self, id: u128) -> Result<AccountRecord, u64> {
        let inner = self.inner();
        inner.records.get(&id).copied().ok_or(inner.generation)
    }

    /// Keep `record`, read from the table at `generation`, unless a commit came in between.
    pub(super) fn fill(&self, generation: u64, record: &AccountRecord) {
        let mut inner = self.inner();
        if inner.generation == generation {
            insert(&mut inner, record);
        }
    }

    /// The records a commit has just written.
    pub(super) fn committed(&self, records: &[AccountRecord]) {
        let mut inner = self.inner();
        inner.generation += 1;
        for r in records {
            insert(&mut inner, r);
        }
    }

    /// Forget everything (the state was replaced).
    pub(super) fn clear(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.records = HashMap::default();
    }
}

fn insert(inner: &mut Inner, record: &AccountRecord) {
    if inner.records.len() >= ACCOUNT_CACHE_ENTRIES
        && !inner.records.contains_key(&record.account.id)
    {
        inner.records.clear();
    }
    inner.records.insert(record.account.id, *record);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u128, credits: u128) -> AccountRecord {
        AccountRecord {
            account: ledger::Account {
                id,
                credits_posted: credits,
                ..Default::default()
            },
            leaf: 0,
        }
    }

    #[test]
    fn a_read_older_than_a_commit_is_not_kept() {
        let cache = AccountCache::default();
        let Err(generation) = cache.get(1) else {
            panic!("empty cache hit")
        };
        cache.committed(&[record(1, 10)]);
        // The read began before the commit: its (older) record must not replace the new one.
        cache.fill(generation, &record(1, 0));
        assert_eq!(cache.get(1).unwrap().account.credits_posted, 10);
        let Err(generation) = cache.get(2) else {
            panic!("2 was never cached")
        };
        cache.fill(generation, &record(2, 5));
        assert_eq!(cache.get(2).unwrap().account.credits_posted, 5);
        cache.clear();
        assert!(cache.get(1).is_err() && cache.get(2).is_err());
    }

    #[test]
    fn it_stays_within_its_bound() {
        let cache = AccountCache::default();
        for id in 0..(ACCOUNT_CACHE_ENTRIES as u128 + 10) {
            cache.committed(&[record(id, 1)]);
        }
        let len = cache.inner().records.len();
        assert!((1..=ACCOUNT_CACHE_ENTRIES).contains(&len), "{len}");
        assert!(cache.get(ACCOUNT_CACHE_ENTRIES as u128 + 9).is_ok());
    }
}
