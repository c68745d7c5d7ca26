//! Storage faults on real `ron-ledger` processes: a disk that fills (a size-limited tmpfs the
//! test mounts), an fsync that fails (the `faulty_disk` example: the node's own code on RocksDB
//! with a failing sync at the storage seam), and bytes flipped in a stopped node's RocksDB
//! tables (a ledger record and a log record). In each, nothing acknowledged is lost, the faulty
//! node enters safe mode with the fault's reason (or refuses to start, naming it) and never
//! serves the damaged value, the other two keep committing, and `/metrics` shows the fault.
//!
//! Every wait polls observable state with a deadline. The tests run one at a time.

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use test_support::cluster::{example_binary, ronctl_binary, Cluster, SERIAL};
use test_support::events::transfer_json;
use test_support::wait::{poll, wait_for};

/// Send transfers `next+1 ..= next+200` (1 unit from account 1 to 2) until acknowledged by one
/// of `nodes`; advance `next`.
async fn batch(c: &Cluster, next: &mut u128, nodes: &[u64]) {
    let first = *next + 1;
    *next += 200;
    let body = Value::Array(
        (first..=*next)
            .map(|id| transfer_json(id, 1, 2, 1))
            .collect(),
    );
    c.write_until_acked("/v1/transfers", &body, nodes, Duration::from_secs(30))
        .await;
}

/// Node `id`'s `/metrics` text.
async fn metrics(c: &Cluster, id: u64) -> String {
    c.http
        .get(c.url(id, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of a metric line (`name{labels}` exactly as exposed), or 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Wait until node `id` reports safe mode with `reason`; how long that took from `since`.
async fn safe_mode_entered(c: &Cluster, id: u64, reason: &str, since: Instant) -> Duration {
    wait_for(
        &format!("node {id} enters safe mode {reason}"),
        Duration::from_secs(30),
        || async {
            c.status(id)
                .await
                .is_some_and(|s| s["safe_mode_reason"] == reason)
        },
    )
    .await;
    since.elapsed()
}

/// A tmpfs mounted on a node's data directory for one test; unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, mib: u64) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("run mount (the tests run as root)");
        assert!(
            status.success(),
            "mount a {mib} MiB tmpfs on {}",
            dir.display()
        );
        Self(dir.to_path_buf())
    }

    /// Fill it with 1 MiB files until it is full, then free `leave` of them.
    fn fill(&self, leave: usize) -> Vec<std::path::PathBuf> {
        use std::io::Write;
        let mut files = Vec::new();
        for i in 0.. {
            let path = self.0.join(format!("filler-{i}"));
            let mut f = std::fs::File::create(&path).unwrap();
            let full = f.write_all(&vec![0u8; 1 << 20]).is_err();
            files.push(path);
            if full {
                break;
            }
        }
        for path in files.drain(files.len().saturating_sub(leave + 1)..) {
            std::fs::remove_file(path).unwrap();
        }
        files
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A node whose data directory fills up under load (a real, size-limited filesystem) enters
/// safe mode `disk_full`; the other two keep committing; nothing acknowledged is lost; once
/// space is freed and safe mode cleared, the restarted node catches up to the same root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fills_enters_disk_full_and_catches_up_after() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    let disk = SmallDisk::mount(&c.dir.path().join("node-3"), 64);
    c.start_three_with_accounts(3).await;
    c.converged(&[1, 2, 3]).await;
    // About 1 MiB left: the state's writes stay in memtables (no WAL) until a flush, so what
    // fills the disk is mostly the log's WAL, a few dozen bytes per transfer.
    let filler = disk.fill(0);
    let started = std::time::Instant::now();
    let mut acked = 0u128;
    let mut next = 10_000u128;
    let mut detected = None;
    for _ in 0..1_500 {
        batch(&c, &mut next, &[1, 2]).await;
        acked += 200;
        if let Some(s) = c.status(3).await {
            if s["safe_mode_reason"] == "disk_full" {
                detected = Some(started.elapsed());
                break;
            }
        }
    }
    let detected = detected.expect("node 3 enters safe mode disk_full as its disk fills");
    // Recorded on the full disk too (in the space kept aside for it), and nothing half-written.
    let data = c.dir.path().join("node-3");
    let marker = std::fs::read_to_string(data.join("safe-mode.json")).expect("safe-mode.json");
    assert!(marker.contains("disk_full"), "{marker}");
    assert!(!data.join("safe-mode.json.tmp").exists());
    // The other two keep committing meanwhile.
    for _ in 0..5 {
        batch(&c, &mut next, &[1, 2]).await;
        acked += 200;
    }
    let scraped = metrics(&c, 3).await;
    assert_eq!(
        metric(&scraped, "safe_mode{reason=\"disk_full\"}"),
        1.0,
        "{scraped}"
    );
    assert!(metric(&scraped, "wal_fsync_fail_total") >= 1.0, "{scraped}");

    // Space is freed; the operator clears safe mode and restarts the node: it catches up.
    for f in filler {
        std::fs::remove_file(f).unwrap();
    }
    let (code, v) = c
        .post(3, "/v1/admin/safe-mode/clear", json!({}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{v}");
    let caught_up = restart_and_catch_up(&mut c, 3, acked).await;
    eprintln!(
        "disk full: detected after {detected:?} of load, {acked} transfers acknowledged, caught up {caught_up:?} after the restart"
    );
    for id in 1..=3 {
        c.kill(id);
    }
    drop(disk);
}

/// Restart node `id` on `ron-ledger` and wait until all three converge with `acked` transfers
/// out of account 1 on each (every acknowledged transfer applied once); how long it took.
async fn restart_and_catch_up(c: &mut Cluster, id: u64, acked: u128) -> Duration {
    c.kill(id);
    let restarted = Instant::now();
    c.start(id);
    c.converged(&[1, 2, 3]).await;
    let caught_up = restarted.elapsed();
    for node in 1..=3 {
        let b = c.balances(node, 3).await;
        assert_eq!(
            b[&1].0, acked,
            "node {node}: every acknowledged transfer applied once"
        );
    }
    caught_up
}

/// `ronctl --seeds ADDR ARGS…` against cluster `c`: exit code and stderr.
fn ronctl(c: &Cluster, seeds: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(ronctl_binary())
        .envs(c.ronctl_env())
        .args(["--seeds", seeds])
        .args(args)
        .output()
        .expect("run ronctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The leader's fsync starts failing under load (every node runs the `faulty_disk` build, each
/// with its own trigger file): the leader enters safe mode `fsync_failed` — recorded, counted,
/// writes refused naming it, stale reads still served — the other two elect a leader and keep
/// committing, and nothing acknowledged is lost. Once the cause is gone the operator clears
/// safe mode with `ronctl`, and the node, restarted on the real `ron-ledger`, catches up to the
/// same root with every acknowledged transfer applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_fsync_fails_enters_fsync_failed_and_the_others_carry_on() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    let program = example_binary("faulty_disk");
    let triggers: Vec<_> = (1..=3)
        .map(|id| c.dir.path().join(format!("node-{id}.fail-sync")))
        .collect();
    for id in 1..=3u64 {
        let trigger = triggers[id as usize - 1].clone();
        c.start_program(id, &program, &[("RON_FAULT_SYNC_FAILS", &trigger)]);
    }
    c.init(&[1, 2, 3]).await;
    c.write_until_acked(
        "/v1/accounts",
        &test_support::events::accounts_json(1..=3),
        &[1, 2, 3],
        Duration::from_secs(20),
    )
    .await;
    let (mut next, mut acked) = (10_000u128, 0u128);
    for _ in 0..3 {
        batch(&c, &mut next, &[1, 2, 3]).await;
        acked += 200;
    }
    let leader = c.leader(&[1, 2, 3]).await;
    let rest: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let trigger = &triggers[leader as usize - 1];
    std::fs::write(trigger, b"").unwrap();
    let failed = Instant::now();
    // The next write the leader syncs fails; clients retry on the others until a new leader
    // commits it.
    batch(&c, &mut next, &rest).await;
    acked += 200;
    let detected = safe_mode_entered(&c, leader, "fsync_failed", failed).await;
    let elected = c.leader(&rest).await;
    assert!(rest.contains(&elected), "a healthy node leads: {elected}");
    let meanwhile = Instant::now();
    for _ in 0..5 {
        batch(&c, &mut next, &rest).await;
        acked += 200;
    }
    let meanwhile = meanwhile.elapsed();

    let scraped = metrics(&c, leader).await;
    assert_eq!(
        metric(&scraped, "safe_mode{reason=\"fsync_failed\"}"),
        1.0,
        "{scraped}"
    );
    assert!(metric(&scraped, "wal_fsync_fail_total") >= 1.0, "{scraped}");
    let (code, v) = c
        .post(leader, "/v1/transfers", json!([transfer_json(1, 1, 2, 1)]))
        .await
        .unwrap();
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (503, Some("safe_mode")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fsync_failed"),
        "{v}"
    );
    let (code, v) = c.get(leader, "/readyz").await.unwrap();
    assert_eq!(
        (code, &v["safe_mode_reason"]),
        (503, &json!("fsync_failed")),
        "{v}"
    );
    let (code, _) = c
        .get(leader, "/v1/accounts/1?consistency=stale")
        .await
        .unwrap();
    assert_eq!(code, 200, "stale reads are served in safe mode");
    let marker: Value = serde_json::from_slice(
        &std::fs::read(c.dir.path().join(format!("node-{leader}/safe-mode.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(marker["reason"], "fsync_failed");

    // The disk is fixed; the operator clears safe mode and restarts the node on the real binary.
    std::fs::remove_file(trigger).unwrap();
    let addr = c.node(leader).api.clone();
    let (code, stderr) = ronctl(&c, &addr, &["cluster", "clear-safe-mode", &addr]);
    assert_eq!(code, 0, "{stderr}");
    let caught_up = restart_and_catch_up(&mut c, leader, acked).await;
    eprintln!(
        "fsync failure: detected {detected:?} after the fault, the others committed 1000 transfers in {meanwhile:?} meanwhile, caught up {caught_up:?} after the restart ({acked} acknowledged)"
    );
}

/// Which record of a column family to damage.
#[derive(Clone, Copy)]
enum Pick {
    First,
    Last,
}

/// Damage one record of `cf` in the stopped node's RocksDB under `data`: flush the column
/// family to a table file, find the record's value bytes in it, and flip one of them (RocksDB's
/// block checksum and the record's own seal both cover it). Returns the table file.
fn flip_a_stored_byte(data: &Path, cf: &str, pick: Pick) -> std::path::PathBuf {
    let db_dir = data.join("db");
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &db_dir).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &db_dir, &names).unwrap();
    let handle = db.cf_handle(cf).expect("column family");
    db.flush_cf(handle).unwrap();
    let mode = match pick {
        Pick::First => rocksdb::IteratorMode::Start,
        Pick::Last => rocksdb::IteratorMode::End,
    };
    let (_, value) = db
        .iterator_cf(handle, mode)
        .next()
        .expect("a record")
        .unwrap();
    let tables: Vec<_> = db
        .live_files()
        .unwrap()
        .into_iter()
        .filter(|f| f.column_family_name == cf)
        .map(|f| db_dir.join(f.name.trim_start_matches('/')))
        .collect();
    drop(db);
    let window = &value[value.len() / 2..(value.len() / 2 + 32).min(value.len())];
    for table in tables {
        let mut bytes = std::fs::read(&table).unwrap();
        if let Some(at) = bytes.windows(window.len()).position(|w| w == window) {
            bytes[at + window.len() / 2] ^= 0x5a;
            std::fs::write(&table, bytes).unwrap();
            return table;
        }
    }
    panic!("the {cf} record is in no table file of its column family");
}

/// Start node 3 and wait until it answers; when it was started.
async fn start_node_3_serving(c: &mut Cluster) -> Instant {
    let started = Instant::now();
    c.start(3);
    wait_for("node 3 serves", Duration::from_secs(30), || async {
        c.status(3).await.is_some()
    })
    .await;
    started
}

/// Clearing node `id`'s safe mode is refused: its store does not read back clean.
async fn clear_is_refused(c: &Cluster, id: u64) {
    c.post_refused(
        id,
        "/v1/admin/safe-mode/clear",
        json!({}),
        409,
        "safe_mode_check_failed",
    )
    .await;
}

/// Start a cluster of three with accounts 1..=3 and 600 transfers, all applied everywhere; stop
/// node 3 cleanly (SIGTERM: its state is on disk, not only in its log) and return the
/// acknowledged transfer count.
async fn three_then_stop_node_3(c: &mut Cluster, next: &mut u128) -> u128 {
    c.start_three_with_accounts(3).await;
    for _ in 0..3 {
        batch(c, next, &[1, 2, 3]).await;
    }
    c.converged(&[1, 2, 3]).await;
    assert_eq!(c.stop(3), 0, "a clean stop exits 0");
    600
}

/// A ledger record damaged on disk (an account's table block): the node starts, and the first
/// read of the damaged record answers 503 `safe_mode` — never the damaged value — and puts the
/// node in safe mode `checksum_mismatch`; clearing is refused while the store does not read
/// back clean. The other two keep committing, and their state is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_ledger_record_puts_the_node_in_checksum_mismatch_not_served() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    let mut next = 10_000u128;
    let mut acked = three_then_stop_node_3(&mut c, &mut next).await;
    flip_a_stored_byte(&c.dir.path().join("node-3"), "accounts", Pick::First);

    let started = start_node_3_serving(&mut c).await;
    let (code, v) = c.get(3, "/v1/accounts/1?consistency=stale").await.unwrap();
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (503, Some("safe_mode")),
        "{v}"
    );
    let detected = safe_mode_entered(&c, 3, "checksum_mismatch", started).await;
    let scraped = metrics(&c, 3).await;
    assert_eq!(
        metric(&scraped, "safe_mode{reason=\"checksum_mismatch\"}"),
        1.0,
        "{scraped}"
    );
    let (code, v) = c.get(3, "/readyz").await.unwrap();
    assert_eq!(
        (code, &v["safe_mode_reason"]),
        (503, &json!("checksum_mismatch")),
        "{v}"
    );
    clear_is_refused(&c, 3).await;

    let meanwhile = Instant::now();
    for _ in 0..5 {
        batch(&c, &mut next, &[1, 2]).await;
        acked += 200;
    }
    let meanwhile = meanwhile.elapsed();
    let (_, root) = c.converged(&[1, 2]).await;
    for id in 1..=2 {
        let b = c.balances(id, 3).await;
        assert_eq!(b[&1].0, acked, "node {id}");
    }
    eprintln!(
        "damaged ledger record: safe mode {detected:?} after the start; the others committed 1000 transfers in {meanwhile:?}, root {root}"
    );
}

/// A Merkle leaf damaged on disk (the first leaves' table block): a proof read meets it and puts
/// the node in safe mode `checksum_mismatch`, and clearing is refused — the re-check reads
/// every leaf back, which the state digest alone does not cover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_merkle_leaf_keeps_the_node_in_safe_mode_until_it_reads_back() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    let mut next = 10_000u128;
    three_then_stop_node_3(&mut c, &mut next).await;
    flip_a_stored_byte(&c.dir.path().join("node-3"), "leaves", Pick::First);
    let started = start_node_3_serving(&mut c).await;
    let size = c.status(3).await.unwrap()["tree_size"].clone();
    let size = size
        .as_str()
        .map_or_else(|| size.to_string(), str::to_string);
    let (code, v) = c
        .get(3, &format!("/v1/proofs/inclusion?leaf=1&tree_size={size}"))
        .await
        .unwrap();
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (503, Some("safe_mode")),
        "{v}"
    );
    safe_mode_entered(&c, 3, "checksum_mismatch", started).await;
    clear_is_refused(&c, 3).await;
}

/// A log record damaged on disk (the last entry's table block): the node refuses to start —
/// it exits, naming `checksum_mismatch` and the runbook, and records the reason in
/// `safe-mode.json` — instead of running on a log it cannot read. The other two keep committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_record_stops_the_node_at_start_naming_checksum_mismatch() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3, "");
    let mut next = 10_000u128;
    let mut acked = three_then_stop_node_3(&mut c, &mut next).await;
    let data = c.dir.path().join("node-3");
    flip_a_stored_byte(&data, "log", Pick::Last);

    let started = Instant::now();
    c.start(3);
    let code = poll(Duration::from_secs(30), Duration::from_millis(50), || {
        let exited = c.try_exit(3);
        async move { exited.ok_or("node 3 keeps running on a damaged log") }
    })
    .await;
    let detected = started.elapsed();
    assert_ne!(code, 0);
    let log = std::fs::read_to_string(&c.node(3).log).unwrap();
    assert!(log.contains("checksum_mismatch"), "{log}");
    let marker: Value =
        serde_json::from_slice(&std::fs::read(data.join("safe-mode.json")).unwrap()).unwrap();
    assert_eq!(marker["reason"], "checksum_mismatch");

    for _ in 0..5 {
        batch(&c, &mut next, &[1, 2]).await;
        acked += 200;
    }
    c.converged(&[1, 2]).await;
    for id in 1..=2 {
        let b = c.balances(id, 3).await;
        assert_eq!(b[&1].0, acked, "node {id}");
    }
    eprintln!("damaged log record: start-up refused after {detected:?}");
}
