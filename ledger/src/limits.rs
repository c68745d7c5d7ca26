//! Named bounds for everything the ledger core accepts. Each limit is part of the wire contract:
//! changing one is a protocol change and must be documented in `docs/API.md`.

/// Most events (accounts or transfers) one request may carry.
pub const BATCH_EVENTS_MAX: usize = 8_190;

/// Most client requests the sequencer may coalesce into one log entry (group commit).
pub const BATCH_REQUESTS_MAX: usize = 1_024;

/// Most events one log entry may carry across all of its requests.
pub const ENTRY_EVENTS_MAX: usize = 4 * BATCH_EVENTS_MAX;

/// Most pending transfers expired at the start of one log entry; the rest wait for the next.
pub const EXPIRIES_PER_ENTRY_MAX: usize = BATCH_EVENTS_MAX;

/// Largest binary-encoded log payload the decoder accepts (bytes). A full batch of transfers
/// encodes to well under 2 MiB; four full batches plus framing fit in this bound.
pub const ENCODED_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// An id may be neither 0 nor `u128::MAX`: both are reserved as sentinels.
pub const ID_RESERVED_ZERO: u128 = 0;
/// See [`ID_RESERVED_ZERO`].
pub const ID_RESERVED_MAX: u128 = u128::MAX;

/// Nanoseconds per second: pending `timeout` is given in seconds, cluster time is nanoseconds.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Whether `id` may name an account or transfer.
pub const fn id_is_valid(id: u128) -> bool {
    id != ID_RESERVED_ZERO && id != ID_RESERVED_MAX
}
