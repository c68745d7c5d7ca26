//! The storage format a store records, and the stores a build refuses to open: a newer format,
//! and a store from before release 0.1.0 (no query indexes). A store 0.1.0 wrote (no record) is
//! opened as is and marked once.

use crate::durability::raw_db;
use ledger::codec::Kind;
use raft_store::{RocksBackend, STORAGE_FORMAT};
use std::path::Path;

/// The storage format recorded in the store at `data`, read without the backend.
fn recorded(data: &Path) -> Option<u32> {
    let db = raw_db(data);
    let meta = db.cf_handle("meta").unwrap();
    db.get_cf(meta, "storage_format")
        .unwrap()
        .map(|b| raft_store::record::open(Kind::RaftMeta, "meta", b"storage_format", &b).unwrap())
}

fn refusal(data: &Path) -> String {
    match RocksBackend::open(data) {
        Ok(_) => panic!("the store opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_new_store_records_its_format_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    drop(RocksBackend::open(&data).unwrap());
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT));
    drop(RocksBackend::open(&data).unwrap());
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT));
}

#[test]
fn a_store_without_a_format_record_is_read_as_is_and_marked_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    drop(RocksBackend::open(&data).unwrap());
    {
        // What release 0.1.0 left: the same layout, no record.
        let db = raw_db(&data);
        db.delete_cf(db.cf_handle("meta").unwrap(), "storage_format")
            .unwrap();
    }
    assert_eq!(recorded(&data), None);
    drop(RocksBackend::open(&data).unwrap());
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT));
}

#[test]
fn a_newer_format_is_refused_naming_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    drop(RocksBackend::open(&data).unwrap());
    {
        let db = raw_db(&data);
        let newer = raft_store::record::seal(Kind::RaftMeta, &(STORAGE_FORMAT + 1));
        db.put_cf(db.cf_handle("meta").unwrap(), "storage_format", newer)
            .unwrap();
    }
    let e = refusal(&data);
    assert!(
        e.contains(&format!("storage format {}", STORAGE_FORMAT + 1))
            && e.contains(&format!("formats 1 to {STORAGE_FORMAT}"))
            && e.contains("newer release"),
        "{e}"
    );
    // Refused without being changed.
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT + 1));
}

#[test]
fn a_store_from_before_the_query_indexes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    {
        // The column families of a build before 0.1.0: no `index`, no `balances`.
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let old = [
            "log",
            "meta",
            "state",
            "accounts",
            "transfers",
            "statuses",
            "expiry",
            "history",
            "leaves",
            "nodes",
            "revoked",
        ];
        drop(rocksdb::DB::open_cf(&opts, data.join("db"), old).unwrap());
    }
    let e = refusal(&data);
    assert!(e.contains("older than ron-ledger 0.1.0"), "{e}");
    // Refused without being changed: still no index column family.
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), data.join("db")).unwrap();
    assert!(!cfs.iter().any(|c| c == "index"), "{cfs:?}");
}
