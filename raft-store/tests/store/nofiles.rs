//! The memory backend creates no file: a child process runs a full workload on it (append,
//! apply, snapshot build and install, purge) with its working directory, `TMPDIR` and `HOME`
//! pointed at empty directories, which must still be empty afterwards; the child also checks it
//! opened no new file descriptor onto a regular file.

use crate::common::workload_entry;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine};
use raft_store::{LogStore, MemoryLog, MemoryStateBackend, StateBackend, StateMachine, TypeConfig};
use std::process::Command;
use std::sync::Arc;

fn regular_file_fds() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy().to_string();
            if t.starts_with('/') && !t.starts_with("/dev/") && !t.starts_with("/proc/") {
                out.push(t);
            }
        }
    }
    out.sort();
    out
}

pub fn child() {
    let before = regular_file_fds();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut log: LogStore<TypeConfig, _> = LogStore::new(Arc::new(MemoryLog::new()));
        let state = Arc::new(MemoryStateBackend::new());
        let mut sm: StateMachine<TypeConfig, _> = StateMachine::new(state.clone());
        let entries: Vec<_> = (1..=8).map(|i| workload_entry(3, i, 100)).collect();
        log.blocking_append(entries.clone()).await.unwrap();
        sm.apply(entries).await.unwrap();
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let other = Arc::new(MemoryStateBackend::new());
        let mut sm2: StateMachine<TypeConfig, _> = StateMachine::new(other.clone());
        sm2.install_snapshot(&snap.meta, snap.snapshot)
            .await
            .unwrap();
        assert_eq!(other.digest().unwrap(), state.digest().unwrap());
        log.purge(crate::common::log_id(1, 4)).await.unwrap();
    });
    assert_eq!(
        regular_file_fds(),
        before,
        "the memory backend opened a file"
    );
    println!("NOFILES-CHILD-OK");
}

#[test]
fn memory_backend_creates_no_file() {
    let root = tempfile::tempdir().unwrap();
    let dirs = ["cwd", "tmp", "home"].map(|d| root.path().join(d));
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RON_STORE_CHILD", "nofiles")
        .env("TMPDIR", &dirs[1])
        .env("HOME", &dirs[2])
        .current_dir(&dirs[0])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("NOFILES-CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in &dirs {
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "files created: {left:?}");
    }
}
