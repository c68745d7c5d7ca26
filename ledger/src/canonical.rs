//! Fixed-layout little-endian byte forms of records, used as Merkle leaf data and in the state
//! digest. They never change for a given `MERKLE_VERSION`: a root computed today must be
//! recomputable by an auditor years later, independently of serde or bincode.

use crate::merkle::{leaf_hash, Hash};
use crate::types::{Account, AccountFlags, Transfer, TransferFlags, TransferStatus};

/// Leaf kind tags.
const KIND_ACCOUNT: u8 = 1;
const KIND_TRANSFER: u8 = 2;
const KIND_EXPIRY: u8 = 3;

/// 128 bytes: every field of an account, in declaration order (124 bytes), then 4 zero bytes.
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

/// Bytes of an account or transfer leaf: kind, 128-byte record, result code.
pub const RECORD_LEAF_BYTES: usize = 1 + 128 + 2;
/// Zero bytes at the end of [`account_bytes`] (its fields take 124 of 128 bytes).
pub const ACCOUNT_PADDING_BYTES: usize = 4;
/// Bytes of an expiry leaf: kind, pending id, timestamp.
pub const EXPIRY_LEAF_BYTES: usize = 1 + 16 + 8;

/// A leaf's preimage: the exact bytes whose [`leaf_hash`] is the Merkle leaf. Fixed-size and
/// `Copy` so apply builds it without allocating; [`LeafData::as_bytes`] is the stored and
/// exported form, [`decode_leaf`] its inverse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LeafData {
    bytes: [u8; RECORD_LEAF_BYTES],
    len: u8,
}

impl LeafData {
    /// The preimage bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Checked preimage bytes (as stored or exported): they must decode with [`decode_leaf`].
    pub fn from_bytes(data: &[u8]) -> Result<LeafData, LeafDecodeError> {
        decode_leaf(data)?;
        let mut bytes = [0u8; RECORD_LEAF_BYTES];
        bytes[..data.len()].copy_from_slice(data);
        Ok(LeafData {
            bytes,
            // decode_leaf checked the length: 25 or 131.
            len: data.len() as u8,
        })
    }

    /// The Merkle leaf hash of these bytes.
    pub fn hash(&self) -> Hash {
        leaf_hash(self.as_bytes())
    }
}

impl std::fmt::Debug for LeafData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeafData({})", crate::wire::hex::encode(self.as_bytes()))
    }
}

/// Preimage of a create-account leaf: kind `1`, the account as applied (or as submitted,
/// stamped, when rejected), result code (u16 LE). 131 bytes.
pub fn account_leaf_data(a: &Account, result_code: u16) -> LeafData {
    record_leaf(KIND_ACCOUNT, &account_bytes(a), result_code)
}

/// Preimage of a create-transfer leaf: kind `2`, the transfer as applied (or as submitted,
/// stamped, when rejected), result code (u16 LE). 131 bytes.
pub fn transfer_leaf_data(t: &Transfer, result_code: u16) -> LeafData {
    record_leaf(KIND_TRANSFER, &transfer_bytes(t), result_code)
}

/// Preimage of an expiry leaf: kind `3`, pending id (u128 LE), cluster time (u64 LE). 25 bytes.
pub fn expiry_leaf_data(pending_id: u128, timestamp: u64) -> LeafData {
    let mut bytes = [0u8; RECORD_LEAF_BYTES];
    bytes[0] = KIND_EXPIRY;
    bytes[1..17].copy_from_slice(&pending_id.to_le_bytes());
    bytes[17..EXPIRY_LEAF_BYTES].copy_from_slice(&timestamp.to_le_bytes());
    LeafData {
        bytes,
        len: EXPIRY_LEAF_BYTES as u8,
    }
}

fn record_leaf(kind: u8, record: &[u8; 128], result_code: u16) -> LeafData {
    let mut bytes = [0u8; RECORD_LEAF_BYTES];
    bytes[0] = kind;
    bytes[1..129].copy_from_slice(record);
    bytes[129..].copy_from_slice(&result_code.to_le_bytes());
    LeafData {
        bytes,
        len: RECORD_LEAF_BYTES as u8,
    }
}

/// Leaf for a create-account event: the hash of [`account_leaf_data`].
pub fn account_leaf(a: &Account, result_code: u16) -> Hash {
    account_leaf_data(a, result_code).hash()
}

/// Leaf for a create-transfer event: the hash of [`transfer_leaf_data`].
pub fn transfer_leaf(t: &Transfer, result_code: u16) -> Hash {
    transfer_leaf_data(t, result_code).hash()
}

/// Leaf for the expiry of a pending transfer at cluster time `timestamp`: the hash of
/// [`expiry_leaf_data`].
pub fn expiry_leaf(pending_id: u128, timestamp: u64) -> Hash {
    expiry_leaf_data(pending_id, timestamp).hash()
}

/// What a leaf records, decoded from its preimage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafEvent {
    /// A create-account event and its result code.
    Account {
        /// The account as applied, or as submitted and stamped when rejected.
        account: Account,
        /// The result code (see [`crate::results`]).
        result: u16,
    },
    /// A create-transfer event and its result code.
    Transfer {
        /// The transfer as applied, or as submitted and stamped when rejected.
        transfer: Transfer,
        /// The result code (see [`crate::results`]).
        result: u16,
    },
    /// A pending transfer expired.
    Expiry {
        /// The pending transfer.
        pending_id: u128,
        /// Cluster time of the expiry (ns).
        timestamp: u64,
    },
}

impl LeafEvent {
    /// The preimage of this event: `decode_leaf(event.data().as_bytes()) == Ok(event)`.
    pub fn data(&self) -> LeafData {
        match self {
            LeafEvent::Account { account, result } => account_leaf_data(account, *result),
            LeafEvent::Transfer { transfer, result } => transfer_leaf_data(transfer, *result),
            LeafEvent::Expiry {
                pending_id,
                timestamp,
            } => expiry_leaf_data(*pending_id, *timestamp),
        }
    }
}

/// Why bytes are not a leaf preimage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeafDecodeError {
    /// No bytes at all.
    #[error("empty leaf data")]
    Empty,
    /// The first byte is not a known leaf kind.
    #[error("unknown leaf kind {0}")]
    UnknownKind(u8),
    /// The 4 padding bytes of an account record are not zero.
    #[error("account leaf has non-zero padding")]
    NonZeroPadding,
    /// The length does not match the kind's fixed layout.
    #[error("leaf of kind {kind} has {actual} bytes, expected {expected}")]
    WrongLength {
        /// The kind byte.
        kind: u8,
        /// Bytes the kind's layout has.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

/// Decode a leaf preimage: the exact inverse of [`account_leaf_data`], [`transfer_leaf_data`]
/// and [`expiry_leaf_data`]. Any other byte string is an error (never a panic).
///
/// ```
/// use ledger::canonical::{decode_leaf, expiry_leaf_data, LeafEvent};
/// let data = expiry_leaf_data(7, 1_000);
/// assert_eq!(
///     decode_leaf(data.as_bytes()),
///     Ok(LeafEvent::Expiry { pending_id: 7, timestamp: 1_000 })
/// );
/// ```
pub fn decode_leaf(data: &[u8]) -> Result<LeafEvent, LeafDecodeError> {
    let (&kind, body) = data.split_first().ok_or(LeafDecodeError::Empty)?;
    let expected = match kind {
        KIND_ACCOUNT | KIND_TRANSFER => RECORD_LEAF_BYTES,
        KIND_EXPIRY => EXPIRY_LEAF_BYTES,
        other => return Err(LeafDecodeError::UnknownKind(other)),
    };
    if data.len() != expected {
        return Err(LeafDecodeError::WrongLength {
            kind,
            expected,
            actual: data.len(),
        });
    }
    let mut r = Reader { buf: body, at: 0 };
    Ok(match kind {
        KIND_ACCOUNT => LeafEvent::Account {
            account: Account {
                id: r.u128(),
                debits_pending: r.u128(),
                debits_posted: r.u128(),
                credits_pending: r.u128(),
                credits_posted: r.u128(),
                user_data_128: r.u128(),
                user_data_64: r.u64(),
                user_data_32: r.u32(),
                ledger: r.u32(),
                code: r.u16(),
                flags: AccountFlags(r.u16()),
                timestamp: r.u64(),
            },
            result: {
                // An account is 124 bytes of fields in a 128-byte record: 4 zero bytes.
                if r.take::<ACCOUNT_PADDING_BYTES>() != [0; ACCOUNT_PADDING_BYTES] {
                    return Err(LeafDecodeError::NonZeroPadding);
                }
                r.u16()
            },
        },
        KIND_TRANSFER => LeafEvent::Transfer {
            transfer: Transfer {
                id: r.u128(),
                debit_account_id: r.u128(),
                credit_account_id: r.u128(),
                amount: r.u128(),
                pending_id: r.u128(),
                user_data_128: r.u128(),
                user_data_64: r.u64(),
                user_data_32: r.u32(),
                timeout: r.u32(),
                ledger: r.u32(),
                code: r.u16(),
                flags: TransferFlags(r.u16()),
                timestamp: r.u64(),
            },
            result: r.u16(),
        },
        _ => LeafEvent::Expiry {
            pending_id: r.u128(),
            timestamp: r.u64(),
        },
    })
}

/// Reads little-endian fields from a buffer whose length was checked against the layout.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buf.get(self.at..self.at + N) {
            out.copy_from_slice(src);
        }
        self.at += N;
        out
    }
    fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
}

/// Stable one-byte code of a status (a `Failed` status is followed by its result code, see
/// [`status_bytes`]).
pub fn status_byte(s: TransferStatus) -> u8 {
    match s {
        TransferStatus::Pending => 1,
        TransferStatus::Posted => 2,
        TransferStatus::Voided => 3,
        TransferStatus::Expired => 4,
        TransferStatus::Reversed => 5,
        TransferStatus::Failed(_) => 6,
    }
}

/// Stable bytes of a status: its byte, and for `Failed` the result code (u16, little endian).
pub fn status_bytes(s: TransferStatus) -> Vec<u8> {
    let mut out = vec![status_byte(s)];
    if let TransferStatus::Failed(result) = s {
        out.extend_from_slice(&result.code().to_le_bytes());
    }
    out
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
