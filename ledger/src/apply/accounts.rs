//! `create_accounts`: each account is validated, compared with an existing account of the same
//! id (`exists` only if every immutable field matches), or stored with its timestamp and leaf.
//!
//! This module never touches transfers, balances or the expiry index.

use super::chains::ChainCodes;
use super::engine::{Engine, Slot, Verdict};
use crate::canonical::account_leaf_data;
use crate::query::{balance_key, BalanceEntry};
use crate::results::{CreateAccountResult, EventResult};
use crate::state::{ReadError, StateRead};
use crate::types::{Account, AccountFlags, AccountRecord};
use crate::validate;

impl<S: StateRead> Engine<'_, S> {
    pub(super) fn accounts(
        &mut self,
        events: &[Account],
    ) -> Result<Vec<EventResult<CreateAccountResult>>, ReadError> {
        use CreateAccountResult as A;
        let codes = ChainCodes {
            ok: A::Ok,
            exists: A::Exists,
            linked_failed: A::LinkedEventFailed,
            chain_open: A::LinkedEventChainOpen,
            // Account results are decided by the event and whether the id exists.
            keeps_id_failed: |_| false,
        };
        self.run_chains(
            events,
            |a| a.flags.has(AccountFlags::LINKED),
            codes,
            |engine, a, slot| engine.create_account(a, slot),
            |a, r| account_leaf_data(a, r.code()),
            |_, _, _| Ok(()),
        )
    }

    fn create_account(
        &mut self,
        a: &Account,
        slot: Slot,
    ) -> Result<Verdict<CreateAccountResult, Account>, ReadError> {
        use CreateAccountResult as A;
        let mut stamped = *a;
        stamped.timestamp = slot.timestamp;
        if let Err(code) = validate::account(a) {
            return Ok(Verdict::rejected(code, stamped));
        }
        if let Some(existing) = self.overlay.account(a.id)? {
            let e = existing.account;
            let result = if (e.flags.0 ^ a.flags.0) & !AccountFlags::CLOSED != 0 {
                A::ExistsWithDifferentFlags
            } else if e.user_data_128 != a.user_data_128 {
                A::ExistsWithDifferentUserData128
            } else if e.user_data_64 != a.user_data_64 {
                A::ExistsWithDifferentUserData64
            } else if e.user_data_32 != a.user_data_32 {
                A::ExistsWithDifferentUserData32
            } else if e.ledger != a.ledger {
                A::ExistsWithDifferentLedger
            } else if e.code != a.code {
                A::ExistsWithDifferentCode
            } else {
                let original = Slot {
                    timestamp: e.timestamp,
                    leaf: existing.leaf,
                };
                return Ok(Verdict {
                    result: A::Exists,
                    leaf_event: stamped,
                    original: Some(original),
                });
            };
            return Ok(Verdict::rejected(result, stamped));
        }
        self.overlay.put_account(AccountRecord {
            account: stamped,
            leaf: slot.leaf,
        });
        if stamped.flags.has(AccountFlags::HISTORY) {
            self.overlay.balance(
                balance_key(stamped.id, slot.timestamp),
                BalanceEntry::of(&stamped, slot.leaf),
            );
        }
        Ok(Verdict::accepted(A::Ok, stamped))
    }
}
