//! A consistent read-only view of the whole replicated state: a RocksDB snapshot (not a Raft
//! snapshot) taken once, from which the applied state, the ledger metadata and every table's
//! records are read as [`SnapshotItem`]s, while apply carries on. Snapshot export and the state
//! digest both read through it.
//!
//! This module never writes, and never reads the live database once the view is taken: every
//! record it returns is from the same instant.

use super::db::RocksBackend;
use super::layout::{
    be128, expiry_key, history_key, index_key, parse_expiry, parse_history, parse_id, parse_index,
    parse_index_key, CF_ACCOUNTS, CF_BALANCES, CF_EXPIRY, CF_HISTORY, CF_INDEX, CF_LEAVES, CF_META,
    CF_REVOKED, CF_STATE, CF_STATUSES, CF_TRANSFERS, DIGEST_CFS, KEY_APPLIED, KEY_CLUSTER_VERSION,
    KEY_LEDGER, KEY_STORAGE_FORMAT,
};
use super::revoked::open_revocation;
use crate::backend::AppliedState;
use crate::error::StoreError;
use crate::record::{hex, open};
use crate::revocation;
use crate::snapshot::SnapshotItem;
use ledger::codec::Kind;
use ledger::digest::StateDigest;
use ledger::merkle::Hash;
use ledger::query::{BalanceEntry, IndexField, IndexKey, IndexRead, Order};
use ledger::{
    AccountRecord, ExpiryKey, HistoryKey, LedgerMeta, ReadError, StateRead, TransferRead,
    TransferRecord, TransferState, TransferStatus,
};
use rocksdb::{IteratorMode, Snapshot};

/// The state as of one instant.
pub(super) struct View<'a> {
    backend: &'a RocksBackend,
    snap: Snapshot<'a>,
}

impl RocksBackend {
    /// Take a consistent view of the state now.
    pub(super) fn view(&self) -> View<'_> {
        View {
            backend: self,
            snap: self.db.snapshot(),
        }
    }
}

impl View<'_> {
    fn state_record<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static [u8],
    ) -> Result<Option<T>, StoreError> {
        match self.snap.get_cf(self.backend.cf(CF_STATE)?, key)? {
            Some(b) => open(Kind::StateRecord, CF_STATE, key, &b).map(Some),
            None => Ok(None),
        }
    }

    fn record<T: serde::de::DeserializeOwned>(
        &self,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.snap.get_cf(self.backend.cf(cf)?, key)? {
            Some(b) => open(Kind::StateRecord, cf, key, &b).map(Some),
            None => Ok(None),
        }
    }

    /// A transfer and where it stands, both as of this view.
    pub(super) fn transfer_read(&self, id: u128) -> Result<Option<TransferRead>, StoreError> {
        let key = be128(id);
        let Some(record) = self.record::<TransferRecord>(CF_TRANSFERS, &key)? else {
            return Ok(None);
        };
        let status: Option<TransferStatus> = self.record(CF_STATUSES, &key)?;
        Ok(Some(TransferRead {
            state: TransferState::of(&record.transfer, status),
            transfer: record.transfer,
        }))
    }

    /// The applied state (the default before the first commit).
    pub(super) fn applied(&self) -> Result<AppliedState, StoreError> {
        Ok(self.state_record(KEY_APPLIED)?.unwrap_or_default())
    }

    /// The ledger metadata (an empty ledger's before the first commit).
    pub(super) fn ledger_meta(&self) -> Result<LedgerMeta, StoreError> {
        Ok(self
            .state_record(KEY_LEDGER)?
            .unwrap_or_else(LedgerMeta::empty))
    }

    /// The cluster's effective version (`cluster_version::BASE` if none was recorded).
    pub(super) fn cluster_version(&self) -> Result<u32, StoreError> {
        let v: Option<u32> = self.state_record(KEY_CLUSTER_VERSION)?;
        crate::cluster_version::check_supported(
            v.unwrap_or(crate::cluster_version::BASE),
            "the data directory",
        )
    }

    /// The storage format recorded in this view (see `super::db::STORAGE_FORMAT`): whether the
    /// `history` table is kept (format 1) or read from the account indexes (format 2).
    fn history_stored(&self) -> Result<bool, StoreError> {
        let key = KEY_STORAGE_FORMAT.as_bytes();
        let format = match self.snap.get_cf(self.backend.cf(CF_META)?, key)? {
            Some(b) => open::<u32>(Kind::RaftMeta, CF_META, key, &b)?,
            None => 1,
        };
        Ok(format == 1)
    }

    /// Every record of the tables `cfs`, table by table in key order, as snapshot items. The
    /// `history` table of a format-2 store is read from the account indexes: the same items, in
    /// the same order, as format 1 stores.
    pub(super) fn for_each_item(
        &self,
        cfs: &[&'static str],
        mut f: impl FnMut(SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for &cf in cfs {
            if cf == CF_HISTORY && !self.history_stored()? {
                self.merged_history(0, u128::MAX, 0, u64::MAX, |k, id| {
                    f(SnapshotItem::History(k, id))?;
                    Ok(true)
                })?;
                continue;
            }
            for item in self
                .snap
                .iterator_cf(self.backend.cf(cf)?, IteratorMode::Start)
            {
                let (key, value) = item?;
                f(decode_item(cf, &key, &value)?)?;
            }
        }
        Ok(())
    }

    /// Digest of the entire replicated state: `ledger::digest` over the ledger tables, combined
    /// with the deny-list ([`revocation::combine_digest`]).
    pub(super) fn digest(&self) -> Result<Hash, StoreError> {
        let mut digest = Digesting::new(&self.ledger_meta()?);
        self.for_each_item(&DIGEST_CFS, |item| {
            digest.feed(&item);
            Ok(())
        })?;
        Ok(digest.finish(self.cluster_version()?))
    }
}

/// The state digest fed one snapshot item at a time, in table order: `ledger::digest` over the
/// ledger tables, combined with the deny-list, then the cluster version folded in, at the end.
pub(super) struct Digesting {
    digest: StateDigest,
    revoked: Vec<revocation::RevocationRecord>,
}

impl Digesting {
    pub(super) fn new(meta: &LedgerMeta) -> Self {
        Self {
            digest: StateDigest::new(meta),
            revoked: Vec::new(),
        }
    }

    /// Feed one item (leaves and markers are not part of the digest and are skipped).
    pub(super) fn feed(&mut self, item: &SnapshotItem) {
        let digest = &mut self.digest;
        match item {
            SnapshotItem::Account(r) => digest.account(r),
            SnapshotItem::Transfer(r) => digest.transfer(r),
            SnapshotItem::Status(id, s) => digest.status(*id, *s),
            SnapshotItem::Expiry(k) => digest.expiry(k),
            SnapshotItem::History(k, id) => digest.history(k, *id),
            SnapshotItem::Index(k, id) => digest.index(k, *id),
            SnapshotItem::Balance(k, e) => digest.balance(k, e),
            SnapshotItem::Revocation(r) => self.revoked.push(r.clone()),
            _ => {}
        }
    }

    pub(super) fn finish(self, cluster_version: u32) -> Hash {
        crate::cluster_version::fold_digest(
            revocation::combine_digest(self.digest.finish(), &self.revoked),
            cluster_version,
        )
    }
}

/// A stored key and value.
type RawRecord = (Box<[u8]>, Box<[u8]>);

/// One account index's entries (`TransferDebitAccount` or `TransferCreditAccount`) up to an end
/// key, in key order — (account, timestamp) — as history entries.
struct AccountRun<'a> {
    it: rocksdb::DBRawIterator<'a>,
    end: [u8; 25],
}

impl AccountRun<'_> {
    /// The entry the run is at, or `None` past its end.
    fn current(&self) -> Result<Option<(HistoryKey, u128)>, StoreError> {
        if !self.it.valid() {
            self.it.status()?;
            return Ok(None);
        }
        let (Some(k), Some(v)) = (self.it.key(), self.it.value()) else {
            return Ok(None);
        };
        if k > self.end.as_slice() {
            return Ok(None);
        }
        let key = parse_index_key(k)?;
        let id = open(Kind::StateRecord, CF_INDEX, k, v)?;
        Ok(Some((
            HistoryKey {
                account_id: key.value,
                timestamp: key.timestamp,
            },
            id,
        )))
    }

    fn advance(&mut self) -> Result<Option<(HistoryKey, u128)>, StoreError> {
        self.it.next();
        self.current()
    }
}

impl View<'_> {
    /// The run of `field`'s entries from `(account, from)` to `(account_hi, to)`.
    fn account_run(
        &self,
        field: IndexField,
        (account, from): (u128, u64),
        (account_hi, to): (u128, u64),
    ) -> Result<AccountRun<'_>, StoreError> {
        let key = |value, timestamp| {
            index_key(&IndexKey {
                field,
                value,
                timestamp,
            })
        };
        let mut it = self.snap.raw_iterator_cf(self.backend.cf(CF_INDEX)?);
        it.seek(key(account, from));
        Ok(AccountRun {
            it,
            end: key(account_hi, to),
        })
    }

    /// The history entries of accounts `account..=account_hi` (timestamps `from..=to` of each)
    /// read from the debit- and credit-account indexes, merged in (account, timestamp) order, to
    /// `f` until it returns `false`: format 2's `history` table. An entry under both indexes
    /// (never written: a transfer's two accounts differ) is handed over once, as the table held
    /// one key for it.
    fn merged_history(
        &self,
        account: u128,
        account_hi: u128,
        from: u64,
        to: u64,
        mut f: impl FnMut(HistoryKey, u128) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let (lo, hi) = ((account, from), (account_hi, to));
        let mut debits = self.account_run(IndexField::TransferDebitAccount, lo, hi)?;
        let mut credits = self.account_run(IndexField::TransferCreditAccount, lo, hi)?;
        let (mut d, mut c) = (debits.current()?, credits.current()?);
        loop {
            let next = match (d, c) {
                (None, None) => return Ok(()),
                (Some(x), None) => {
                    d = debits.advance()?;
                    x
                }
                (None, Some(y)) => {
                    c = credits.advance()?;
                    y
                }
                (Some(x), Some(y)) => {
                    if x.0 <= y.0 {
                        d = debits.advance()?;
                    }
                    if y.0 <= x.0 {
                        c = credits.advance()?;
                    }
                    if x.0 <= y.0 {
                        x
                    } else {
                        y
                    }
                }
            };
            if !f(next.0, next.1)? {
                return Ok(());
            }
        }
    }

    /// Ids of transfers that touched `account_id` with timestamps in `[from, to]`, oldest
    /// first, at most `limit`.
    pub(super) fn history_range(
        &self,
        account_id: u128,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u128>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        if !self.history_stored()? {
            self.merged_history(account_id, account_id, from, to, |_, id| {
                out.push(id);
                Ok(out.len() < limit)
            })?;
            return Ok(out);
        }
        let lo = history_key(&HistoryKey {
            account_id,
            timestamp: from,
        });
        let hi = history_key(&HistoryKey {
            account_id,
            timestamp: to,
        });
        let iter = self.snap.iterator_cf(
            self.backend.cf(CF_HISTORY)?,
            IteratorMode::From(&lo, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if out.len() >= limit || key.as_ref() > hi.as_slice() {
                break;
            }
            out.push(open(Kind::StateRecord, CF_HISTORY, &key, &value)?);
        }
        Ok(out)
    }
}

impl View<'_> {
    /// The record nearest `from` in `order` among keys in `[lo, hi]` of `cf`.
    fn seek(
        &self,
        cf: &'static str,
        lo: &[u8],
        hi: &[u8],
        from: &[u8],
        order: Order,
    ) -> Result<Option<RawRecord>, StoreError> {
        let mut it = self.snap.raw_iterator_cf(self.backend.cf(cf)?);
        match order {
            Order::Asc => it.seek(from),
            Order::Desc => it.seek_for_prev(from),
        }
        if !it.valid() {
            it.status()?;
            return Ok(None);
        }
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k >= lo && k <= hi => Ok(Some((k.into(), v.into()))),
            _ => Ok(None),
        }
    }
}

/// What apply reads, as of the view (queries read records through it).
impl StateRead for View<'_> {
    fn meta(&self) -> Result<LedgerMeta, ReadError> {
        Ok(self.ledger_meta()?)
    }

    fn account(&self, id: u128) -> Result<Option<AccountRecord>, ReadError> {
        Ok(self.record(CF_ACCOUNTS, &be128(id))?)
    }

    fn transfer(&self, id: u128) -> Result<Option<TransferRecord>, ReadError> {
        Ok(self.record(CF_TRANSFERS, &be128(id))?)
    }

    fn status(&self, id: u128) -> Result<Option<TransferStatus>, ReadError> {
        Ok(self.record(CF_STATUSES, &be128(id))?)
    }

    fn expiring(&self, now: u64, limit: usize) -> Result<Vec<ExpiryKey>, ReadError> {
        let mut out = Vec::new();
        let cf = self.backend.cf(CF_EXPIRY)?;
        let end = expiry_key(&ExpiryKey {
            expires_at: now,
            transfer_id: u128::MAX,
        });
        for item in self.snap.iterator_cf(cf, IteratorMode::Start) {
            let (key, _) = item.map_err(StoreError::from)?;
            if out.len() >= limit || key.as_ref() > end.as_slice() {
                break;
            }
            out.push(parse_expiry(&key)?);
        }
        Ok(out)
    }
}

impl View<'_> {
    /// The record of `cf` nearest `timestamp` in `order` among the keys `key(0)..=key(u64::MAX)`
    /// (one account's or one index value's entries, in timestamp order), as the timestamp
    /// `parse` reads from its key and its value.
    fn seek_by_time<K: AsRef<[u8]>, T: serde::de::DeserializeOwned>(
        &self,
        cf: &'static str,
        key: impl Fn(u64) -> K,
        parse: impl Fn(&[u8]) -> Result<u64, StoreError>,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, T)>, ReadError> {
        let (lo, hi, from) = (key(0), key(u64::MAX), key(timestamp));
        match self.seek(cf, lo.as_ref(), hi.as_ref(), from.as_ref(), order)? {
            Some((k, v)) => Ok(Some((parse(&k)?, open(Kind::StateRecord, cf, &k, &v)?))),
            None => Ok(None),
        }
    }
}

impl IndexRead for View<'_> {
    fn index_seek(
        &self,
        field: IndexField,
        value: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, u128)>, ReadError> {
        if field == IndexField::TransferAccount && !self.history_stored()? {
            // Format 2: the nearer of the two account indexes' entries.
            let debit =
                self.index_seek(IndexField::TransferDebitAccount, value, timestamp, order)?;
            let credit =
                self.index_seek(IndexField::TransferCreditAccount, value, timestamp, order)?;
            return Ok(match (debit, credit) {
                (Some(d), Some(c)) => Some(match order {
                    Order::Asc => d.min(c),
                    Order::Desc => d.max(c),
                }),
                (d, c) => d.or(c),
            });
        }
        if field == IndexField::TransferAccount {
            let key = |timestamp| {
                history_key(&HistoryKey {
                    account_id: value,
                    timestamp,
                })
            };
            let parse = |k: &[u8]| Ok(parse_history(CF_HISTORY, k)?.timestamp);
            return self.seek_by_time(CF_HISTORY, key, parse, timestamp, order);
        }
        let key = |timestamp| {
            index_key(&IndexKey {
                field,
                value,
                timestamp,
            })
        };
        let parse = |k: &[u8]| Ok(parse_index_key(k)?.timestamp);
        self.seek_by_time(CF_INDEX, key, parse, timestamp, order)
    }

    fn balance_seek(
        &self,
        account_id: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, BalanceEntry)>, ReadError> {
        let key = |timestamp| {
            history_key(&HistoryKey {
                account_id,
                timestamp,
            })
        };
        let parse = |k: &[u8]| Ok(parse_history(CF_BALANCES, k)?.timestamp);
        self.seek_by_time(CF_BALANCES, key, parse, timestamp, order)
    }
}

/// Decode one record of a snapshot table (key and value) as a snapshot item.
fn decode_item(cf: &'static str, key: &[u8], value: &[u8]) -> Result<SnapshotItem, StoreError> {
    Ok(match cf {
        CF_ACCOUNTS => SnapshotItem::Account(open(Kind::StateRecord, cf, key, value)?),
        CF_TRANSFERS => SnapshotItem::Transfer(open(Kind::StateRecord, cf, key, value)?),
        CF_STATUSES => {
            SnapshotItem::Status(parse_id(cf, key)?, open(Kind::StateRecord, cf, key, value)?)
        }
        CF_EXPIRY => SnapshotItem::Expiry(parse_expiry(key)?),
        CF_HISTORY => SnapshotItem::History(
            parse_history(cf, key)?,
            open(Kind::StateRecord, cf, key, value)?,
        ),
        CF_INDEX => SnapshotItem::Index(
            parse_index_key(key)?,
            open(Kind::StateRecord, cf, key, value)?,
        ),
        CF_BALANCES => SnapshotItem::Balance(
            parse_history(cf, key)?,
            open(Kind::StateRecord, cf, key, value)?,
        ),
        CF_LEAVES => SnapshotItem::Leaf(
            parse_index(cf, key)?,
            open(Kind::StateRecord, cf, key, value)?,
        ),
        CF_REVOKED => SnapshotItem::Revocation(open_revocation(key, value)?),
        _ => {
            return Err(StoreError::Corruption {
                cf,
                key: hex(key),
                reason: "not a snapshot table".into(),
            })
        }
    })
}
