//! Checksummed record framing for everything raft-store persists: `crc32(body) || body`, where
//! the body is a versioned `ledger::codec` record. A flipped bit anywhere is reported as
//! [`StoreError::Corruption`] naming the column family and key.

use crate::error::StoreError;
use ledger::codec::{self, Kind};
use serde::de::DeserializeOwned;
use serde::Serialize;

const CRC_BYTES: usize = 4;

/// Frame `value` as a checksummed record of `kind`.
pub fn seal<T: Serialize>(kind: Kind, value: &T) -> Vec<u8> {
    // Checksum first, body after: encode behind room for it, then fill it in.
    let mut out = codec::encode_after(CRC_BYTES, kind, value);
    let crc = crc32fast::hash(&out[CRC_BYTES..]).to_le_bytes();
    out[..CRC_BYTES].copy_from_slice(&crc);
    out
}

/// Check and decode a record read from `cf` at `key`.
pub fn open<T: DeserializeOwned>(
    kind: Kind,
    cf: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    let body = checked_body(cf, key, bytes)?;
    codec::decode(kind, body).map_err(|e| corruption(cf, key, e.to_string()))
}

/// Check a record like [`open`], but decode only its leading fields as `T` (see
/// `ledger::codec::decode_prefix`).
pub fn open_prefix<T: DeserializeOwned>(
    kind: Kind,
    cf: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    let body = checked_body(cf, key, bytes)?;
    codec::decode_prefix(kind, body).map_err(|e| corruption(cf, key, e.to_string()))
}

fn corruption(cf: &'static str, key: &[u8], reason: String) -> StoreError {
    StoreError::Corruption {
        cf,
        key: hex(key),
        reason,
    }
}

/// The body of a sealed record, once its checksum matched.
fn checked_body<'a>(cf: &'static str, key: &[u8], bytes: &'a [u8]) -> Result<&'a [u8], StoreError> {
    if bytes.len() < CRC_BYTES {
        return Err(corruption(
            cf,
            key,
            "record shorter than its checksum".into(),
        ));
    }
    let (crc, body) = bytes.split_at(CRC_BYTES);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != expected {
        return Err(corruption(cf, key, "checksum mismatch".into()));
    }
    Ok(body)
}

/// Lower-case hex of a key, for error messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_bit_flip_is_detected() {
        let sealed = seal(Kind::RaftMeta, &(7u64, String::from("vote")));
        let back: (u64, String) = open(Kind::RaftMeta, "meta", b"k", &sealed).unwrap();
        assert_eq!(back, (7, "vote".into()));
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[byte] ^= 1 << bit;
                let err = open::<(u64, String)>(Kind::RaftMeta, "meta", b"k", &bad).unwrap_err();
                assert!(err.is_corruption(), "byte {byte} bit {bit}: {err}");
            }
        }
        assert!(open::<u64>(Kind::RaftMeta, "meta", b"k", &[1, 2])
            .unwrap_err()
            .is_corruption());
    }
}
