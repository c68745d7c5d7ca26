//! ron-ledger's deterministic core: the double-entry ledger state machine, the Merkle
//! accumulator, the wire types and their codecs, and the verifiable layer on top of the tree:
//! leaf preimages ([`canonical`]), inclusion and consistency proofs ([`proof`]), signed
//! checkpoints ([`checkpoint`]) and export bundles ([`export`]), specified in `docs/PROOFS.md`.
//! Capabilities ([`capability`], `docs/CAPABILITIES.md`) are the bearer tokens the node checks
//! before a write or an admin call.
//!
//! This crate has no I/O, no async, no clock and no randomness. [`apply`] takes a sequenced
//! [`Batch`] and a [`StateRead`] and returns per-event results and the [`Changes`] to commit, so
//! every node — and every backend, memory or RocksDB — reaches the same balances and the same
//! Merkle root at the same index.
//!
//! ```
//! use ledger::{apply, Account, Batch, MemoryState, Operation, Transfer};
//!
//! let mut state = MemoryState::new();
//! let accounts = vec![
//!     Account { id: 1, ledger: 700, code: 10, ..Default::default() },
//!     Account { id: 2, ledger: 700, code: 10, ..Default::default() },
//! ];
//! let transfer = Transfer { id: 9, debit_account_id: 1, credit_account_id: 2, amount: 50,
//!                           ledger: 700, code: 1, ..Default::default() };
//! let batch = Batch { timestamp: 1, operations: vec![
//!     Operation::CreateAccounts(accounts),
//!     Operation::CreateTransfers(vec![transfer]),
//! ]};
//! let (outcome, changes) = apply(&state, &batch).unwrap();
//! state.commit(changes);
//! assert_eq!(outcome.tree_size, 3);
//! ```

pub mod apply;
pub mod batch;
pub mod canonical;
pub mod capability;
pub mod checkpoint;
pub mod codec;
pub mod conservation;
pub mod digest;
pub mod export;
pub mod limits;
pub mod merkle;
mod overlay;
pub mod proof;
pub mod query;
pub mod results;
pub mod state;
mod timelines;
pub mod types;
pub mod validate;
pub mod wire;

pub use apply::apply;
pub use batch::{Batch, BatchError, Operation, Outcome, Reply};
pub use canonical::{decode_leaf, LeafData, LeafDecodeError, LeafEvent};
pub use checkpoint::{CheckpointSigner, SignedCheckpoint, TrustedKeys};
pub use codec::{CodecError, Kind};
pub use export::{verify_bundle, BundleReport, ExportBundle};
pub use merkle::{Frontier, Hash};
pub use proof::{ConsistencyProof, InclusionProof, ProofError, TreeSource};
pub use query::{BalanceEntry, Filter, IndexField, IndexKey, IndexRead, Order, Side, Target};
pub use results::{CreateAccountResult, CreateTransferResult, EventResult};
pub use state::{Changes, MemoryState, ReadError, StateRead};
pub use types::{
    Account, AccountFlags, AccountRecord, ExpiryKey, HistoryKey, LedgerMeta, Transfer,
    TransferFlags, TransferRead, TransferRecord, TransferState, TransferStatus,
};
