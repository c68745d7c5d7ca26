//! The CI seed set: seeds 1..=100 (every fourth one a 5-node cluster), each with the full fault
//! schedule and every checker; a replay check; and the planted bug, which the set must catch.
//! Split into four tests so the two cores share the work.

use sim::{Bug, Scenario};

/// Seeds that once found a bug, kept forever (none yet: see docs/TESTING.md).
const REGRESSION_SEEDS: &[u64] = &[];

fn run_seeds(seeds: impl IntoIterator<Item = u64>) {
    let mut failures = Vec::new();
    for seed in seeds {
        if let Err(f) = sim::run(&Scenario::for_seed(seed)) {
            failures.push(f.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seeds_1_to_25() {
    run_seeds((1..=25).chain(REGRESSION_SEEDS.iter().copied()));
}

#[test]
fn seeds_26_to_50() {
    run_seeds(26..=50);
}

#[test]
fn seeds_51_to_75() {
    run_seeds(51..=75);
}

#[test]
fn seeds_76_to_100() {
    run_seeds(76..=100);
}

#[test]
fn a_seed_replays_exactly() {
    let s = Scenario::for_seed(11);
    let a = sim::run(&s).expect("seed 11 passes");
    let b = sim::run(&s).expect("seed 11 passes again");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!((a.acked, a.applied, a.root), (b.acked, b.applied, b.root));
    assert_eq!(a.faults, b.faults);
    assert!(a.acked > 0 && !a.faults.is_empty(), "{a:?}");
}

#[test]
fn acknowledging_before_the_log_is_synced_is_caught() {
    let caught: Vec<String> = (1..=4)
        .filter_map(|seed| {
            let mut s = Scenario::for_seed(seed);
            s.bug = Some(Bug::AckBeforeSync);
            sim::run(&s).err().map(|f| f.to_string())
        })
        .collect();
    assert!(
        !caught.is_empty(),
        "the planted bug went unnoticed on seeds 1..=4"
    );
}
