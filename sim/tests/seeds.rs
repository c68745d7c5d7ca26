//! The CI seed set: seeds 1..=100 (every fourth one a 5-node cluster, every fourth one changing
//! its membership 3 -> 5 -> 3, every third snapshotting every 40 entries), each with the full
//! fault schedule and every checker; seeds 1..=8 again with TLS 1.3 and mutual TLS on every
//! connection (TLS roughly doubles a debug run's wall time, so the whole set does not use it);
//! a replay check for each; and the two planted bugs, each of which its checker must catch.
//! Split into tests so the two cores share the work.
//!
//! Every run is a fresh process of the `sim` binary, exactly as its replay command runs it: a
//! run's trace depends on tokio's process-wide task ids (see docs/TESTING.md), so a run that
//! shares its process with earlier or concurrent runs need not replay.

use sim::{Bug, Scenario};
use std::process::Command;
use std::time::Duration;

/// Seeds that once found a bug, kept forever (docs/TESTING.md, "The long run"): 171, a leader
/// restored at start-up after every member lost power served a linearizable read from a
/// committed index behind an acknowledged transfer (fixed: `http::consistency`'s read floor);
/// 1452, two leaders in one term — openraft's (term, node id) leader ids, not a bug: the checker
/// that called it one was wrong and is gone; 3392, a disk that failed again as its node restarted
/// — the node rightly refused to start (safe mode `io_error`) and the harness called the refusal
/// a simulation error (fixed in the harness: the node stays down until the disk is replaced);
/// 5933, a voter that missed a membership change stood for election in its old configuration
/// forever and deposed every leader the new one elected, so it never caught up (fixed: pre-vote,
/// `node::raft::prevote`); 8429, the same with a voter isolated through the change; 2917, a
/// leader that purged entries while its replication stream was about to send them sent what
/// was left after a `prev_log_id` it no longer followed, and the follower refused the gap (safe
/// mode `log_gap`; fixed: `raft_store::LogStore`'s bounded read returns nothing then).
const REGRESSION_SEEDS: &[u64] = &[171, 1452, 2917, 3392, 5933, 8429];

/// Run `s` in a fresh `sim` process: its report if it passed, the failure (with its replay
/// command) if a checker failed. Anything else — a panic, a crash — fails the test.
fn run(s: &Scenario) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(s.args())
        .output()
        .unwrap_or_else(|e| panic!("seed {}: cannot run sim: {e}", s.seed));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) => Ok(stdout),
        Some(1) if stdout.contains(" failed: ") => Err(stdout),
        _ => panic!(
            "seed {}: sim exited with {}:\n{stdout}{}",
            s.seed,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn run_seeds(seeds: impl IntoIterator<Item = u64>, tls: bool) {
    let mut failures = Vec::new();
    for seed in seeds {
        let mut s = Scenario::for_seed(seed);
        s.tls = tls;
        match run(&s) {
            // A passing membership run went 3 -> 5 -> 3 and shut the removed nodes down.
            Ok(report) if s.membership && !report.contains("removed from the cluster") => {
                failures.push(format!("seed {seed}: no node was removed:\n{report}"))
            }
            Ok(_) => {}
            Err(f) => failures.push(f),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Run `s` twice: the whole report (counts, faults, final root, trace fingerprint) is the same.
fn replays_exactly(s: &Scenario) {
    let a = run(s).expect("the seed passes");
    let b = run(s).expect("the seed passes again");
    assert_eq!(a, b);
    assert!(a.contains("fingerprint: \""), "{a}");
    assert!(!a.contains("acked: 0,") && !a.contains("faults: []"), "{a}");
}

#[test]
fn seeds_1_to_25() {
    run_seeds((1..=25).chain(REGRESSION_SEEDS.iter().copied()), false);
}

#[test]
fn seeds_26_to_50() {
    run_seeds(26..=50, false);
}

#[test]
fn seeds_51_to_75() {
    run_seeds(51..=75, false);
}

#[test]
fn seeds_76_to_100() {
    run_seeds(76..=100, false);
}

#[test]
fn tls_seeds_1_to_8() {
    run_seeds(1..=8, true);
}

#[test]
fn a_seed_replays_exactly() {
    replays_exactly(&Scenario::for_seed(11));
}

/// TLS draws its randomness (and the run's certificate keys) from the operating system, not the
/// seed; the trace replays all the same (docs/TESTING.md says why) — on seed 2 (20 of 20 runs),
/// not on every seed: TLS seed 1 runs one of two traces, cause not found (docs/TESTING.md).
#[test]
fn a_tls_seed_replays_exactly() {
    let mut s = Scenario::for_seed(2);
    s.tls = true;
    replays_exactly(&s);
}

/// Runs `bug` on `seeds` with `traffic` of simulated traffic and returns the failure reports of
/// the runs that caught it.
fn planted(bug: Bug, seeds: std::ops::RangeInclusive<u64>, traffic: Duration) -> Vec<String> {
    seeds
        .filter_map(|seed| {
            let mut s = Scenario::for_seed(seed);
            s.bug = Some(bug);
            s.traffic = traffic;
            run(&s).err()
        })
        .collect()
}

/// Acknowledged appends lost in a crash: the run names the loss on at least five of seeds
/// 1..=8, and every seed but one fails. Named means an acknowledged-writes checker names the lost
/// (or changed) acknowledged transfer — on a node's state, or through a linearizable read that no
/// longer finds it — or a node refuses to start with safe mode `log_gap`: its log lost committed
/// entries that its state, rolled back to its last flush, must apply again (which never happens
/// without the bug: seeds 1..=100 pass). The others are caught by the per-index root checker (a
/// node kept an entry the rest lost and replaced) or the cluster-time checker. The appends are
/// lost only when a majority loses power within the write-back interval of acknowledging them,
/// so these runs get 60 s of traffic (more crashes) instead of the standard 12 s. Measured
/// (docs/TESTING.md): seeds 1..=8 caught 7, named 6 (2 by the checkers, 4 at start-up).
#[test]
fn acknowledging_before_the_log_is_synced_is_caught() {
    let caught = planted(Bug::AckBeforeSync, 1..=8, Duration::from_secs(60));
    let named: Vec<&String> = caught
        .iter()
        .filter(|f| {
            f.contains(" failed: acknowledged writes: ")
                || (f.contains(" failed: stale read: ") && f.contains(" was acknowledged, then"))
                || f.contains("storage fault at start-up, safe mode log_gap")
        })
        .collect();
    assert!(
        named.len() >= 5 && caught.len() >= 7,
        "the planted bug was caught on {} of 8 seeds, named on {}:\n{}",
        caught.len(),
        named.len(),
        caught.join("\n")
    );
}

/// An entry applied twice after a snapshot install: the double-apply checker catches it on
/// most seeds.
#[test]
fn applying_an_entry_twice_after_a_snapshot_install_is_caught() {
    let caught = planted(
        Bug::DoubleApplyAfterInstall,
        1..=4,
        Scenario::for_seed(1).traffic,
    );
    let named: Vec<&String> = caught
        .iter()
        .filter(|f| f.contains(" failed: double apply: "))
        .collect();
    assert!(
        named.len() >= 3,
        "the double-apply checker caught the planted bug on {} of 4 seeds:\n{}",
        named.len(),
        caught.join("\n")
    );
}

/// A leader whose state is changed behind Raft's back (an extra event) is caught while the
/// cluster runs: it, and no other node, enters safe mode with `root_mismatch`; the others elect
/// a new leader, keep acknowledging writes and converge with every checker passing. One 3-node
/// and one 5-node seed, without random faults (so the corruption is the only fault).
#[test]
fn a_corrupted_leader_stops_itself_and_the_others_carry_on() {
    let mut failures = Vec::new();
    for seed in [2, 3] {
        let mut s = Scenario::for_seed(seed);
        s.faults = false;
        s.corrupt_leader = true;
        match run(&s) {
            Ok(report) => assert!(
                report.contains("corrupted the state of node"),
                "seed {seed}: {report}"
            ),
            Err(f) => failures.push(f),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
