//! The append-only Merkle accumulator over applied events (RFC 6962 shape, BLAKE3).
//!
//! Domain separation: a leaf hash is `BLAKE3(0x00 || VERSION || data)`, an interior node is
//! `BLAKE3(0x01 || VERSION || left || right)`, and the empty tree's root is `BLAKE3(0x02 ||
//! VERSION)`. The tree is kept as its *frontier*: the roots of the perfect subtrees that make up
//! the first `size` leaves, largest first — one per set bit of `size`, so O(log n) hashes are all
//! that must be stored to continue the tree after a restart.

use serde::{Deserialize, Serialize};

/// Version of the hashing scheme; part of every hash input.
pub const MERKLE_VERSION: u8 = 1;
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;
const EMPTY_PREFIX: u8 = 0x02;

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Lower-case hex, the form used in JSON and logs.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        out
    }

    /// Parse 64 lower-case hex digits (`docs/PROOFS.md` §6: upper case is refused, so every
    /// parser agrees on one spelling of a hash).
    pub fn from_hex(text: &str) -> Option<Hash> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Hash(out))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Leaf data up to this many bytes is hashed from one stack buffer ([`leaf_hash`]).
const LEAF_BYTES_INLINE: usize = 256;

/// Hash of a leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    // Every leaf apply writes (at most 131 bytes) fits the buffer: one call over contiguous
    // bytes is cheaper than two incremental updates (measured, `apply_bench --only core` under
    // callgrind).
    let mut buf = [0u8; 2 + LEAF_BYTES_INLINE];
    if let Some(body) = buf.get_mut(2..2 + data.len()) {
        body.copy_from_slice(data);
        buf[0] = LEAF_PREFIX;
        buf[1] = MERKLE_VERSION;
        return Hash(*blake3::hash(&buf[..2 + data.len()]).as_bytes());
    }
    let mut h = blake3::Hasher::new();
    h.update(&[LEAF_PREFIX, MERKLE_VERSION]);
    h.update(data);
    Hash(*h.finalize().as_bytes())
}

/// Hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 66];
    buf[0] = NODE_PREFIX;
    buf[1] = MERKLE_VERSION;
    buf[2..34].copy_from_slice(&left.0);
    buf[34..].copy_from_slice(&right.0);
    Hash(*blake3::hash(&buf).as_bytes())
}

/// Root of the empty tree.
pub fn empty_root() -> Hash {
    Hash(*blake3::hash(&[EMPTY_PREFIX, MERKLE_VERSION]).as_bytes())
}

/// The accumulator's persistent state: leaf count and frontier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    /// Number of leaves.
    pub size: u64,
    /// Perfect-subtree roots, largest (leftmost) first; `nodes.len() == size.count_ones()`.
    pub nodes: Vec<Hash>,
}

impl Frontier {
    /// Append one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Append one leaf hash and report every perfect-subtree root the append completes, as
    /// `(level, index, hash)`: the root of leaves `[index << level, (index + 1) << level)`, with
    /// `level >= 1` and `index = old_size >> level`, lowest level first. Over a whole tree this
    /// reports every interior node of every perfect subtree exactly once, which is what a store
    /// keeps so that proofs need O(log n) reads (see [`crate::TreeSource`]).
    pub fn push_recording(&mut self, leaf: Hash, out: &mut Vec<(u8, u64, Hash)>) {
        self.push_with(leaf, |level, index, hash| out.push((level, index, hash)));
    }

    fn push_with(&mut self, leaf: Hash, mut created: impl FnMut(u8, u64, Hash)) {
        let old_size = self.size;
        let mut carry = leaf;
        // Each trailing one bit of `size` is a perfect subtree the same height as `carry`.
        let merges = old_size.trailing_ones();
        for level in 1..=merges {
            let left = self.nodes.pop().unwrap_or_default();
            carry = node_hash(&left, &carry);
            // level <= 64: trailing_ones of a u64.
            created(level as u8, old_size >> level, carry);
        }
        self.nodes.push(carry);
        self.size += 1;
    }

    /// The RFC 6962 Merkle tree hash of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Whether the frontier is well-formed for its size (checked when read back from storage).
    pub fn is_consistent(&self) -> bool {
        self.nodes.len() == self.size.count_ones() as usize
    }
}

/// Root of a list of leaf hashes computed directly from the RFC 6962 definition. Used to check the
/// frontier in tests and by auditors who hold every leaf.
pub fn root_of(leaves: &[Hash]) -> Hash {
    fn mth(leaves: &[Hash]) -> Hash {
        if leaves.len() == 1 {
            return leaves[0];
        }
        // k: the largest power of two strictly smaller than n (RFC 6962 §2.1).
        let k = largest_power_of_two_below(leaves.len());
        node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }
    if leaves.is_empty() {
        empty_root()
    } else {
        mth(leaves)
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n >= 2);
    let p = n.next_power_of_two();
    if p == n {
        n / 2
    } else {
        p / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn frontier_root_matches_definition_for_every_size_to_300() {
        let all = leaves(300);
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), root_of(&[]));
        for (i, leaf) in all.iter().enumerate() {
            frontier.push(*leaf);
            assert!(frontier.is_consistent());
            assert_eq!(frontier.root(), root_of(&all[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn two_leaf_root_is_node_of_leaves() {
        let l = leaves(3);
        assert_eq!(root_of(&l[..2]), node_hash(&l[0], &l[1]));
        assert_eq!(
            root_of(&l),
            node_hash(&node_hash(&l[0], &l[1]), &l[2]),
            "RFC 6962 splits at the largest power of two below n"
        );
    }

    #[test]
    fn push_recording_reports_every_perfect_subtree_once() {
        let all = leaves(70);
        let mut frontier = Frontier::default();
        let mut nodes = Vec::new();
        for leaf in &all {
            frontier.push_recording(*leaf, &mut nodes);
        }
        // Every aligned perfect subtree of 70 leaves at levels 1..=6, and nothing else.
        let mut expected = Vec::new();
        for level in 1..=6u8 {
            for index in 0..(70u64 >> level) {
                let lo = (index << level) as usize;
                let hi = ((index + 1) << level) as usize;
                expected.push((level, index, root_of(&all[lo..hi])));
            }
        }
        nodes.sort();
        expected.sort();
        assert_eq!(nodes, expected);
    }

    #[test]
    fn leaf_node_and_empty_are_domain_separated() {
        let a = leaf_hash(b"");
        assert_ne!(a, empty_root());
        let l = leaf_hash(&[0u8; 64]);
        let n = node_hash(&Hash([0; 32]), &Hash([0; 32]));
        assert_ne!(l, n);
    }

    #[test]
    fn hex_round_trips() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex("zz"), None);
        // One spelling: upper case is refused, lower case of the same bytes is read.
        assert_eq!(Hash::from_hex(&"AB".repeat(32)), None);
        assert_eq!(Hash::from_hex(&"ab".repeat(32)), Some(Hash([0xab; 32])));
    }
}
