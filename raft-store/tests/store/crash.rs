//! Crash test: a child process appends and applies entries (each acknowledged on stdout only
//! after the append and the apply returned) and is SIGKILLed at a random moment. The parent
//! reopens the store and checks that its log holds everything acknowledged, contiguous and
//! checksum-clean; that the state (written without a WAL, durable when RocksDB flushes) is
//! exactly the state after some applied entry — the root and state digest an in-memory
//! reference has at that index — never behind the previous round; and that applying the log
//! from there, as a node does at start, reaches exactly the reference's state at the log's end.
//! Then the next round continues from there.

use crate::common::{workload_entry, Rng};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::Entry;
use raft_store::{
    LogStore, MemoryStateBackend, RocksBackend, StateBackend, StateMachine, TypeConfig,
};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const EVENTS: usize = 400;
const ROUNDS: usize = 6;

fn last_index(log: &LogStore<TypeConfig, RocksBackend>) -> u64 {
    log.read_entries(0, u64::MAX)
        .expect("log reads clean")
        .last()
        .map_or(0, |e| e.log_id.index)
}

/// Start this test binary as the child process `mode` (see `child_process_entry`) on the store
/// under `data`, its stdout piped.
fn spawn_child(mode: &str, data: &Path, seed: Option<u64>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("RON_STORE_CHILD", mode)
    .env("RON_CRASH_DIR", data);
    if let Some(seed) = seed {
        cmd.env("RON_CRASH_SEED", seed.to_string());
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

/// The store's root (ledger metadata) and state digest equal the reference's.
fn assert_same_state(store: &RocksBackend, reference: &MemoryStateBackend, at: &str) {
    assert_eq!(
        store.ledger_meta().unwrap(),
        reference.ledger_meta().unwrap(),
        "{at}: root differs"
    );
    assert_eq!(
        store.digest().unwrap(),
        reference.digest().unwrap(),
        "{at}: state differs"
    );
}

/// A child process's store: the RocksDB backend, its log and a runtime to drive the log's
/// async calls.
struct ChildStore {
    backend: Arc<RocksBackend>,
    log: LogStore<TypeConfig, RocksBackend>,
    rt: tokio::runtime::Runtime,
}

impl ChildStore {
    fn open(dir: &str) -> Self {
        let backend = Arc::new(RocksBackend::open(Path::new(dir)).expect("open"));
        let log = LogStore::new(backend.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self { backend, log, rt }
    }

    /// Append `e` (synced) and apply it, as a node does with a committed entry.
    fn append_and_apply(&mut self, e: Entry<TypeConfig>) {
        self.rt
            .block_on(self.log.blocking_append(vec![e.clone()]))
            .expect("append");
        StateMachine::<TypeConfig, _>::apply_blocking(&*self.backend, vec![e]).expect("apply");
    }
}

/// The child: recover (apply what the log has beyond `last_applied`), then append and apply one
/// entry at a time forever, acknowledging each.
pub fn child() {
    let dir = std::env::var("RON_CRASH_DIR").expect("dir");
    let seed: u64 = std::env::var("RON_CRASH_SEED")
        .expect("seed")
        .parse()
        .expect("seed");
    let mut child = ChildStore::open(&dir);
    let (backend, log) = (&child.backend, &child.log);
    let mut next = last_index(log) + 1;
    let applied = backend
        .applied()
        .unwrap()
        .last_applied
        .map_or(0, |l| l.index);
    let pending = log.read_entries(applied + 1, next).expect("log");
    StateMachine::<TypeConfig, _>::apply_blocking(&**backend, pending).expect("recover");
    loop {
        child.append_and_apply(workload_entry(seed, next, EVENTS));
        println!("ACK {next}");
        next += 1;
    }
}

/// The child of the purge test: append and apply `PURGE_AT` entries, purge the log up to the
/// last of them (as openraft does once a snapshot covers them), say so, and wait to be killed.
pub fn purge_child() {
    let dir = std::env::var("RON_CRASH_DIR").expect("dir");
    let mut child = ChildStore::open(&dir);
    for i in 1..=PURGE_AT {
        child.append_and_apply(workload_entry(1, i, EVENTS));
    }
    let upto = child
        .log
        .read_entries(PURGE_AT, PURGE_AT + 1)
        .expect("log")
        .pop()
        .expect("the last entry")
        .log_id;
    child.rt.block_on(child.log.purge(upto)).expect("purge");
    println!("PURGED {PURGE_AT}");
    std::thread::sleep(Duration::from_secs(600));
}

/// Entries the purge test applies and then purges: far fewer than fill a memtable, so nothing
/// but the purge itself flushes the state.
const PURGE_AT: u64 = 6;

/// The state has no WAL, so a crash can take it back to its last flush — but never behind the
/// log's purge point, where the entries it would need to apply again are gone.
#[test]
fn a_crash_after_a_purge_never_leaves_the_state_behind_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut child = spawn_child("purge", &data, None);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let purged = stdout
        .lines()
        .map_while(Result::ok)
        // The harness prints the test's name on the same line, before it.
        .find_map(|line| {
            line.split("PURGED ")
                .nth(1)
                .map(|i| i.trim().parse::<u64>().unwrap())
        });
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert_eq!(purged, Some(PURGE_AT), "the child did not purge");
    let backend = Arc::new(RocksBackend::open(&data).expect("reopen after SIGKILL"));
    let applied = backend
        .applied()
        .unwrap()
        .last_applied
        .map_or(0, |l| l.index);
    assert!(
        applied >= PURGE_AT,
        "the state is at {applied}, behind the purge point {PURGE_AT}: entries {}..={PURGE_AT} are lost",
        applied + 1
    );
    let reference = MemoryStateBackend::new();
    let entries: Vec<_> = (1..=applied)
        .map(|i| workload_entry(1, i, EVENTS))
        .collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&reference, entries).unwrap();
    assert_same_state(
        &backend,
        &reference,
        &format!("after the purge, applied {applied}"),
    );
}

#[test]
fn sigkill_at_random_points_recovers_exactly_the_synced_state() {
    let seed: u64 = std::env::var("RON_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xc0ffee);
    println!("crash test seed {seed} (replay with RON_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let reference = MemoryStateBackend::new();
    let mut reference_applied = 0u64;
    let mut previous = 0u64;
    let mut behind = 0;
    for round in 0..ROUNDS {
        let mut child = spawn_child("crash", &data, Some(seed));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(i) = line.strip_prefix("ACK ") {
                    let _ = tx.send(i.parse::<u64>().unwrap_or(0));
                }
            }
        });
        // Wait for the child to make progress past the previous round, then kill it at a
        // random moment.
        let mut acked = 0u64;
        let start = Instant::now();
        while acked <= previous && start.elapsed() < Duration::from_secs(60) {
            if let Ok(i) = rx.recv_timeout(Duration::from_millis(100)) {
                acked = acked.max(i);
            }
        }
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(i) = rx.try_recv() {
            acked = acked.max(i);
        }
        assert!(
            acked > previous,
            "round {round}: the child made no progress"
        );

        let backend = Arc::new(RocksBackend::open(&data).expect("reopen after SIGKILL"));
        let applied = backend
            .applied()
            .unwrap()
            .last_applied
            .map_or(0, |l| l.index);
        let log: LogStore<TypeConfig, _> = LogStore::new(backend.clone());
        let last = last_index(&log);
        assert!(
            last >= acked,
            "round {round}: log ends at {last} < acknowledged {acked}"
        );
        assert!(
            applied >= previous,
            "round {round}: the state went backwards {previous} -> {applied}"
        );
        assert!(
            last >= applied,
            "round {round}: log ends at {last}, applied {applied}"
        );
        // The state the crash left is the state after entry `applied`, whole.
        let catch_up = |reference_applied: &mut u64, upto: u64| {
            let entries: Vec<_> = (*reference_applied + 1..=upto)
                .map(|i| workload_entry(seed, i, EVENTS))
                .collect();
            StateMachine::<TypeConfig, _>::apply_blocking(&reference, entries).unwrap();
            *reference_applied = upto;
        };
        catch_up(&mut reference_applied, applied);
        assert_same_state(
            &backend,
            &reference,
            &format!("round {round}, applied {applied}"),
        );
        // Recovery, as openraft runs it at start: apply the log after `applied`.
        if applied < last {
            behind += 1;
        }
        let pending = log.read_entries(applied + 1, last + 1).expect("log");
        StateMachine::<TypeConfig, _>::apply_blocking(&*backend, pending).expect("re-apply");
        catch_up(&mut reference_applied, last);
        assert_same_state(
            &backend,
            &reference,
            &format!("round {round}, re-applied to {last}"),
        );
        println!("round {round}: acked {acked}, durable state at {applied}, log {last}");
        // A clean close writes the re-applied state (nothing is lost on a clean stop).
        drop(log);
        drop(backend);
        previous = last;
    }
    // The crash left the state behind its log in some round, so recovery was exercised.
    assert!(
        behind > 0,
        "the state was never behind the log: nothing was re-applied"
    );
}

/// A byte damaged in the middle of a stopped node's write-ahead log (bit rot, a bad sector)
/// never makes the store open quietly without what it had acknowledged: either the open fails
/// with a corruption error, or everything acknowledged is there.
#[test]
fn a_damaged_wal_record_is_refused_not_silently_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut child = spawn_child("crash", &data, Some(7));
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = 0u64;
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(i) = line.strip_prefix("ACK ") {
            acked = i.parse().unwrap_or(0);
            if acked >= 40 {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(acked >= 40, "the child made no progress");
    // The largest WAL file holds acknowledged log entries (the state has no WAL).
    let wal = std::fs::read_dir(data.join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a WAL file");
    let mut bytes = std::fs::read(&wal).unwrap();
    assert!(bytes.len() > 4096, "{} bytes of WAL", bytes.len());
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x5a;
    std::fs::write(&wal, &bytes).unwrap();
    match RocksBackend::open(&data) {
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("Corruption"),
                "refused, but not as corruption: {text}"
            );
            assert!(e.is_corruption(), "{text}");
            println!("refused: {text}");
        }
        Ok(backend) => {
            let log: LogStore<TypeConfig, _> = LogStore::new(Arc::new(backend));
            let last = last_index(&log);
            assert!(
                last >= acked,
                "the store opened without acknowledged entries: log ends at {last} < acknowledged {acked}"
            );
            println!("opened with everything acknowledged: log ends at {last} >= {acked}");
        }
    }
}
