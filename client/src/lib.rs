//! The ron-ledger Rust SDK.
//!
//! - **Leader discovery**: configured with seed addresses; learns the members and the leader from
//!   `/v1/status` (a dead seed is skipped) and from the `leader` named in every response, caches
//!   the leader, sends writes straight to it, and re-discovers after a failover or a membership
//!   change.
//! - **Safe retries**: connection errors, timeouts, 503 (no leader), 429 (honouring
//!   `Retry-After`) and 504 are retried with capped exponential backoff and jitter, bounded in
//!   attempts and total time, always re-sending the same events (same ids), so a retry can never
//!   apply twice. An `exists` answer for an event this call had already sent is reported as
//!   `ok`, the event's original success. Any other 4xx is never retried: it is
//!   [`Error::Rejected`] with the server's reason code.
//! - **Auto-batching**: [`Client::submit_transfer`] coalesces concurrent callers' transfers into
//!   batches of up to 8,190 through a bounded queue; each caller gets its own result.
//! - Writes use the compact binary body; the types are the `ledger` crate's.
//! - **Verification** ([`verify`]): with trusted checkpoint keys configured, the client checks
//!   signed checkpoints, their consistency with the last one it accepted, and inclusion proofs
//!   of accounts, transfers and leaves ([`Client::verified_transfer`] and friends).
//! - **Events** ([`events`]): [`Client::events`] consumes every committed event in commit order
//!   from a position, each batch proven against a signed checkpoint before it is delivered.
//! - **Queries**: accounts and transfers by their fields ([`Client::query_accounts`],
//!   [`Client::query_transfers`]), and balances as of a point for accounts that keep history.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ron_ledger_client::Error> {
//! use ron_ledger_client::{Client, ClientConfig};
//! use ledger::Transfer;
//! let client = Client::new(ClientConfig::new(["127.0.0.1:7001", "127.0.0.1:7002"]))?;
//! let t = Transfer { id: 7, debit_account_id: 1, credit_account_id: 2, amount: 10,
//!                    ledger: 1, code: 1, ..Default::default() };
//! let result = client.create_transfers(vec![t]).await?;
//! println!("{:?}", result[0].result);
//! # Ok(()) }
//! ```
//!
//! The source is laid out by job: `config` (settings), `error` (typed errors), `shared` (the
//! state clones of a client share), `retry` (one attempt and the retry loop), `discovery` (seeds,
//! members, the leader), `client` (the handle and its construction), `writes`/`outcome` (the
//! write path and its results), `batcher` (auto-batching), `reads` (plain reads), `cluster`
//! (status and admin operations), `checkpoints` (unverified proof endpoints), `verify` (the
//! checks) and `verified` (the client's verified reads), `caps` (capability tokens), `transport`
//! (moving one HTTP request).

pub mod backup;
mod batcher;
pub mod caps;
pub mod checkpoints;
mod client;
mod cluster;
mod config;
mod discovery;
mod error;
pub mod events;
mod outcome;
mod reads;
pub mod retry;
mod shared;
pub mod transport;
pub mod trust_store;
mod verified;
pub mod verify;
mod writes;

pub use caps::Capability;
pub use client::Client;
pub use cluster::InitMember;
pub use config::ClientConfig;
pub use discovery::{Member, Status};
pub use error::Error;
pub use events::{EventConsumer, StreamEvent};
pub use outcome::{EventOutcome, ExistsIsOk};
pub use reads::{AsOf, BalanceAt, Consistency, HistoryPage, Page, QueryFilter, TransferSide};
pub use transport::{install_crypto_provider, ClientTls};
pub use verify::{Verified, VerifyError};
