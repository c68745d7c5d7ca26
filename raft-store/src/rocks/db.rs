//! The [`RocksBackend`] handle: opening the database (a private data directory, every column
//! family, paranoid checks, statistics), and the three primitives every other part of the
//! backend goes through — a column family handle, a checked record read, and a write batch
//! written with or without `sync`.
//!
//! This module owns the database options and the write path's fsync switch. It never decides
//! what goes into a batch, and never reads a table's records beyond checking their seal.

use super::accounts::AccountCache;
use super::layout::{
    ALL_CFS, CF_ACCOUNTS, CF_HISTORY, CF_INDEX, CF_LOG, CF_META, CF_NODES, CF_REVOKED, CF_STATUSES,
    CF_TRANSFERS, KEY_END, KEY_STORAGE_FORMAT,
};
use crate::backend::DiskStats;
use crate::error::StoreError;
use crate::record::open;
use ledger::codec::Kind;
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, FlushOptions, Options, WriteBatch,
    WriteOptions, DB,
};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

/// The newest storage format this build writes: the column families and record layouts of
/// `super::layout`, without the two derived tables of format 1 — the `history` table (each
/// account's transfers, read from the debit- and credit-account indexes instead) and the Merkle
/// nodes below [`NODE_LEVEL_MIN`] (recomputed from the leaves by the proofs that need them).
/// A store moves from format 1 to 2 when the cluster's effective version reaches
/// [`FORMAT_2_CLUSTER_VERSION`]: until then a member may be rolled back to release 0.1.0, which
/// reads format 1 only.
pub const STORAGE_FORMAT: u32 = 2;
/// The oldest storage format this build opens: format 1, which release 0.1.0 wrote (without
/// recording it; a store without the record is marked at its first open by a later release).
pub const STORAGE_FORMAT_MIN: u32 = 1;
/// The cluster version from which every store is in format 2 ([`STORAGE_FORMAT`]).
pub const FORMAT_2_CLUSTER_VERSION: u32 = 2;
/// The storage format a store is in at cluster version `cluster_version`: the one rule the
/// commit that raises the version, a snapshot install, the check at open and backup manifests
/// all follow.
pub fn storage_format_at(cluster_version: u32) -> u32 {
    if cluster_version >= FORMAT_2_CLUSTER_VERSION {
        STORAGE_FORMAT
    } else {
        STORAGE_FORMAT_MIN
    }
}

/// The lowest level of the Merkle nodes a format-2 store keeps: the roots of perfect subtrees of
/// 16 leaves and more. A proof computes a lower one from its at most 8 leaves.
pub const NODE_LEVEL_MIN: u8 = 4;

/// Memory all memtables of the store may hold together (bytes): past it RocksDB flushes the
/// largest. Without it the log and the metadata could each hold two 64 MiB memtables and every
/// ledger table two of [`TABLE_MEMTABLE_BYTES`]; with it
/// a snapshot install, which writes every ledger table at once, stays within a known bound
/// (`super::install`).
pub const MEMTABLES_BYTES_MAX: usize = 256 << 20;

/// Memtable size of each ledger table (RocksDB's default, 64 MiB). The state skips the WAL and
/// every column family flushes at once (`atomic_flush`), so the busiest table (the secondary
/// indexes) decides when all of them flush. At 4 MiB — the size a single-node benchmark
/// preferred, since a smaller skiplist is cheaper to insert into — that was every ~12,000
/// transfers: the other tables piled up small level-0 files faster than compaction merged them,
/// and RocksDB stalled writes (`LOAD=1000x8 scripts/slo-bench.sh`: 108 stall warnings on one
/// table of one node, 74 % of the offered rate achieved). At 64 MiB: no stall, 100 % achieved
/// (docs/BENCHMARKS.md). [`MEMTABLES_BYTES_MAX`] still bounds them all together.
pub const TABLE_MEMTABLE_BYTES: usize = 64 << 20;

/// Most flush threads and compaction threads this process's RocksDB pools grow to (see
/// [`BackgroundShare`]).
pub const BACKGROUND_THREADS_MAX: usize = 5;

/// One open store's share of RocksDB's background threads. Flushes and compactions run on two
/// process-wide pools (RocksDB's default environment), which a database sized like ours asks
/// to hold one thread each: right for a node alone in its process, but a process holding
/// several stores — the dev cluster's three nodes, the multi-node tests — would queue every
/// store's flushes behind a single thread (measured: the three nodes' flushes of 120 MB ran one
/// after another, each node waiting up to 1.2 s for the others'). So each store open at the
/// same time adds one thread to each pool, up to [`BACKGROUND_THREADS_MAX`]; the pools never
/// shrink (idle threads cost nothing but their stacks).
struct BackgroundShare;

/// (stores open now, threads each pool holds)
static BACKGROUND: Mutex<(usize, usize)> = Mutex::new((0, 1));

impl BackgroundShare {
    fn take() -> Result<Self, StoreError> {
        let mut pools = BACKGROUND.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = (pools.0 + 1).min(BACKGROUND_THREADS_MAX);
        if wanted > pools.1 {
            let mut env = rocksdb::Env::new()?;
            env.set_high_priority_background_threads(wanted as i32);
            env.set_low_priority_background_threads(wanted as i32);
            pools.1 = wanted;
        }
        // Counted once nothing can fail any more: every share taken is dropped exactly once.
        pools.0 += 1;
        Ok(Self)
    }
}

impl Drop for BackgroundShare {
    fn drop(&mut self) {
        let mut pools = BACKGROUND.lock().unwrap_or_else(|e| e.into_inner());
        pools.0 = pools.0.saturating_sub(1);
    }
}

/// Options of one column family. The Raft log and the store's metadata keep RocksDB's defaults
/// (the log is read in ranges, appended in order). Every ledger table gets smaller memtables
/// ([`TABLE_MEMTABLE_BYTES`]); the tables apply looks keys up in by id (accounts, transfers,
/// statuses, the deny-list) also get a Bloom filter in the memtable and in every table file, so
/// the lookup of a key that is not there — every new transfer id's duplicate check — skips the
/// search.
fn table_options(name: &str) -> Options {
    let mut o = Options::default();
    if name == CF_LOG || name == CF_META {
        return o;
    }
    o.set_write_buffer_size(TABLE_MEMTABLE_BYTES);
    if [CF_ACCOUNTS, CF_TRANSFERS, CF_STATUSES, CF_REVOKED].contains(&name) {
        o.set_memtable_whole_key_filtering(true);
        o.set_memtable_prefix_bloom_ratio(0.05);
        let mut t = BlockBasedOptions::default();
        t.set_bloom_filter(10.0, false);
        o.set_block_based_table_factory(&t);
    }
    o
}

/// RocksDB storage for the log and the ledger state of one node.
pub struct RocksBackend {
    pub(super) db: DB,
    opts: Options,
    pub(super) snapshot_dir: PathBuf,
    pub(super) snapshots_built: AtomicU64,
    /// Serialises every change to, and read of, the current snapshot (builds and installs run
    /// concurrently with each other in openraft).
    pub(super) snapshot_lock: Mutex<()>,
    /// The file the snapshot being received is written to.
    pub(super) receiving: Mutex<Option<PathBuf>>,
    /// Held for writing while an install replaces the state (`super::install`), for reading by
    /// every state-machine call: nothing reads a half-replaced state. Taken before
    /// `snapshot_lock`, never while holding it, and once per call (never nested).
    pub(super) install_gate: RwLock<()>,
    /// The storage format the state is in (1 or 2; see [`STORAGE_FORMAT`]): what apply writes.
    /// Changed only with the write that records it (under the install gate's write lock or by
    /// the apply path, the only writer). A view reads the format recorded in its own snapshot.
    pub(super) format: AtomicU32,
    /// Committed records of recently touched accounts, for apply's reads (`super::accounts`).
    pub(super) accounts: AccountCache,
    /// This store's flush and compaction threads (dropped after `db`: fields drop in order).
    _background: BackgroundShare,
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

/// Refuse a store from before release 0.1.0: it has no query indexes, and opening it would
/// answer queries without the events it already holds.
fn check_pre_release_layout(opts: &Options, db_dir: &Path) -> Result<(), StoreError> {
    let cfs = DB::list_cf(opts, db_dir)?;
    if cfs.iter().any(|c| c == CF_INDEX) {
        return Ok(());
    }
    Err(StoreError::DataDir(format!(
        "{} was written by a build older than ron-ledger 0.1.0 (no query indexes); this release \
         ({}) opens storage formats {STORAGE_FORMAT_MIN} to {STORAGE_FORMAT}: replace the node \
         from its peers (docs/OPERATIONS.md, \"A node that lost its data\")",
        db_dir.display(),
        env!("CARGO_PKG_VERSION"),
    )))
}

/// Check the storage format recorded in the store, and record it in a new store or in one
/// release 0.1.0 wrote (which recorded none; its layout is format 1). A format this build does
/// not read stops the open, naming both.
fn check_storage_format(db: &DB, db_dir: &Path, existed: bool) -> Result<u32, StoreError> {
    let meta = db
        .cf_handle(CF_META)
        .ok_or_else(|| StoreError::DataDir(format!("column family {CF_META} missing")))?;
    let found = match db.get_cf(meta, KEY_STORAGE_FORMAT)? {
        Some(bytes) => Some(open::<u32>(
            Kind::RaftMeta,
            CF_META,
            KEY_STORAGE_FORMAT.as_bytes(),
            &bytes,
        )?),
        None => None,
    };
    match found {
        Some(f) if (STORAGE_FORMAT_MIN..=STORAGE_FORMAT).contains(&f) => Ok(f),
        Some(f) => Err(StoreError::DataDir(format!(
            "{} holds storage format {f}; this release ({}) opens formats {STORAGE_FORMAT_MIN} \
             to {STORAGE_FORMAT}{}",
            db_dir.display(),
            env!("CARGO_PKG_VERSION"),
            if f > STORAGE_FORMAT {
                ": it was written by a newer release; run that release (or a newer one)"
            } else {
                ""
            },
        ))),
        None => {
            // A new store starts in format 1 too: it moves to format 2 with the cluster
            // (`RocksBackend::stage_format_2`), which a new cluster does within a second.
            let mut opts = WriteOptions::default();
            opts.set_sync(true);
            let mut batch = WriteBatch::default();
            batch.put_cf(
                meta,
                KEY_STORAGE_FORMAT,
                crate::record::seal(Kind::RaftMeta, &STORAGE_FORMAT_MIN),
            );
            db.write_opt(batch, &opts)?;
            if existed {
                tracing::info!(
                    dir = %db_dir.display(),
                    storage_format = STORAGE_FORMAT_MIN,
                    "store written by ron-ledger 0.1.0, which recorded no storage format: \
                     recorded format {STORAGE_FORMAT_MIN} (its layout; nothing else changes)"
                );
            }
            Ok(STORAGE_FORMAT_MIN)
        }
    }
}

impl RocksBackend {
    /// Open (or create) the store under `data_dir`, which must be private (0700). A store
    /// of a storage format this build does not read is refused, naming the formats.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        prepare_private_dir(data_dir)?;
        let snapshot_dir = data_dir.join("snapshots");
        prepare_private_dir(&snapshot_dir)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_paranoid_checks(true);
        // Every write is synced before it is acknowledged, so the only damage a crash can leave
        // in the WAL is a torn last record (never acknowledged): tolerate that, and refuse to
        // open on any other corruption. RocksDB's default (point-in-time recovery) would open
        // quietly without everything after a damaged record — acknowledged entries included.
        opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        opts.set_keep_log_file_num(4);
        opts.set_db_write_buffer_size(MEMTABLES_BYTES_MAX);
        // The state's writes skip the WAL (`write_state`): the column families reach table files
        // together, in one MANIFEST record, so what a crash leaves of them is always one
        // applied entry's state, never a mix.
        opts.set_atomic_flush(true);
        // Statistics feed `wal_syncs` (a metric, and how the tests prove appends are synced): a
        // ticker. Without timers and histograms, which read the clock around every get and
        // write (about 1 % of a node's samples at full batches, docs/BENCHMARKS.md).
        opts.enable_statistics();
        opts.set_statistics_level(rocksdb::statistics::StatsLevel::ExceptHistogramOrTimers);
        let db_dir = data_dir.join("db");
        let existed = db_dir.join("CURRENT").exists();
        if existed {
            check_pre_release_layout(&opts, &db_dir)?;
        }
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, table_options(name)));
        let background = BackgroundShare::take()?;
        let db = DB::open_cf_descriptors(&opts, &db_dir, cfs)?;
        let format = check_storage_format(&db, &db_dir, existed)?;
        // Leftovers of an interrupted snapshot build or receive are never the current snapshot.
        for entry in fs::read_dir(&snapshot_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = fs::remove_file(path);
            }
        }
        let backend = Self {
            db,
            opts,
            snapshot_dir,
            snapshots_built: AtomicU64::new(0),
            snapshot_lock: Mutex::new(()),
            receiving: Mutex::new(None),
            install_gate: RwLock::new(()),
            format: AtomicU32::new(format),
            accounts: AccountCache::default(),
            _background: background,
        };
        backend.resume_install()?;
        // A store of format 1 whose cluster has already advanced (an earlier build of this
        // release left it so): move it now, before anything reads it. A version this build does
        // not run is left alone here: the node refuses it where it checks versions (safe mode
        // `version_unsupported`), with the store unchanged.
        let version = backend.stored_cluster_version();
        let advanced = version.is_ok_and(|v| storage_format_at(v) == 2);
        if backend.format() == 1 && advanced {
            let mut batch = WriteBatch::default();
            backend.stage_format_2(&mut batch)?;
            backend.write_state(batch, true)?;
            backend.format.store(2, Ordering::Release);
        }
        Ok(backend)
    }

    /// The storage format the state is in (what apply writes).
    pub fn format(&self) -> u32 {
        self.format.load(Ordering::Acquire)
    }

    /// Add to `batch` the move from storage format 1 to 2: drop the `history` table and the
    /// Merkle nodes below [`NODE_LEVEL_MIN`] (both derived from what stays), and record format
    /// 2. Written with the entry that raises the cluster version (or at open, for a store
    /// that missed it), so the state is never half moved.
    pub(super) fn stage_format_2(&self, batch: &mut WriteBatch) -> Result<(), StoreError> {
        batch.delete_range_cf(self.cf(CF_HISTORY)?, &[][..], &KEY_END[..]);
        batch.delete_range_cf(self.cf(CF_NODES)?, &[0u8][..], &[NODE_LEVEL_MIN][..]);
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_STORAGE_FORMAT,
            crate::record::seal(Kind::RaftMeta, &2u32),
        );
        Ok(())
    }

    /// How many times RocksDB has fsynced its write-ahead log since this store was opened.
    pub fn wal_syncs(&self) -> u64 {
        self.opts
            .get_ticker_count(rocksdb::statistics::Ticker::WalFileSynced)
    }

    /// The database's disk figures: WAL syncs (RocksDB's statistics), the WAL files' size, and
    /// RocksDB's own table and memtable sizes summed over the column families.
    pub fn disk_stats(&self) -> DiskStats {
        let mut stats = DiskStats {
            wal_syncs: self.wal_syncs(),
            ..DiskStats::default()
        };
        for name in ALL_CFS {
            let Ok(cf) = self.cf(name) else { continue };
            let property = |p: &str| {
                self.db
                    .property_int_value_cf(cf, p)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            };
            stats.table_bytes += property("rocksdb.total-sst-files-size");
            stats.memtable_bytes += property("rocksdb.cur-size-all-mem-tables");
        }
        if let Ok(files) = fs::read_dir(self.db.path()) {
            stats.wal_bytes = files
                .filter_map(Result::ok)
                .filter(|f| f.path().extension().is_some_and(|e| e == "log"))
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum();
        }
        stats
    }

    /// A read hold on the install gate: every state-machine call takes one, once.
    pub(super) fn reading(&self) -> RwLockReadGuard<'_, ()> {
        self.install_gate.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::DataDir(format!("column family {name} missing")))
    }

    pub(super) fn get<T: serde::de::DeserializeOwned>(
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

    pub(super) fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Write a batch that changes the state (any ledger table or `state`; `meta` records may
    /// ride along) without the WAL: the Raft log is the state's write-ahead log. The batch is
    /// atomic in memory; it reaches the disk with the next flush, which writes every column
    /// family at once ([`Self::flush_state`], or RocksDB's own when a memtable fills). With
    /// `durable`, it is flushed before this returns. A crash loses what was not flushed — whole
    /// entries, never part of one — and the node applies those entries again from its log
    /// (`crate::state_machine`); the log is never purged past what is flushed
    /// (`LogBackend::purge`).
    pub(super) fn write_state(&self, batch: WriteBatch, durable: bool) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.disable_wal(true);
        self.db.write_opt(batch, &opts)?;
        if durable {
            self.flush_state()?;
        }
        Ok(())
    }

    /// Put everything in the memtables into table files, every column family at once (atomic
    /// flush), and wait: afterwards the state on disk is the state in memory.
    pub(super) fn flush_state(&self) -> Result<(), StoreError> {
        let cfs = ALL_CFS
            .iter()
            .map(|name| self.cf(name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        self.db.flush_cfs_opt(&cfs, &flush)?;
        Ok(())
    }
}
