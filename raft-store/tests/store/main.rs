//! raft-store's tests, in one binary so RocksDB is linked once: openraft's storage suite,
//! durability rules, corruption, snapshots across backends, determinism memory vs RocksDB, the
//! SIGKILL crash test, the no-files check for the memory backend, and the revocation deny-list.

mod common;
mod crash;
mod durability;
mod formats;
mod nofiles;
mod proofs;
mod revocations;
mod snapshots;
mod suite;
mod versions;

/// Entry point for child processes started by the crash and no-files tests (they re-run this
/// binary with `RON_STORE_CHILD` set). Without that variable it has nothing to do.
#[test]
fn child_process_entry() {
    match std::env::var("RON_STORE_CHILD").as_deref() {
        Ok("crash") => crash::child(),
        Ok("purge") => crash::purge_child(),
        Ok("nofiles") => nofiles::child(),
        _ => {}
    }
}
