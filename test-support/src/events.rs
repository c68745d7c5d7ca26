//! Accounts and transfers for tests, typed (`ledger` types, for the SDK and `ledger::apply`) and
//! as JSON (the HTTP API's wire form: ids and amounts as decimal strings). Code 1 always;
//! ledger 1 unless a builder takes one.

use ledger::{Account, Transfer};
use serde_json::{json, Value};

/// Account `id` in `ledger`, code 1.
pub fn account(id: u128, ledger: u32) -> Account {
    Account {
        id,
        ledger,
        code: 1,
        ..Default::default()
    }
}

/// Accounts `ids` in ledger 1.
pub fn accounts(ids: impl IntoIterator<Item = u128>) -> Vec<Account> {
    ids.into_iter().map(|id| account(id, 1)).collect()
}

/// Transfer `id`: `amount` from `debit` to `credit`, ledger 1, code 1.
pub fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        ..Default::default()
    }
}

/// [`account`] as a JSON object.
pub fn account_json(id: u128, ledger: u32) -> Value {
    json!({"id": id.to_string(), "ledger": ledger, "code": 1})
}

/// [`accounts`] as a JSON array (a request body).
pub fn accounts_json(ids: impl IntoIterator<Item = u128>) -> Value {
    Value::Array(ids.into_iter().map(|id| account_json(id, 1)).collect())
}

/// [`transfer`] as a JSON object.
pub fn transfer_json(id: u128, debit: u128, credit: u128, amount: u128) -> Value {
    json!({"id": id.to_string(), "debit_account_id": debit.to_string(),
           "credit_account_id": credit.to_string(), "amount": amount.to_string(),
           "ledger": 1, "code": 1})
}

/// A request body of one [`transfer_json`].
pub fn transfer_body(id: u128, debit: u128, credit: u128, amount: u128) -> Value {
    json!([transfer_json(id, debit, credit, amount)])
}

/// A request body of `events` (JSON objects) as text, for tests that send raw bodies.
pub fn raw_body(events: impl IntoIterator<Item = Value>) -> String {
    Value::Array(events.into_iter().collect()).to_string()
}
