//! Per-event result codes. Their order is part of the binary encoding (the variant index), so new
//! codes are only ever appended. JSON uses the snake_case names.

use serde::{Deserialize, Serialize};

macro_rules! result_codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant,)* }

        impl $name {
            /// Every code, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The wire name (also the metric label and reject reason).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }

            /// Stable numeric code, used in Merkle leaves.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// Whether the event took effect now, or had taken effect earlier (`exists`).
            pub const fn is_success(self) -> bool {
                matches!(self, $name::Ok | $name::Exists)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

result_codes! {
    /// Outcome of one create-account event.
    CreateAccountResult {
        Ok => "ok",
        LinkedEventFailed => "linked_event_failed",
        LinkedEventChainOpen => "linked_event_chain_open",
        TimestampMustBeZero => "timestamp_must_be_zero",
        ReservedFlag => "reserved_flag",
        IdMustNotBeZero => "id_must_not_be_zero",
        IdMustNotBeIntMax => "id_must_not_be_int_max",
        FlagsAreMutuallyExclusive => "flags_are_mutually_exclusive",
        DebitsPendingMustBeZero => "debits_pending_must_be_zero",
        DebitsPostedMustBeZero => "debits_posted_must_be_zero",
        CreditsPendingMustBeZero => "credits_pending_must_be_zero",
        CreditsPostedMustBeZero => "credits_posted_must_be_zero",
        LedgerMustNotBeZero => "ledger_must_not_be_zero",
        CodeMustNotBeZero => "code_must_not_be_zero",
        ExistsWithDifferentFlags => "exists_with_different_flags",
        ExistsWithDifferentUserData128 => "exists_with_different_user_data_128",
        ExistsWithDifferentUserData64 => "exists_with_different_user_data_64",
        ExistsWithDifferentUserData32 => "exists_with_different_user_data_32",
        ExistsWithDifferentLedger => "exists_with_different_ledger",
        ExistsWithDifferentCode => "exists_with_different_code",
        Exists => "exists",
    }
}

result_codes! {
    /// Outcome of one create-transfer event.
    CreateTransferResult {
        Ok => "ok",
        LinkedEventFailed => "linked_event_failed",
        LinkedEventChainOpen => "linked_event_chain_open",
        TimestampMustBeZero => "timestamp_must_be_zero",
        ReservedFlag => "reserved_flag",
        IdMustNotBeZero => "id_must_not_be_zero",
        IdMustNotBeIntMax => "id_must_not_be_int_max",
        FlagsAreMutuallyExclusive => "flags_are_mutually_exclusive",
        DebitAccountIdMustNotBeZero => "debit_account_id_must_not_be_zero",
        DebitAccountIdMustNotBeIntMax => "debit_account_id_must_not_be_int_max",
        CreditAccountIdMustNotBeZero => "credit_account_id_must_not_be_zero",
        CreditAccountIdMustNotBeIntMax => "credit_account_id_must_not_be_int_max",
        AccountsMustBeDifferent => "accounts_must_be_different",
        PendingIdMustBeZero => "pending_id_must_be_zero",
        PendingIdMustNotBeZero => "pending_id_must_not_be_zero",
        PendingIdMustNotBeIntMax => "pending_id_must_not_be_int_max",
        PendingIdMustBeDifferent => "pending_id_must_be_different",
        TimeoutReservedForPendingTransfer => "timeout_reserved_for_pending_transfer",
        ClosingTransferMustBePending => "closing_transfer_must_be_pending",
        AmountMustNotBeZero => "amount_must_not_be_zero",
        LedgerMustNotBeZero => "ledger_must_not_be_zero",
        CodeMustNotBeZero => "code_must_not_be_zero",
        DebitAccountNotFound => "debit_account_not_found",
        CreditAccountNotFound => "credit_account_not_found",
        AccountsMustHaveTheSameLedger => "accounts_must_have_the_same_ledger",
        TransferMustHaveTheSameLedgerAsAccounts => "transfer_must_have_the_same_ledger_as_accounts",
        PendingTransferNotFound => "pending_transfer_not_found",
        PendingTransferNotPending => "pending_transfer_not_pending",
        PendingTransferHasDifferentDebitAccountId => "pending_transfer_has_different_debit_account_id",
        PendingTransferHasDifferentCreditAccountId => "pending_transfer_has_different_credit_account_id",
        PendingTransferHasDifferentLedger => "pending_transfer_has_different_ledger",
        PendingTransferHasDifferentCode => "pending_transfer_has_different_code",
        ExceedsPendingTransferAmount => "exceeds_pending_transfer_amount",
        PendingTransferHasDifferentAmount => "pending_transfer_has_different_amount",
        PendingTransferAlreadyPosted => "pending_transfer_already_posted",
        PendingTransferAlreadyVoided => "pending_transfer_already_voided",
        PendingTransferExpired => "pending_transfer_expired",
        ExistsWithDifferentFlags => "exists_with_different_flags",
        ExistsWithDifferentDebitAccountId => "exists_with_different_debit_account_id",
        ExistsWithDifferentCreditAccountId => "exists_with_different_credit_account_id",
        ExistsWithDifferentAmount => "exists_with_different_amount",
        ExistsWithDifferentPendingId => "exists_with_different_pending_id",
        ExistsWithDifferentUserData128 => "exists_with_different_user_data_128",
        ExistsWithDifferentUserData64 => "exists_with_different_user_data_64",
        ExistsWithDifferentUserData32 => "exists_with_different_user_data_32",
        ExistsWithDifferentTimeout => "exists_with_different_timeout",
        ExistsWithDifferentCode => "exists_with_different_code",
        ExistsWithDifferentLedger => "exists_with_different_ledger",
        Exists => "exists",
        OverflowsDebitsPending => "overflows_debits_pending",
        OverflowsCreditsPending => "overflows_credits_pending",
        OverflowsDebitsPosted => "overflows_debits_posted",
        OverflowsCreditsPosted => "overflows_credits_posted",
        OverflowsDebits => "overflows_debits",
        OverflowsCredits => "overflows_credits",
        OverflowsTimeout => "overflows_timeout",
        ExceedsCredits => "exceeds_credits",
        ExceedsDebits => "exceeds_debits",
        DebitAccountAlreadyClosed => "debit_account_already_closed",
        CreditAccountAlreadyClosed => "credit_account_already_closed",
        ReversalOriginalNotFound => "reversal_original_not_found",
        ReversalOriginalNotPosted => "reversal_original_not_posted",
        ReversalOriginalAlreadyReversed => "reversal_original_already_reversed",
        ReversalOfReversal => "reversal_of_reversal",
        ReversalHasDifferentAccounts => "reversal_has_different_accounts",
        ReversalHasDifferentAmount => "reversal_has_different_amount",
        ReversalHasDifferentLedger => "reversal_has_different_ledger",
        IdAlreadyFailed => "id_already_failed",
    }
}

impl CreateTransferResult {
    /// Whether a transfer that failed with this result keeps its id failed
    /// (`id_already_failed` for every later event with the id): the result depended on the
    /// state — accounts, balances and limits, closed accounts, the pending or original transfer,
    /// cluster time — so a retry could otherwise see a different outcome. Results decided from
    /// the event alone (validation), `exists*`, `linked_event_chain_open` and
    /// `id_already_failed` itself are not recorded; `linked_event_failed` is recorded when the
    /// event that broke its chain failed with a recorded result.
    pub const fn keeps_id_failed(self) -> bool {
        use CreateTransferResult as T;
        matches!(
            self,
            T::DebitAccountNotFound
                | T::CreditAccountNotFound
                | T::AccountsMustHaveTheSameLedger
                | T::TransferMustHaveTheSameLedgerAsAccounts
                | T::PendingTransferNotFound
                | T::PendingTransferNotPending
                | T::PendingTransferHasDifferentDebitAccountId
                | T::PendingTransferHasDifferentCreditAccountId
                | T::PendingTransferHasDifferentLedger
                | T::PendingTransferHasDifferentCode
                | T::ExceedsPendingTransferAmount
                | T::PendingTransferHasDifferentAmount
                | T::PendingTransferAlreadyPosted
                | T::PendingTransferAlreadyVoided
                | T::PendingTransferExpired
                | T::OverflowsDebitsPending
                | T::OverflowsCreditsPending
                | T::OverflowsDebitsPosted
                | T::OverflowsCreditsPosted
                | T::OverflowsDebits
                | T::OverflowsCredits
                | T::OverflowsTimeout
                | T::ExceedsCredits
                | T::ExceedsDebits
                | T::DebitAccountAlreadyClosed
                | T::CreditAccountAlreadyClosed
                | T::ReversalOriginalNotFound
                | T::ReversalOriginalNotPosted
                | T::ReversalOriginalAlreadyReversed
                | T::ReversalOfReversal
                | T::ReversalHasDifferentAccounts
                | T::ReversalHasDifferentAmount
                | T::ReversalHasDifferentLedger
        )
    }
}

/// One event's outcome: the code, the event's cluster timestamp and its Merkle leaf index. For
/// `exists`, timestamp and leaf are the original event's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResult<R> {
    /// What happened.
    pub result: R,
    /// Cluster timestamp (nanoseconds) of the event, or of the original event for `exists`.
    #[serde(with = "crate::wire::dec")]
    pub timestamp: u64,
    /// Merkle leaf index of the event, or of the original event for `exists`.
    #[serde(with = "crate::wire::dec")]
    pub leaf: u64,
}
