//! Hooks for the node's metrics: raft-store reports what it does (snapshot builds and installs,
//! with their durations) to an observer the node installs once per process; without one,
//! nothing is reported.

use std::sync::OnceLock;
use std::time::Duration;

/// What raft-store reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A snapshot was built from the applied state.
    SnapshotBuilt,
    /// A snapshot received from the leader was installed.
    SnapshotInstalled,
}

/// The observer: the event, how long it took, and whether it succeeded.
pub type Observer = fn(Event, Duration, bool);

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Install the process's observer (the first call wins).
pub fn observe_with(observer: Observer) {
    let _ = OBSERVER.set(observer);
}

/// Report `event`.
pub(crate) fn report(event: Event, took: Duration, ok: bool) {
    if let Some(observer) = OBSERVER.get() {
        observer(event, took, ok);
    }
}
