//! Snapshots: the whole ledger state as a stream of checksummed, length-prefixed records, in a
//! format independent of the backend (a RocksDB node can install a snapshot built by an
//! in-memory node and the reverse). openraft sends the bytes to followers in chunks; the file is
//! never loaded into memory whole on the sending side.
//!
//! Layout: `MAGIC`, then frames of `u32 length (LE) || sealed record`, the first a
//! [`SnapshotItem::Header`], the last a [`SnapshotItem::End`] carrying the item count. Leaves
//! travel as preimages; interior Merkle nodes are not sent but rebuilt (and the root checked)
//! by the receiver.

use crate::error::StoreError;
use crate::node::{LogId, StoredMembership};
use crate::record::{open, seal};
use crate::revocation::RevocationRecord;
use ledger::codec::Kind;
use ledger::{
    AccountRecord, BalanceEntry, ExpiryKey, HistoryKey, IndexKey, LedgerMeta, TransferRecord,
    TransferStatus,
};
use serde::{Deserialize, Serialize};
use std::io::{Cursor, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

const MAGIC: &[u8; 8] = b"RLSNAP04";
/// The newest snapshot format this build writes and reads: the number in [`MAGIC`]. Format 4 is
/// format 3 with a [`SnapshotItem::ClusterVersion`] right after the header; it is written only
/// once the cluster's version is above [`crate::cluster_version::BASE`], so a member of the
/// previous release can install every snapshot until the cluster advances.
pub const SNAPSHOT_FORMAT: u32 = 4;
/// The oldest format this build reads (and writes, while the cluster has not advanced).
pub const SNAPSHOT_FORMAT_MIN: u32 = 3;
/// Format 3: the previous release's (no cluster version).
const MAGIC_V3: &[u8; 8] = b"RLSNAP03";
/// The previous format (no revocation deny-list): refused with a clear message.
const MAGIC_V2: &[u8; 8] = b"RLSNAP02";
/// The first format (leaf hashes without preimages): refused with a clear message.
const MAGIC_V1: &[u8; 8] = b"RLSNAP01";
/// Largest single frame accepted when reading a snapshot (bytes).
pub const FRAME_BYTES_MAX: u32 = 1 << 20;

/// One record of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotItem {
    /// Always first: what the snapshot covers.
    Header {
        /// Last log id included.
        last_log_id: Option<LogId>,
        /// Membership as of `last_log_id`.
        membership: StoredMembership,
        /// The ledger metadata (timestamp, Merkle frontier and root) at `last_log_id`.
        ledger: LedgerMeta,
    },
    /// An account.
    Account(AccountRecord),
    /// A transfer.
    Transfer(TransferRecord),
    /// A transfer status.
    Status(u128, TransferStatus),
    /// An expiry index entry.
    Expiry(ExpiryKey),
    /// A history index entry.
    History(HistoryKey, u128),
    /// A Merkle leaf: its index and preimage (`ledger::canonical::decode_leaf`). The receiver
    /// hashes the preimages, rebuilds the tree's interior nodes and checks the root.
    Leaf(u64, Vec<u8>),
    /// A capability revocation (deny-list record), in token id order after the leaves. Not part
    /// of the Merkle tree; covered by the state digest.
    Revocation(RevocationRecord),
    /// A secondary index entry (`ledger::query`), after the history index.
    Index(IndexKey, u128),
    /// A balance-history entry, after the secondary index.
    Balance(HistoryKey, BalanceEntry),
    /// Always last: how many items came before it (header included).
    End {
        /// Item count, header included.
        items: u64,
    },
    /// The cluster's effective version (format 4 and later): the item right after the header.
    /// After `End` in this enum so that every earlier item keeps its encoding.
    ClusterVersion(u32),
}

/// Writes a snapshot stream.
pub struct SnapshotWriter<W: Write> {
    out: W,
    items: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Start a snapshot with its header, in the format of a cluster that has not advanced
    /// (format 3).
    pub fn new(out: W, header: SnapshotItem) -> Result<Self, StoreError> {
        Self::versioned(out, header, crate::cluster_version::BASE)
    }

    /// Start a snapshot of a cluster at `cluster_version`: format 3 at the base version (what the
    /// previous release reads), else format 4 with the version right after the header.
    pub fn versioned(
        mut out: W,
        header: SnapshotItem,
        cluster_version: u32,
    ) -> Result<Self, StoreError> {
        let advanced = cluster_version > crate::cluster_version::BASE;
        out.write_all(if advanced { MAGIC } else { MAGIC_V3 })?;
        let mut w = Self { out, items: 0 };
        w.push(&header)?;
        if advanced {
            w.push(&SnapshotItem::ClusterVersion(cluster_version))?;
        }
        Ok(w)
    }

    /// Append one item.
    pub fn push(&mut self, item: &SnapshotItem) -> Result<(), StoreError> {
        let frame = seal(Kind::StateRecord, item);
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|n| *n <= FRAME_BYTES_MAX)
            .ok_or_else(|| StoreError::Snapshot("item larger than a frame".into()))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&frame)?;
        self.items += 1;
        Ok(())
    }

    /// Write the end marker and return the sink.
    pub fn finish(mut self) -> Result<W, StoreError> {
        let end = SnapshotItem::End { items: self.items };
        self.push(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads and checks a snapshot stream: header first, then items, then an end marker whose count
/// matches. Every frame is checksummed.
pub struct SnapshotReader<R: Read> {
    input: R,
    items: u64,
    done: bool,
    format: u32,
}

impl<R: Read> SnapshotReader<R> {
    /// Open a stream and read its header.
    pub fn new(mut input: R) -> Result<(SnapshotItem, Self), StoreError> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|_| StoreError::Snapshot("too short for a snapshot".into()))?;
        if &magic == MAGIC_V1 {
            return Err(StoreError::Snapshot(
                "snapshot format RLSNAP01 (no leaf preimages) is no longer read".into(),
            ));
        }
        if &magic == MAGIC_V2 {
            return Err(StoreError::Snapshot(
                "snapshot format RLSNAP02 (no revocation deny-list) is no longer read; \
                 this build reads RLSNAP03 and RLSNAP04"
                    .into(),
            ));
        }
        let format = if &magic == MAGIC {
            SNAPSHOT_FORMAT
        } else if &magic == MAGIC_V3 {
            3
        } else if magic.starts_with(b"RLSNAP") {
            return Err(StoreError::Unsupported(format!(
                "snapshot format {} is newer than this build reads (RLSNAP03 and RLSNAP04)",
                String::from_utf8_lossy(&magic[6..])
            )));
        } else {
            return Err(StoreError::Snapshot("not a ron-ledger snapshot".into()));
        };
        let mut reader = Self {
            input,
            items: 0,
            done: false,
            format,
        };
        match reader.frame()? {
            header @ SnapshotItem::Header { .. } => Ok((header, reader)),
            _ => Err(StoreError::Snapshot("first item is not a header".into())),
        }
    }

    fn frame(&mut self) -> Result<SnapshotItem, StoreError> {
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .map_err(|_| StoreError::Snapshot("truncated (no end marker)".into()))?;
        let len = u32::from_le_bytes(len);
        if len > FRAME_BYTES_MAX {
            return Err(StoreError::Snapshot(format!("frame of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.input
            .read_exact(&mut buf)
            .map_err(|_| StoreError::Snapshot("truncated frame".into()))?;
        let key = self.items.to_be_bytes();
        let item = open(Kind::StateRecord, "snapshot", &key, &buf)?;
        self.items += 1;
        Ok(item)
    }

    /// The stream's format (3 or 4).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// The next item, or `None` after a valid end marker.
    pub fn next_item(&mut self) -> Result<Option<SnapshotItem>, StoreError> {
        if self.done {
            return Ok(None);
        }
        match self.frame()? {
            SnapshotItem::End { items } => {
                if items != self.items - 1 {
                    return Err(StoreError::Snapshot(format!(
                        "end marker counts {items} items, stream had {}",
                        self.items - 1
                    )));
                }
                let mut rest = [0u8; 1];
                if self.input.read(&mut rest)? != 0 {
                    return Err(StoreError::Snapshot("bytes after the end marker".into()));
                }
                self.done = true;
                Ok(None)
            }
            SnapshotItem::Header { .. } => Err(StoreError::Snapshot("second header".into())),
            item => Ok(Some(item)),
        }
    }
}

/// The bytes of a snapshot as openraft moves them: in memory (amnesia mode, simulation) or in a
/// file under the data directory (RocksDB).
#[derive(Debug)]
pub enum SnapshotData {
    /// Held in memory.
    Memory(Cursor<Vec<u8>>),
    /// A file on disk.
    File(tokio::fs::File),
}

impl Default for SnapshotData {
    fn default() -> Self {
        SnapshotData::Memory(Cursor::new(Vec::new()))
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_read(cx, buf),
            SnapshotData::File(f) => Pin::new(f).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_write(cx, buf),
            SnapshotData::File(f) => Pin::new(f).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_flush(cx),
            SnapshotData::File(f) => Pin::new(f).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_shutdown(cx),
            SnapshotData::File(f) => Pin::new(f).poll_shutdown(cx),
        }
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).start_seek(position),
            SnapshotData::File(f) => Pin::new(f).start_seek(position),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        match self.get_mut() {
            SnapshotData::Memory(c) => Pin::new(c).poll_complete(cx),
            SnapshotData::File(f) => Pin::new(f).poll_complete(cx),
        }
    }
}

#[cfg(test)]
mod format_tests {
    #[test]
    fn the_snapshot_format_is_the_number_in_the_magic() {
        let digits = std::str::from_utf8(&super::MAGIC[6..]).unwrap();
        assert_eq!(digits.parse::<u32>().unwrap(), super::SNAPSHOT_FORMAT);
        let digits = std::str::from_utf8(&super::MAGIC_V3[6..]).unwrap();
        assert_eq!(digits.parse::<u32>().unwrap(), super::SNAPSHOT_FORMAT_MIN);
    }
}
