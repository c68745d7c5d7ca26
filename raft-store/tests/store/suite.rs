//! openraft's own storage test suite (`openraft::testing::Suite`), run against both backends.

use openraft::testing::{StoreBuilder, Suite};
use raft_store::types::StorageError;
use raft_store::{LogStore, MemoryLog, MemoryStateBackend, RocksBackend, StateMachine, TypeConfig};
use std::sync::Arc;

struct MemoryBuilder;

impl
    StoreBuilder<
        TypeConfig,
        LogStore<TypeConfig, MemoryLog>,
        StateMachine<TypeConfig, MemoryStateBackend>,
    > for MemoryBuilder
{
    async fn build(
        &self,
    ) -> Result<
        (
            (),
            LogStore<TypeConfig, MemoryLog>,
            StateMachine<TypeConfig, MemoryStateBackend>,
        ),
        StorageError,
    > {
        Ok((
            (),
            LogStore::new(Arc::new(MemoryLog::new())),
            StateMachine::new(Arc::new(MemoryStateBackend::new())),
        ))
    }
}

struct RocksBuilder;

impl
    StoreBuilder<
        TypeConfig,
        LogStore<TypeConfig, RocksBackend>,
        StateMachine<TypeConfig, RocksBackend>,
        tempfile::TempDir,
    > for RocksBuilder
{
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            LogStore<TypeConfig, RocksBackend>,
            StateMachine<TypeConfig, RocksBackend>,
        ),
        StorageError,
    > {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let backend = Arc::new(RocksBackend::open(&data).expect("open rocksdb"));
        Ok((
            dir,
            LogStore::new(backend.clone()),
            StateMachine::new(backend),
        ))
    }
}

#[test]
fn openraft_suite_memory() {
    Suite::test_all(MemoryBuilder).expect("openraft storage suite on the memory backend");
}

#[test]
fn openraft_suite_rocksdb() {
    Suite::test_all(RocksBuilder).expect("openraft storage suite on the RocksDB backend");
}
