//! When this node last heard from a leader, kept on the node: the peer routes record it
//! ([`LeaderContact::heard`]) and pre-vote (`raft::prevote`) reads it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// When this node last heard from a leader (an append or snapshot chunk it accepted), and
/// whether its elections are enabled.
#[derive(Default)]
pub struct LeaderContact {
    last: Mutex<Option<Instant>>,
    /// When openraft last reported its metrics (its core reports after every pass of its loop,
    /// at least every tick while it runs): a leader's quorum acknowledgement age is as of then.
    reported: Mutex<Option<Instant>>,
    /// The highest commit index a leader's append named (readiness measures a follower's apply
    /// lag against it: the follower's own committed index only rises as entries arrive).
    leader_committed: AtomicU64,
    held_back: AtomicBool,
    /// When a refused pre-vote from a new data directory was last logged (rounds run every
    /// tick; the log line at most every [`WARN_EVERY`]).
    warned: Mutex<Option<Instant>>,
}

/// How often a pre-vote refused for a new data directory is logged.
const WARN_EVERY: Duration = Duration::from_secs(5);

impl LeaderContact {
    /// Record that a leader's append or snapshot chunk was accepted now.
    pub fn heard(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Whether to log a refused pre-vote now (at most once every [`WARN_EVERY`]).
    pub fn time_to_warn(&self) -> bool {
        let mut w = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return false;
        }
        *w = Some(Instant::now());
        true
    }

    /// Record whether this node's elections are held back (its last pre-vote round failed);
    /// the previous value.
    pub fn hold_back(&self, held: bool) -> bool {
        self.held_back.swap(held, Ordering::Relaxed)
    }

    /// Record the commit index a leader's append named.
    pub fn leader_committed(&self, index: u64) {
        self.leader_committed.fetch_max(index, Ordering::Relaxed);
    }

    /// The highest commit index a leader's append named (0 before any).
    pub fn leader_commit(&self) -> u64 {
        self.leader_committed.load(Ordering::Relaxed)
    }

    /// Record that openraft reported its metrics now.
    pub fn reported(&self) {
        *self.reported.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// How long ago openraft last reported its metrics (zero before the first report is seen):
    /// a core stuck in a storage call reports nothing, and its last figures grow stale.
    pub fn since_report(&self) -> Duration {
        self.reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// Whether a leader was heard from within `within`.
    pub fn recent(&self, within: Duration) -> bool {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_is_recent_only_after_it_was_heard() {
        let c = LeaderContact::default();
        assert!(!c.recent(Duration::from_secs(3600)));
        c.heard();
        assert!(c.recent(Duration::from_secs(3600)));
        assert!(!c.recent(Duration::ZERO));
    }
}
