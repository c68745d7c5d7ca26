//! The compact binary encoding used for the Raft log, snapshots and the SDK's request bodies:
//! a 4-byte header (`b"RL"`, format version, record kind) followed by bincode (varint integers,
//! little endian). Decoding checks the header, bounds the allocation, and rejects trailing bytes,
//! so any byte string gives either a value or a typed [`CodecError`] — never a panic.
//!
//! A reader accepts every version up to [`CODEC_VERSION`]; a later release that changes a type
//! bumps the version and keeps a decoder for the old one.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::{Batch, BatchError, Operation};
use crate::limits::ENCODED_BYTES_MAX;

/// The version this build writes.
pub const CODEC_VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"RL";
const HEADER_BYTES: usize = 4;

/// What a record is; stored in the header so a record can never be decoded as another type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A [`Batch`] (log entry payload).
    Batch = 1,
    /// An [`Operation`] (one client request body).
    Operation = 2,
    /// A log entry as stored by raft-store.
    LogEntry = 3,
    /// A state-machine record as stored by raft-store.
    StateRecord = 4,
    /// Snapshot metadata.
    SnapshotMeta = 5,
    /// An [`crate::batch::Outcome`] (reply to a forwarded request).
    Outcome = 6,
    /// Raft metadata (vote, purge point, committed index).
    RaftMeta = 7,
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Shorter than the header, or the magic bytes are wrong.
    #[error("not a ron-ledger record (bad header)")]
    BadHeader,
    /// Written by a newer release than this one.
    #[error("unsupported encoding version {found} (this build reads up to {supported})")]
    UnsupportedVersion {
        /// Version in the header.
        found: u8,
        /// Highest version this build reads.
        supported: u8,
    },
    /// A record of another kind.
    #[error("record kind {found} where kind {expected} was expected")]
    WrongKind {
        /// Kind in the header.
        found: u8,
        /// Kind asked for.
        expected: u8,
    },
    /// The body did not decode (truncated, malformed, too large or trailing bytes).
    #[error("malformed body: {0}")]
    Malformed(String),
    /// Decoded, but outside the bounds of [`crate::limits`].
    #[error(transparent)]
    Bounds(#[from] BatchError),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(ENCODED_BYTES_MAX)
        .reject_trailing_bytes()
}

/// Encode `value` as a record of `kind`.
pub fn encode<T: Serialize>(kind: Kind, value: &T) -> Vec<u8> {
    encode_after(0, kind, value)
}

/// `room` zero bytes (for the caller to fill: a checksum) followed by the record of `kind`
/// holding `value` — what [`encode`] returns, in one allocation sized exactly, however large the
/// record.
pub fn encode_after<T: Serialize>(room: usize, kind: Kind, value: &T) -> Vec<u8> {
    let header = [MAGIC[0], MAGIC[1], CODEC_VERSION, kind as u8];
    // Serializing our own types cannot fail except by exceeding the size limit, which the
    // bounds on batches rule out; fall back to an empty body rather than panic.
    let size = match options().serialized_size(value) {
        Ok(size) => usize::try_from(size).unwrap_or(0),
        Err(err) => {
            debug_assert!(false, "encode failed: {err}");
            0
        }
    };
    let mut out = Vec::with_capacity(room + HEADER_BYTES + size);
    out.resize(room, 0);
    out.extend_from_slice(&header);
    if size > 0 {
        // Within the limit (just counted): serialize without counting again.
        if let Err(err) = bincode::DefaultOptions::new().serialize_into(&mut out, value) {
            debug_assert!(false, "encode failed: {err}");
            out.truncate(room + HEADER_BYTES);
        }
    }
    out
}

/// Decode a record of `kind`.
pub fn decode<T: DeserializeOwned>(kind: Kind, bytes: &[u8]) -> Result<T, CodecError> {
    check_header(kind, bytes)?;
    options()
        .deserialize(&bytes[HEADER_BYTES..])
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Decode only the leading fields of a record of `kind`: `T` is a struct whose fields are the
/// record's first fields, in order, and the rest of the body is not read. For a header out of a
/// large record (a log entry's id without its megabytes of transfers).
pub fn decode_prefix<T: DeserializeOwned>(kind: Kind, bytes: &[u8]) -> Result<T, CodecError> {
    check_header(kind, bytes)?;
    bincode::DefaultOptions::new()
        .with_limit(ENCODED_BYTES_MAX)
        .allow_trailing_bytes()
        .deserialize(&bytes[HEADER_BYTES..])
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

fn check_header(kind: Kind, bytes: &[u8]) -> Result<(), CodecError> {
    if bytes.len() < HEADER_BYTES || bytes[..2] != MAGIC {
        return Err(CodecError::BadHeader);
    }
    if bytes[2] == 0 || bytes[2] > CODEC_VERSION {
        return Err(CodecError::UnsupportedVersion {
            found: bytes[2],
            supported: CODEC_VERSION,
        });
    }
    if bytes[3] != kind as u8 {
        return Err(CodecError::WrongKind {
            found: bytes[3],
            expected: kind as u8,
        });
    }
    Ok(())
}

/// Decode a log entry payload and check its bounds.
pub fn decode_batch(bytes: &[u8]) -> Result<Batch, CodecError> {
    let batch: Batch = decode(Kind::Batch, bytes)?;
    batch.check_bounds()?;
    Ok(batch)
}

/// Decode one client request body and check its bounds.
pub fn decode_operation(bytes: &[u8]) -> Result<Operation, CodecError> {
    let op: Operation = decode(Kind::Operation, bytes)?;
    op.check_bounds()?;
    Ok(op)
}

/// Parse one client request from JSON (u128 as decimal strings, unknown fields rejected) and
/// check its bounds.
pub fn operation_from_json(text: &[u8]) -> Result<Operation, CodecError> {
    let op: Operation =
        serde_json::from_slice(text).map_err(|e| CodecError::Malformed(e.to_string()))?;
    op.check_bounds()?;
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Whole {
        id: (u64, u64),
        body: Vec<u8>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Head {
        id: (u64, u64),
    }

    #[test]
    fn a_prefix_decodes_the_leading_fields_and_checks_the_header() {
        let bytes = encode(
            Kind::LogEntry,
            &Whole {
                id: (3, 41),
                body: vec![7; 10_000],
            },
        );
        let head: Head = decode_prefix(Kind::LogEntry, &bytes).unwrap();
        assert_eq!(head, Head { id: (3, 41) });
        // The full decode still refuses trailing bytes; the prefix decode the wrong kind.
        assert!(decode::<Head>(Kind::LogEntry, &bytes).is_err());
        assert!(matches!(
            decode_prefix::<Head>(Kind::Batch, &bytes),
            Err(CodecError::WrongKind { .. })
        ));
        assert!(decode_prefix::<Head>(Kind::LogEntry, &bytes[..5]).is_err());
    }
}
