//! Fixed-layout little-endian byte forms of records, used as Merkle leaf data and in the state
//! digest. They never change for a given `MERKLE_VERSION`: a root computed today must be
//! recomputable by an auditor years later, independently of serde or bincode.

use crate::merkle::{leaf_hash, Hash};
use crate::types::{Account, Transfer, TransferStatus};

/// Leaf kind tags.
const KIND_ACCOUNT: u8 = 1;
const KIND_TRANSFER: u8 = 2;
const KIND_EXPIRY: u8 = 3;

/// 128 bytes: every field of an account, in declaration order.
pub fn account_bytes(a: &Account) -> [u8; 128] {
    let mut out = [0u8; 128];
    let mut w = Writer {
        buf: &mut out,
        at: 0,
    };
    w.u128(a.id);
    w.u128(a.debits_pending);
    w.u128(a.debits_posted);
    w.u128(a.credits_pending);
    w.u128(a.credits_posted);
    w.u128(a.user_data_128);
    w.u64(a.user_data_64);
    w.u32(a.user_data_32);
    w.u32(a.ledger);
    w.u16(a.code);
    w.u16(a.flags.0);
    w.u64(a.timestamp);
    out
}

/// 128 bytes: every field of a transfer, in declaration order.
pub fn transfer_bytes(t: &Transfer) -> [u8; 128] {
    let mut out = [0u8; 128];
    let mut w = Writer {
        buf: &mut out,
        at: 0,
    };
    w.u128(t.id);
    w.u128(t.debit_account_id);
    w.u128(t.credit_account_id);
    w.u128(t.amount);
    w.u128(t.pending_id);
    w.u128(t.user_data_128);
    w.u64(t.user_data_64);
    w.u32(t.user_data_32);
    w.u32(t.timeout);
    w.u32(t.ledger);
    w.u16(t.code);
    w.u16(t.flags.0);
    w.u64(t.timestamp);
    out
}

/// Leaf for a create-account event: kind, the account as applied (or as submitted, stamped, when
/// rejected), result code.
pub fn account_leaf(a: &Account, result_code: u16) -> Hash {
    let mut data = [0u8; 1 + 128 + 2];
    data[0] = KIND_ACCOUNT;
    data[1..129].copy_from_slice(&account_bytes(a));
    data[129..].copy_from_slice(&result_code.to_le_bytes());
    leaf_hash(&data)
}

/// Leaf for a create-transfer event: kind, the transfer as applied (or as submitted, stamped, when
/// rejected), result code.
pub fn transfer_leaf(t: &Transfer, result_code: u16) -> Hash {
    let mut data = [0u8; 1 + 128 + 2];
    data[0] = KIND_TRANSFER;
    data[1..129].copy_from_slice(&transfer_bytes(t));
    data[129..].copy_from_slice(&result_code.to_le_bytes());
    leaf_hash(&data)
}

/// Leaf for the expiry of a pending transfer at cluster time `timestamp`.
pub fn expiry_leaf(pending_id: u128, timestamp: u64) -> Hash {
    let mut data = [0u8; 1 + 16 + 8];
    data[0] = KIND_EXPIRY;
    data[1..17].copy_from_slice(&pending_id.to_le_bytes());
    data[17..].copy_from_slice(&timestamp.to_le_bytes());
    leaf_hash(&data)
}

/// Stable one-byte code of a status.
pub fn status_byte(s: TransferStatus) -> u8 {
    match s {
        TransferStatus::Pending => 1,
        TransferStatus::Posted => 2,
        TransferStatus::Voided => 3,
        TransferStatus::Expired => 4,
        TransferStatus::Reversed => 5,
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u128(&mut self, v: u128) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
}
