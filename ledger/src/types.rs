//! Accounts and transfers: the ledger's two kinds of record, their flags, and every record the
//! state stores — accounts, transfers, statuses, the expiry and history index keys, and the
//! ledger-wide metadata. Field semantics follow TigerBeetle's; see `docs/LEDGER.md`.

use crate::merkle::{empty_root, Frontier, Hash};
use crate::wire::{self, FlagSet};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! flag_set {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $konst:ident = $bit:expr, $wire:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name(pub u16);

        impl $name {
            $($(#[$fdoc])* pub const $konst: u16 = $bit;)*
            /// Every bit that has a meaning; any other bit is rejected as `reserved_flag`.
            pub const KNOWN: u16 = 0 $(| $bit)*;

            /// Whether `flag` (one of the associated constants) is set.
            pub const fn has(self, flag: u16) -> bool {
                self.0 & flag != 0
            }
        }

        impl FlagSet for $name {
            const NAMES: &'static [(&'static str, u16)] = &[$(($wire, $bit)),*];
            fn bits(self) -> u16 { self.0 }
            fn from_bits(bits: u16) -> Self { Self(bits) }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.serialize_flags(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::deserialize_flags(d)
            }
        }
    };
}

flag_set! {
    /// Account flags.
    AccountFlags {
        /// This event succeeds or fails together with the next one in the request.
        LINKED = 1 << 0, "linked";
        /// Debits (pending + posted) may never exceed posted credits (a customer wallet).
        DEBITS_MUST_NOT_EXCEED_CREDITS = 1 << 1, "debits_must_not_exceed_credits";
        /// Credits (pending + posted) may never exceed posted debits.
        CREDITS_MUST_NOT_EXCEED_DEBITS = 1 << 2, "credits_must_not_exceed_debits";
        /// Keep every balance change (the `query` module answers balances as of a point).
        HISTORY = 1 << 3, "history";
        /// The account takes no new transfers. Set by a closing pending transfer and cleared when
        /// that transfer is voided or expires; accounts may also be created closed.
        CLOSED = 1 << 4, "closed";
    }
}

flag_set! {
    /// Transfer flags.
    TransferFlags {
        /// This event succeeds or fails together with the next one in the request.
        LINKED = 1 << 0, "linked";
        /// Two-phase: reserve the amount (a Hold) until posted, voided or expired.
        PENDING = 1 << 1, "pending";
        /// Post (capture) the pending transfer named by `pending_id`, fully or partially.
        POST_PENDING_TRANSFER = 1 << 2, "post_pending_transfer";
        /// Void (release) the pending transfer named by `pending_id`.
        VOID_PENDING_TRANSFER = 1 << 3, "void_pending_transfer";
        /// Move at most `amount`, limited by what the debit account can give.
        BALANCING_DEBIT = 1 << 4, "balancing_debit";
        /// Move at most `amount`, limited by what the credit account can take.
        BALANCING_CREDIT = 1 << 5, "balancing_credit";
        /// A pending transfer that closes its debit account.
        CLOSING_DEBIT = 1 << 6, "closing_debit";
        /// A pending transfer that closes its credit account.
        CLOSING_CREDIT = 1 << 7, "closing_credit";
        /// Reverse the posted transfer named by `pending_id`, at most once (governance only).
        REVERSAL = 1 << 8, "reversal";
    }
}

/// An account. On creation the balances and `timestamp` must be zero (they may be omitted in
/// JSON); the cluster sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Unique forever; not 0, not `u128::MAX`.
    #[serde(with = "wire::dec")]
    pub id: u128,
    /// Debits reserved by pending transfers.
    #[serde(with = "wire::dec", default)]
    pub debits_pending: u128,
    /// Debits posted.
    #[serde(with = "wire::dec", default)]
    pub debits_posted: u128,
    /// Credits reserved by pending transfers.
    #[serde(with = "wire::dec", default)]
    pub credits_pending: u128,
    /// Credits posted.
    #[serde(with = "wire::dec", default)]
    pub credits_posted: u128,
    /// Opaque to the ledger (e.g. an external reference).
    #[serde(with = "wire::dec", default)]
    pub user_data_128: u128,
    /// Opaque to the ledger.
    #[serde(with = "wire::dec", default)]
    pub user_data_64: u64,
    /// Opaque to the ledger.
    #[serde(default)]
    pub user_data_32: u32,
    /// The ledger (e.g. a currency); transfers only move value within one ledger. Not 0.
    pub ledger: u32,
    /// What kind of account this is, for the user. Not 0.
    pub code: u16,
    /// See [`AccountFlags`].
    #[serde(default)]
    pub flags: AccountFlags,
    /// Cluster time of creation, nanoseconds; set by the cluster.
    #[serde(with = "wire::dec", default)]
    pub timestamp: u64,
}

/// A transfer of `amount` from `debit_account_id` to `credit_account_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Unique forever; not 0, not `u128::MAX`.
    #[serde(with = "wire::dec")]
    pub id: u128,
    /// The account debited. For post/void/reversal, 0 means "as in the referenced transfer".
    #[serde(with = "wire::dec", default)]
    pub debit_account_id: u128,
    /// The account credited. For post/void/reversal, 0 means "as in the referenced transfer".
    #[serde(with = "wire::dec", default)]
    pub credit_account_id: u128,
    /// Amount moved. Must be > 0, except: post/void/reversal (0 = the referenced amount) and
    /// balancing (0 = no upper bound).
    #[serde(with = "wire::dec", default)]
    pub amount: u128,
    /// For post/void: the pending transfer. For a reversal: the transfer reversed. Else 0.
    #[serde(with = "wire::dec", default)]
    pub pending_id: u128,
    /// Opaque to the ledger.
    #[serde(with = "wire::dec", default)]
    pub user_data_128: u128,
    /// Opaque to the ledger.
    #[serde(with = "wire::dec", default)]
    pub user_data_64: u64,
    /// Opaque to the ledger.
    #[serde(default)]
    pub user_data_32: u32,
    /// Pending transfers only: seconds of cluster time after which it expires (0 = never).
    #[serde(default)]
    pub timeout: u32,
    /// Must equal both accounts' ledger. For post/void/reversal, 0 means "as referenced".
    #[serde(default)]
    pub ledger: u32,
    /// What kind of transfer this is, for the user. Not 0 (post/void/reversal: 0 = as referenced).
    #[serde(default)]
    pub code: u16,
    /// See [`TransferFlags`].
    #[serde(default)]
    pub flags: TransferFlags,
    /// Cluster time of the transfer, nanoseconds; set by the cluster.
    #[serde(with = "wire::dec", default)]
    pub timestamp: u64,
}

impl Transfer {
    /// Whether this event needs a governance capability (reversals do).
    pub const fn requires_governance(&self) -> bool {
        self.flags.has(TransferFlags::REVERSAL)
    }

    /// Whether this event names another transfer through `pending_id`.
    pub const fn references_transfer(&self) -> bool {
        self.flags.0
            & (TransferFlags::POST_PENDING_TRANSFER
                | TransferFlags::VOID_PENDING_TRANSFER
                | TransferFlags::REVERSAL)
            != 0
    }
}

/// An account as stored: the account and the Merkle leaf that created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Current balances and flags.
    pub account: Account,
    /// Leaf index (position) of the event that created it.
    pub leaf: u64,
}

/// A transfer as stored: what was applied (references resolved), and what was submitted where
/// that differs, so that a retry is compared with what the client actually sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    /// The applied transfer, with accounts, ledger, code and amount resolved.
    pub transfer: Transfer,
    /// The submitted event, when it differs from `transfer` (post, void, balancing, reversal).
    pub submitted: Option<Box<Transfer>>,
    /// Leaf index (position) of the event that created it.
    pub leaf: u64,
}

impl TransferRecord {
    /// The event as the client sent it (timestamp as assigned).
    pub fn as_submitted(&self) -> &Transfer {
        self.submitted.as_deref().unwrap_or(&self.transfer)
    }
}

/// Lifecycle state kept for pending transfers and for reversed transfers, and the first result
/// of a transfer id that failed for a reason that depends on state (`Failed`): such an id stays
/// failed (`id_already_failed`), so a retry can never see a second, different outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferStatus {
    /// Pending: amount reserved.
    Pending,
    /// Pending, then posted (captured).
    Posted,
    /// Pending, then voided (released).
    Voided,
    /// Pending, then expired by cluster time.
    Expired,
    /// A posting transfer that a reversal has netted to zero.
    Reversed,
    /// No transfer has this id: its first event failed with this (state-dependent) result.
    Failed(crate::results::CreateTransferResult),
}

/// Where a transfer stands, as reads report it (`state` beside the transfer's fields). A hold
/// (a `pending` transfer) is `pending` until it is `posted`, `voided` or `expired`; a posting
/// transfer that a reversal netted to zero is `reversed`; a post or void event is itself
/// `posted` or `voided`; every other transfer is `posted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// A hold whose amount is still reserved.
    Pending,
    /// Moved the amount (or, for a hold, was captured).
    Posted,
    /// A hold released, or the event that released it.
    Voided,
    /// A hold released by cluster time.
    Expired,
    /// Netted to zero by a reversal.
    Reversed,
}

impl TransferState {
    /// The state of the applied `transfer`, given the lifecycle status kept for it (if any).
    pub fn of(transfer: &Transfer, status: Option<TransferStatus>) -> Self {
        match status {
            Some(TransferStatus::Pending) => Self::Pending,
            Some(TransferStatus::Posted) => Self::Posted,
            Some(TransferStatus::Voided) => Self::Voided,
            Some(TransferStatus::Expired) => Self::Expired,
            Some(TransferStatus::Reversed) => Self::Reversed,
            // Never kept beside an applied transfer (a failed id has no transfer).
            Some(TransferStatus::Failed(_)) => Self::Posted,
            None if transfer.flags.has(TransferFlags::VOID_PENDING_TRANSFER) => Self::Voided,
            None => Self::Posted,
        }
    }
}

/// A transfer as reads answer it: its fields, and where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRead {
    /// The applied transfer.
    #[serde(flatten)]
    pub transfer: Transfer,
    /// Where it stands now.
    pub state: TransferState,
}

/// Ledger-wide state that changes with every applied entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerMeta {
    /// Cluster timestamp of the last event applied (nanoseconds); strictly increasing.
    pub last_timestamp: u64,
    /// The Merkle accumulator over every applied event.
    pub tree: Frontier,
    /// Root of `tree`, kept beside it so readers need not recompute it.
    pub root: Hash,
}

impl LedgerMeta {
    /// The state of an empty ledger.
    pub fn empty() -> Self {
        Self {
            last_timestamp: 0,
            tree: Frontier::default(),
            root: empty_root(),
        }
    }
}

/// Key of the expiry index: pending transfers ordered by the cluster time they expire at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExpiryKey {
    /// Cluster time (ns) at which the transfer expires.
    pub expires_at: u64,
    /// The pending transfer.
    pub transfer_id: u128,
}

/// Key of the per-account history index: one per transfer that touched the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HistoryKey {
    /// The account.
    pub account_id: u128,
    /// The transfer's timestamp (unique cluster-wide).
    pub timestamp: u64,
}

/// Which way a seek or a query runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// The field an index entry is filed under. The numbers are part of the storage format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum IndexField {
    /// Every account, by creation time.
    AccountAll = 0,
    AccountUserData128 = 1,
    AccountUserData64 = 2,
    AccountUserData32 = 3,
    AccountLedger = 4,
    AccountCode = 5,
    /// Every transfer, by timestamp.
    TransferAll = 16,
    TransferUserData128 = 17,
    TransferUserData64 = 18,
    TransferUserData32 = 19,
    TransferLedger = 20,
    TransferCode = 21,
    /// Transfers by the account they debit.
    TransferDebitAccount = 22,
    /// Transfers by the account they credit.
    TransferCreditAccount = 23,
    /// Transfers by either account. Never stored under this field: it is the history index
    /// (`HistoryKey`), which apply already keeps, read through the same seek.
    TransferAccount = 24,
}

impl IndexField {
    /// Every field, for parsing stored keys.
    pub const ALL: [IndexField; 15] = [
        Self::AccountAll,
        Self::AccountUserData128,
        Self::AccountUserData64,
        Self::AccountUserData32,
        Self::AccountLedger,
        Self::AccountCode,
        Self::TransferAll,
        Self::TransferUserData128,
        Self::TransferUserData64,
        Self::TransferUserData32,
        Self::TransferLedger,
        Self::TransferCode,
        Self::TransferDebitAccount,
        Self::TransferCreditAccount,
        Self::TransferAccount,
    ];

    /// The field a stored byte names.
    pub fn from_u8(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| *f as u8 == b)
    }
}

/// Key of a secondary index entry; the value is the account's or transfer's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IndexKey {
    pub field: IndexField,
    /// The field's value, widened.
    pub value: u128,
    /// The event's timestamp.
    pub timestamp: u64,
}

/// An account's balances right after one event changed them (or at its creation), kept for
/// accounts with the `history` flag under `HistoryKey { account_id, timestamp }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BalanceEntry {
    #[serde(with = "wire::dec")]
    pub debits_pending: u128,
    #[serde(with = "wire::dec")]
    pub debits_posted: u128,
    #[serde(with = "wire::dec")]
    pub credits_pending: u128,
    #[serde(with = "wire::dec")]
    pub credits_posted: u128,
    /// The leaf of the event that produced these balances: fetch its inclusion proof to check
    /// the event, then check the balances against it.
    #[serde(with = "wire::dec")]
    pub leaf: u64,
}

impl BalanceEntry {
    /// The balances of `a` after the event at `leaf`.
    pub fn of(a: &Account, leaf: u64) -> Self {
        Self {
            debits_pending: a.debits_pending,
            debits_posted: a.debits_posted,
            credits_pending: a.credits_pending,
            credits_posted: a.credits_posted,
            leaf,
        }
    }
}
