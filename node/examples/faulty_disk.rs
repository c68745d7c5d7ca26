//! A `ron-ledger start --config FILE` whose disk can be made to fail, for the multi-process fault
//! tests (`tests/tests/disk_faults.rs`); built as an example, never shipped.
//!
//! The node runs on its configured RocksDB store, with one change at the storage seam: while the
//! file named by `RON_FAULT_SYNC_FAILS` exists, every log append fails the way RocksDB reports a
//! failed fdatasync (`While fdatasync: …: Input/output error`) and writes nothing — the most
//! pessimistic reading of a failed sync, in which none of the bytes reached the disk.
//!
//! Usage: `faulty_disk start --config node.toml` (the test cluster's argument shape).

use anyhow::Context;
use raft_store::{LogBackend, RocksBackend, StoreError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The RocksDB log, with appends that fail while the trigger file exists.
struct FailingSync {
    inner: Arc<RocksBackend>,
    trigger: Option<PathBuf>,
    wal: PathBuf,
}

impl FailingSync {
    fn failing(&self) -> bool {
        self.trigger.as_ref().is_some_and(|t| t.exists())
    }
}

impl LogBackend for FailingSync {
    fn is_blocking(&self) -> bool {
        self.inner.is_blocking()
    }
    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        if self.failing() {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "While fdatasync: {} (write-ahead log): Input/output error",
                self.wal.display()
            ))));
        }
        self.inner.append(entries)
    }
    fn read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.read(start, end)
    }
    fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.inner.last()
    }
    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        self.inner.truncate(from)
    }
    fn purge(&self, upto: u64, purged: Vec<u8>) -> Result<(), StoreError> {
        self.inner.purge(upto, purged)
    }
    fn meta_get(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta_get(key)
    }
    fn meta_put(&self, key: &'static str, value: Vec<u8>, sync: bool) -> Result<(), StoreError> {
        self.inner.meta_put(key, value, sync)
    }
    fn disk_stats(&self) -> Option<raft_store::DiskStats> {
        LogBackend::disk_stats(&*self.inner)
    }
}

fn config_path() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [start, flag, path] if start == "start" && flag == "--config" => Some(path.into()),
        _ => None,
    }
}

async fn run(config: node::config::Config) -> anyhow::Result<()> {
    let dir = config.data_dir.clone().context("data_dir")?;
    let backend = Arc::new(
        RocksBackend::open(&dir).with_context(|| format!("open storage in {}", dir.display()))?,
    );
    let log = Arc::new(FailingSync {
        inner: backend.clone(),
        trigger: std::env::var_os("RON_FAULT_SYNC_FAILS").map(PathBuf::from),
        wal: dir.join("db"),
    });
    let storage = node::start::Backends {
        log,
        state: backend,
    };
    node::start::run_until_signal(config, false, Some(storage)).await
}

fn main() -> ExitCode {
    let Some(path) = config_path() else {
        eprintln!("usage: faulty_disk start --config FILE");
        return ExitCode::from(2);
    };
    let config = match node::config::load(Some(&path), std::env::vars(), &[]) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("faulty_disk: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log.level))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faulty_disk: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faulty_disk: {e:#}");
            ExitCode::from(1)
        }
    }
}
