//! The RocksDB backend: one database under `<data_dir>/db` with a column family per table
//! (`leaves` holds each leaf's preimage, `nodes` every perfect-subtree root keyed level‖index
//! big-endian, so proofs read O(log n) records, `revoked` the capability deny-list keyed by
//! token id), and
//! snapshot files under `<data_dir>/snapshots`. Log appends, votes, truncation and purges are
//! written with `sync = true` (the WAL is fsynced before the call returns); each applied entry is
//! one atomic `WriteBatch`, the last of every apply call synced.

use crate::backend::{
    self, meta_key, AppliedState, LogBackend, SnapshotMeta, SnapshotSource, StateBackend,
};
use crate::error::StoreError;
use crate::memory::read_snapshot;
use crate::record::{open, seal};
use crate::revocation::{self, RevocationRecord, TokenId};
use crate::snapshot::{SnapshotData, SnapshotItem, SnapshotWriter};
use ledger::codec::Kind;
use ledger::merkle::{leaf_hash, Hash};
use ledger::proof::{self, TreeSource};
use ledger::{
    AccountRecord, Batch, Changes, ConsistencyProof, ExpiryKey, HistoryKey, InclusionProof,
    LedgerMeta, Outcome, ReadError, StateRead, TransferRecord, TransferStatus,
};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};
use std::fs;
use std::io::{BufReader, BufWriter, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const CF_LOG: &str = "log";
const CF_META: &str = "meta";
const CF_STATE: &str = "state";
const CF_ACCOUNTS: &str = "accounts";
const CF_TRANSFERS: &str = "transfers";
const CF_STATUSES: &str = "statuses";
const CF_EXPIRY: &str = "expiry";
const CF_HISTORY: &str = "history";
const CF_LEAVES: &str = "leaves";
const CF_NODES: &str = "nodes";
/// The capability deny-list: token id → [`RevocationRecord`] (not part of the Merkle tree).
const CF_REVOKED: &str = "revoked";
const ALL_CFS: [&str; 11] = [
    CF_LOG,
    CF_META,
    CF_STATE,
    CF_ACCOUNTS,
    CF_TRANSFERS,
    CF_STATUSES,
    CF_EXPIRY,
    CF_HISTORY,
    CF_LEAVES,
    CF_NODES,
    CF_REVOKED,
];
/// The column families that hold replicated state (replaced whole by a snapshot install).
const LEDGER_CFS: [&str; 8] = [
    CF_ACCOUNTS,
    CF_TRANSFERS,
    CF_STATUSES,
    CF_EXPIRY,
    CF_HISTORY,
    CF_LEAVES,
    CF_NODES,
    CF_REVOKED,
];
/// The column families a snapshot carries, in stream order. `nodes` is derived: the receiver
/// rebuilds it from the leaves.
const SNAPSHOT_CFS: [&str; 7] = [
    CF_ACCOUNTS,
    CF_TRANSFERS,
    CF_STATUSES,
    CF_EXPIRY,
    CF_HISTORY,
    CF_LEAVES,
    CF_REVOKED,
];
const KEY_APPLIED: &[u8] = b"applied";
const KEY_LEDGER: &[u8] = b"ledger";
const KEY_SNAPSHOT: &str = "snapshot";
/// Longer than any key we write: the exclusive end of a whole-table range delete.
const KEY_END: [u8; 32] = [0xff; 32];

/// RocksDB storage for the log and the ledger state of one node.
pub struct RocksBackend {
    db: DB,
    opts: Options,
    snapshot_dir: PathBuf,
    snapshots_built: AtomicU64,
    /// Serialises every change to, and read of, the current snapshot (builds and installs run
    /// concurrently with each other in openraft).
    snapshot_lock: Mutex<()>,
    /// The file the snapshot being received is written to.
    receiving: Mutex<Option<PathBuf>>,
}

fn be128(v: u128) -> [u8; 16] {
    v.to_be_bytes()
}

fn expiry_key(k: &ExpiryKey) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&k.expires_at.to_be_bytes());
    out[8..].copy_from_slice(&k.transfer_id.to_be_bytes());
    out
}

fn history_key(k: &HistoryKey) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&k.account_id.to_be_bytes());
    out[16..].copy_from_slice(&k.timestamp.to_be_bytes());
    out
}

/// Key of an interior node: level (1 byte) then index (u64 BE), so a level's nodes are
/// contiguous and in index order.
fn node_key(level: u8, index: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = level;
    out[1..].copy_from_slice(&index.to_be_bytes());
    out
}

fn bad_key(cf: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corruption {
        cf,
        key: crate::record::hex(key),
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

fn parse_expiry(key: &[u8]) -> Result<ExpiryKey, StoreError> {
    let (at, id) = split_key::<8, 16>(CF_EXPIRY, key)?;
    Ok(ExpiryKey {
        expires_at: u64::from_be_bytes(at),
        transfer_id: u128::from_be_bytes(id),
    })
}

fn parse_history(key: &[u8]) -> Result<HistoryKey, StoreError> {
    let (id, ts) = split_key::<16, 8>(CF_HISTORY, key)?;
    Ok(HistoryKey {
        account_id: u128::from_be_bytes(id),
        timestamp: u64::from_be_bytes(ts),
    })
}

/// Decode a deny-list record and check it is filed under its own token id.
fn open_revocation(key: &[u8], value: &[u8]) -> Result<RevocationRecord, StoreError> {
    let r: RevocationRecord = open(Kind::StateRecord, CF_REVOKED, key, value)?;
    if key != r.token_id {
        return Err(StoreError::Corruption {
            cf: CF_REVOKED,
            key: crate::record::hex(key),
            reason: "record filed under another token id".into(),
        });
    }
    Ok(r)
}

/// Create `dir` with mode 0700, or check that an existing one is not readable by others.
pub fn prepare_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.exists() {
        let mode = fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(StoreError::DataDir(format!(
                "{} has mode {:o}; it must be 0700 (chmod 700 it)",
                dir.display(),
                mode & 0o777
            )));
        }
        Ok(())
    } else {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(())
    }
}

impl RocksBackend {
    /// Open (or create) the store under `data_dir`, which must be private (0700).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        prepare_private_dir(data_dir)?;
        let snapshot_dir = data_dir.join("snapshots");
        prepare_private_dir(&snapshot_dir)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_paranoid_checks(true);
        opts.set_keep_log_file_num(4);
        // Statistics feed `wal_syncs` (a metric, and how the tests prove appends are synced).
        opts.enable_statistics();
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, data_dir.join("db"), cfs)?;
        // Leftovers of an interrupted snapshot build or receive are never the current snapshot.
        for entry in fs::read_dir(&snapshot_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = fs::remove_file(path);
            }
        }
        Ok(Self {
            db,
            opts,
            snapshot_dir,
            snapshots_built: AtomicU64::new(0),
            snapshot_lock: Mutex::new(()),
            receiving: Mutex::new(None),
        })
    }

    /// How many times RocksDB has fsynced its write-ahead log since this store was opened.
    pub fn wal_syncs(&self) -> u64 {
        self.opts
            .get_ticker_count(rocksdb::statistics::Ticker::WalFileSynced)
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::DataDir(format!("column family {name} missing")))
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        cf: &'static str,
        kind: Kind,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.db.get_pinned_cf(self.cf(cf)?, key)? {
            None => Ok(None),
            Some(bytes) => open(kind, cf, key, &bytes).map(Some),
        }
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    fn history_range(
        &self,
        account_id: u128,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u128>, StoreError> {
        let lo = history_key(&HistoryKey {
            account_id,
            timestamp: from,
        });
        let hi = history_key(&HistoryKey {
            account_id,
            timestamp: to,
        });
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_HISTORY)?,
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

    /// Export a consistent view (a RocksDB snapshot) as snapshot items; apply continues
    /// meanwhile.
    fn export<W: Write>(&self, out: W) -> Result<(AppliedState, W), StoreError> {
        let snap = self.db.snapshot();
        let get = |cf: &'static str, key: &[u8]| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(snap.get_cf(self.cf(cf)?, key)?)
        };
        let applied: AppliedState = match get(CF_STATE, KEY_APPLIED)? {
            Some(b) => open(Kind::StateRecord, CF_STATE, KEY_APPLIED, &b)?,
            None => AppliedState::default(),
        };
        let ledger: LedgerMeta = match get(CF_STATE, KEY_LEDGER)? {
            Some(b) => open(Kind::StateRecord, CF_STATE, KEY_LEDGER, &b)?,
            None => LedgerMeta::empty(),
        };
        let mut w = SnapshotWriter::new(out, backend::header(&applied, ledger))?;
        for cf in SNAPSHOT_CFS {
            for item in snap.iterator_cf(self.cf(cf)?, IteratorMode::Start) {
                let (key, value) = item?;
                w.push(&self.decode_item(cf, &key, &value)?)?;
            }
        }
        Ok((applied, w.finish()?))
    }

    fn decode_item(
        &self,
        cf: &'static str,
        key: &[u8],
        value: &[u8],
    ) -> Result<SnapshotItem, StoreError> {
        Ok(match cf {
            CF_ACCOUNTS => SnapshotItem::Account(open(Kind::StateRecord, cf, key, value)?),
            CF_TRANSFERS => SnapshotItem::Transfer(open(Kind::StateRecord, cf, key, value)?),
            CF_STATUSES => {
                let id: [u8; 16] = key.try_into().map_err(|_| bad_key(cf, key))?;
                SnapshotItem::Status(
                    u128::from_be_bytes(id),
                    open(Kind::StateRecord, cf, key, value)?,
                )
            }
            CF_EXPIRY => SnapshotItem::Expiry(parse_expiry(key)?),
            CF_HISTORY => SnapshotItem::History(
                parse_history(key)?,
                open(Kind::StateRecord, cf, key, value)?,
            ),
            CF_LEAVES => {
                let index: [u8; 8] = key.try_into().map_err(|_| bad_key(cf, key))?;
                SnapshotItem::Leaf(
                    u64::from_be_bytes(index),
                    open(Kind::StateRecord, cf, key, value)?,
                )
            }
            CF_REVOKED => SnapshotItem::Revocation(open_revocation(key, value)?),
            _ => {
                return Err(StoreError::Corruption {
                    cf,
                    key: crate::record::hex(key),
                    reason: "not a snapshot table".into(),
                })
            }
        })
    }

    /// Add deny-list records to `batch` (keyed by token id).
    fn stage_revocations(
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

    /// Add every write of `changes` to `batch`.
    fn stage(&self, batch: &mut WriteBatch, changes: &Changes) -> Result<(), StoreError> {
        let accounts = self.cf(CF_ACCOUNTS)?;
        for r in &changes.accounts {
            batch.put_cf(accounts, be128(r.account.id), seal(Kind::StateRecord, r));
        }
        let transfers = self.cf(CF_TRANSFERS)?;
        for r in &changes.transfers {
            batch.put_cf(transfers, be128(r.transfer.id), seal(Kind::StateRecord, r));
        }
        let statuses = self.cf(CF_STATUSES)?;
        for (id, s) in &changes.statuses {
            batch.put_cf(statuses, be128(*id), seal(Kind::StateRecord, s));
        }
        let expiry = self.cf(CF_EXPIRY)?;
        for k in &changes.expiry_delete {
            batch.delete_cf(expiry, expiry_key(k));
        }
        for k in &changes.expiry_put {
            batch.put_cf(expiry, expiry_key(k), seal(Kind::StateRecord, &()));
        }
        let history = self.cf(CF_HISTORY)?;
        for (k, id) in &changes.history {
            batch.put_cf(history, history_key(k), seal(Kind::StateRecord, id));
        }
        // Leaves are stored as their preimages; the hash is recomputed when read.
        let leaves = self.cf(CF_LEAVES)?;
        debug_assert_eq!(changes.leaves.len(), changes.leaf_data.len());
        for (i, data) in changes.leaf_data.iter().enumerate() {
            let index = changes.first_leaf + i as u64;
            batch.put_cf(
                leaves,
                index.to_be_bytes(),
                seal(Kind::StateRecord, &data.as_bytes()),
            );
        }
        let nodes = self.cf(CF_NODES)?;
        for (level, index, hash) in &changes.nodes {
            batch.put_cf(
                nodes,
                node_key(*level, *index),
                seal(Kind::StateRecord, hash),
            );
        }
        batch.put_cf(
            self.cf(CF_STATE)?,
            KEY_LEDGER,
            seal(Kind::StateRecord, &changes.meta),
        );
        Ok(())
    }

    fn new_snapshot_file(&self, name: &str) -> Result<(PathBuf, fs::File), StoreError> {
        let path = self.snapshot_dir.join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok((path, file))
    }

    /// The current snapshot's metadata and file name, as recorded.
    fn current_meta(&self) -> Result<Option<(SnapshotMeta, String)>, StoreError> {
        match self.meta_get(KEY_SNAPSHOT)? {
            None => Ok(None),
            Some(bytes) => {
                open(Kind::SnapshotMeta, CF_META, KEY_SNAPSHOT.as_bytes(), &bytes).map(Some)
            }
        }
    }

    /// Make `tmp` the current snapshot for `meta` — unless a newer one is already current and
    /// this is only a build — durably, and drop older files. `with` (an install's state
    /// replacement) is written in the same atomic batch as the new current-snapshot record, so a
    /// crash never leaves state and snapshot disagreeing. Returns the current snapshot.
    fn keep_snapshot(
        &self,
        meta: &SnapshotMeta,
        tmp: &Path,
        with: Option<WriteBatch>,
    ) -> Result<(SnapshotMeta, PathBuf), StoreError> {
        let _guard = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        if with.is_none() {
            if let Some((current, name)) = self.current_meta()? {
                if current.last_log_id > meta.last_log_id {
                    let _ = fs::remove_file(tmp);
                    return Ok((current, self.snapshot_dir.join(name)));
                }
            }
        }
        // The id comes from the leader: never use it as a path.
        let name = format!(
            "{}.snap",
            &blake3::hash(meta.snapshot_id.as_bytes()).to_hex()[..32]
        );
        let path = self.snapshot_dir.join(&name);
        fs::rename(tmp, &path)?;
        fs::File::open(&self.snapshot_dir)?.sync_all()?;
        let mut batch = with.unwrap_or_default();
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_SNAPSHOT,
            seal(Kind::SnapshotMeta, &(meta, &name)),
        );
        self.write(batch, true)?;
        for entry in fs::read_dir(&self.snapshot_dir)? {
            let p = entry?.path();
            if p != path && p.extension().is_some_and(|e| e == "snap") {
                let _ = fs::remove_file(p);
            }
        }
        Ok((meta.clone(), path))
    }
}

/// The Merkle tree as stored: leaf preimages (hashed on read) and interior nodes.
struct StoredTree<'a>(&'a RocksBackend);

impl TreeSource for StoredTree<'_> {
    type Error = StoreError;

    fn leaf_hash(&self, index: u64) -> Result<Hash, StoreError> {
        let data: Vec<u8> = self
            .0
            .get(CF_LEAVES, Kind::StateRecord, &index.to_be_bytes())?
            .ok_or_else(|| StoreError::Corruption {
                cf: CF_LEAVES,
                key: crate::record::hex(&index.to_be_bytes()),
                reason: "leaf of the applied tree missing".into(),
            })?;
        Ok(leaf_hash(&data))
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        self.0
            .get(CF_NODES, Kind::StateRecord, &node_key(level, index))
    }
}

fn read_err(e: StoreError) -> ReadError {
    e.into()
}

impl StateRead for RocksBackend {
    fn meta(&self) -> Result<LedgerMeta, ReadError> {
        Ok(self
            .get(CF_STATE, Kind::StateRecord, KEY_LEDGER)
            .map_err(read_err)?
            .unwrap_or_else(LedgerMeta::empty))
    }

    fn account(&self, id: u128) -> Result<Option<AccountRecord>, ReadError> {
        self.get(CF_ACCOUNTS, Kind::StateRecord, &be128(id))
            .map_err(read_err)
    }

    fn transfer(&self, id: u128) -> Result<Option<TransferRecord>, ReadError> {
        self.get(CF_TRANSFERS, Kind::StateRecord, &be128(id))
            .map_err(read_err)
    }

    fn status(&self, id: u128) -> Result<Option<TransferStatus>, ReadError> {
        self.get(CF_STATUSES, Kind::StateRecord, &be128(id))
            .map_err(read_err)
    }

    fn expiring(&self, now: u64, limit: usize) -> Result<Vec<ExpiryKey>, ReadError> {
        let mut out = Vec::new();
        let cf = self.cf(CF_EXPIRY).map_err(read_err)?;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, _) = item.map_err(|e| read_err(e.into()))?;
            let k = parse_expiry(&key).map_err(read_err)?;
            if k.expires_at > now || out.len() >= limit {
                break;
            }
            out.push(k);
        }
        Ok(out)
    }
}

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
            let index =
                u64::from_be_bytes(key.as_ref().try_into().map_err(|_| bad_key(CF_LOG, &key))?);
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
                let index =
                    u64::from_be_bytes(key.as_ref().try_into().map_err(|_| bad_key(CF_LOG, &key))?);
                Ok(Some((index, value.into_vec())))
            }
        }
    }

    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_LOG)?, &from.to_be_bytes()[..], &KEY_END[..]);
        self.write(batch, true)
    }

    fn purge(&self, upto: u64, purged: Vec<u8>) -> Result<(), StoreError> {
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
}

impl StateBackend for RocksBackend {
    fn is_blocking(&self) -> bool {
        true
    }

    fn applied(&self) -> Result<AppliedState, StoreError> {
        Ok(self
            .get(CF_STATE, Kind::StateRecord, KEY_APPLIED)?
            .unwrap_or_default())
    }

    fn ledger_meta(&self) -> Result<LedgerMeta, StoreError> {
        Ok(StateRead::meta(self)?)
    }

    fn apply(&self, batch: &Batch) -> Result<(Outcome, Changes), StoreError> {
        Ok(ledger::apply(self, batch)?)
    }

    fn commit(
        &self,
        changes: Option<Changes>,
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        if let Some(changes) = &changes {
            self.stage(&mut batch, changes)?;
        }
        batch.put_cf(
            self.cf(CF_STATE)?,
            KEY_APPLIED,
            seal(Kind::StateRecord, applied),
        );
        self.write(batch, sync)
    }

    fn commit_admin(
        &self,
        records: &[RevocationRecord],
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        self.stage_revocations(&mut batch, records)?;
        batch.put_cf(
            self.cf(CF_STATE)?,
            KEY_APPLIED,
            seal(Kind::StateRecord, applied),
        );
        self.write(batch, sync)
    }

    fn revocation(&self, token_id: &TokenId) -> Result<Option<RevocationRecord>, StoreError> {
        match self.db.get_pinned_cf(self.cf(CF_REVOKED)?, token_id)? {
            None => Ok(None),
            Some(bytes) => open_revocation(token_id, &bytes).map(Some),
        }
    }

    fn revocations(
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

    fn build_snapshot(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError> {
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let tmp_name = format!("build-{n}.tmp");
        let (tmp, file) = self.new_snapshot_file(&tmp_name)?;
        let (applied, out) = self.export(BufWriter::new(file))?;
        let file = out
            .into_inner()
            .map_err(|e| StoreError::Io(e.into_error()))?;
        file.sync_all()?;
        let meta = backend::snapshot_meta(&applied, n);
        let (meta, path) = self.keep_snapshot(&meta, &tmp, None)?;
        let file = fs::File::open(path)?;
        Ok((meta, SnapshotData::File(tokio::fs::File::from_std(file))))
    }

    fn receive_buffer(&self) -> Result<SnapshotData, StoreError> {
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let (path, file) = self.new_snapshot_file(&format!("receive-{n}.tmp"))?;
        let previous = self
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(path);
        if let Some(abandoned) = previous {
            let _ = fs::remove_file(abandoned);
        }
        Ok(SnapshotData::File(tokio::fs::File::from_std(file)))
    }

    fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotSource,
    ) -> Result<(), StoreError> {
        // Read and check everything before touching the state.
        let (mut changes, applied, revoked) = match &data {
            SnapshotSource::Memory(bytes) => read_snapshot(meta, &bytes[..])?,
            SnapshotSource::File(f) => read_snapshot(meta, BufReader::new(f))?,
        };
        changes.first_leaf = 0;
        // The snapshot file goes into place first (fsynced); then one atomic write replaces the
        // whole ledger state, the applied state and the current-snapshot record.
        let received = self
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let tmp = match (data, received) {
            (SnapshotSource::File(f), Some(path)) => {
                f.sync_all()?;
                path
            }
            (data, leftover) => {
                if let Some(p) = leftover {
                    let _ = fs::remove_file(p);
                }
                let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
                let (tmp, mut file) = self.new_snapshot_file(&format!("installed-{n}.tmp"))?;
                match data {
                    SnapshotSource::Memory(bytes) => file.write_all(&bytes)?,
                    SnapshotSource::File(mut f) => {
                        f.rewind()?;
                        std::io::copy(&mut f, &mut file)?;
                    }
                }
                file.sync_all()?;
                tmp
            }
        };
        let mut batch = WriteBatch::default();
        for cf in LEDGER_CFS {
            batch.delete_range_cf(self.cf(cf)?, &[][..], &KEY_END[..]);
        }
        self.stage(&mut batch, &changes)?;
        self.stage_revocations(&mut batch, &revoked)?;
        batch.put_cf(
            self.cf(CF_STATE)?,
            KEY_APPLIED,
            seal(Kind::StateRecord, &applied),
        );
        self.keep_snapshot(meta, &tmp, Some(batch))?;
        Ok(())
    }

    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>, StoreError> {
        let _guard = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some((meta, name)) = self.current_meta()? else {
            return Ok(None);
        };
        let file = fs::File::open(self.snapshot_dir.join(name))?;
        Ok(Some((
            meta,
            SnapshotData::File(tokio::fs::File::from_std(file)),
        )))
    }

    fn digest(&self) -> Result<Hash, StoreError> {
        let snap = self.db.snapshot();
        let ledger: LedgerMeta = match snap.get_cf(self.cf(CF_STATE)?, KEY_LEDGER)? {
            Some(b) => open(Kind::StateRecord, CF_STATE, KEY_LEDGER, &b)?,
            None => LedgerMeta::empty(),
        };
        let mut digest = ledger::digest::StateDigest::new(&ledger);
        for cf in [
            CF_ACCOUNTS,
            CF_TRANSFERS,
            CF_STATUSES,
            CF_EXPIRY,
            CF_HISTORY,
        ] {
            for item in snap.iterator_cf(self.cf(cf)?, IteratorMode::Start) {
                let (key, value) = item?;
                match self.decode_item(cf, &key, &value)? {
                    SnapshotItem::Account(r) => digest.account(&r),
                    SnapshotItem::Transfer(r) => digest.transfer(&r),
                    SnapshotItem::Status(id, s) => digest.status(id, s),
                    SnapshotItem::Expiry(k) => digest.expiry(&k),
                    SnapshotItem::History(k, id) => digest.history(&k, id),
                    _ => {}
                }
            }
        }
        let mut revoked = Vec::new();
        for item in snap.iterator_cf(self.cf(CF_REVOKED)?, IteratorMode::Start) {
            let (key, value) = item?;
            revoked.push(open_revocation(&key, &value)?);
        }
        Ok(revocation::combine_digest(digest.finish(), &revoked))
    }

    fn lookup_account(&self, id: u128) -> Result<Option<AccountRecord>, StoreError> {
        self.get(CF_ACCOUNTS, Kind::StateRecord, &be128(id))
    }

    fn lookup_transfer(&self, id: u128) -> Result<Option<TransferRecord>, StoreError> {
        self.get(CF_TRANSFERS, Kind::StateRecord, &be128(id))
    }

    fn account_history(
        &self,
        account_id: u128,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u128>, StoreError> {
        self.history_range(account_id, from, to, limit)
    }

    fn leaf_data(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_LEAVES, Kind::StateRecord, &index.to_be_bytes())
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        backend::check_tree_size(size, self.ledger_meta()?.tree.size)?;
        proof::inclusion_proof(&StoredTree(self), index, size)
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, StoreError> {
        backend::check_tree_size(new, self.ledger_meta()?.tree.size)?;
        proof::consistency_proof(&StoredTree(self), old, new)
    }

    fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        backend::check_tree_size(size, self.ledger_meta()?.tree.size)?;
        proof::root_at(&StoredTree(self), size)
    }
}
