//! Inclusion and consistency proofs over the ledger's Merkle tree (the RFC 9162 §2.1.3 and
//! §2.1.4 structures, over the BLAKE3 hashes of [`crate::merkle`]): generation from any
//! [`TreeSource`], and verification that consumes every path element.
//!
//! Pure: a store supplies leaf hashes (and, when it keeps them, perfect-subtree roots) through
//! [`TreeSource`]; nothing here reads a clock or does I/O.
//!
//! ```
//! use ledger::merkle::{leaf_hash, root_of, Hash};
//! use ledger::proof::{consistency_proof, inclusion_proof};
//!
//! let leaves: Vec<Hash> = (0u64..7).map(|i| leaf_hash(&i.to_le_bytes())).collect();
//! let proof = inclusion_proof(&leaves[..], 3, 7).unwrap();
//! proof.verify(&leaves[3], &root_of(&leaves)).unwrap();
//! let grew = consistency_proof(&leaves[..], 4, 7).unwrap();
//! grew.verify(&root_of(&leaves[..4]), &root_of(&leaves)).unwrap();
//! ```

use crate::merkle::{empty_root, node_hash, Hash};
use crate::wire;
use serde::{Deserialize, Serialize};

/// Where proof generation reads the tree from.
///
/// `node(level, index)` is the root of the perfect subtree over leaves
/// `[index << level, (index + 1) << level)` (`level >= 1`), if the store keeps it; generation
/// asks for it before computing a subtree from its leaves, so a store that keeps every node
/// [`crate::Frontier::push_recording`] reports answers a proof in O(log n) reads.
pub trait TreeSource {
    /// What a failed read reports. Generation also reports its own argument errors through it.
    type Error: From<ProofError>;
    /// The hash of leaf `index`.
    fn leaf_hash(&self, index: u64) -> Result<Hash, Self::Error>;
    /// A stored perfect-subtree root, or `None` to have it computed from the leaves.
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error> {
        let _ = (level, index);
        Ok(None)
    }
}

/// Leaf hashes in order; no stored nodes (every subtree is computed). For tests and auditors.
impl TreeSource for [Hash] {
    type Error = ProofError;

    fn leaf_hash(&self, index: u64) -> Result<Hash, ProofError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or(ProofError::IndexOutOfRange {
                index,
                size: self.len() as u64,
            })
    }
}

/// Why a proof could not be generated or did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// An inclusion proof in a tree of size 0 (there is no leaf to include).
    #[error("the empty tree has no leaves")]
    EmptyTree,
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("old size {old} is larger than new size {new}")]
    OldSizeExceedsNew {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// The size asked for is beyond the tree the source holds.
    #[error("tree size {size} is beyond the {available} leaves held")]
    SizeBeyondTree {
        /// The size asked for.
        size: u64,
        /// Leaves the source holds.
        available: u64,
    },
    /// The path does not have exactly the number of elements its sizes determine.
    #[error("proof path has {actual} elements, expected {expected}")]
    WrongPathLength {
        /// Elements the proof's sizes call for.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// An inclusion proof does not lead to the root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// A consistency proof does not reproduce the old root.
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// A consistency proof does not reproduce the new root.
    #[error("consistency proof does not reproduce the new root")]
    NewRootMismatch,
}

/// Proof that a leaf is at `leaf_index` in the tree of `tree_size` leaves: the sibling subtree
/// roots from the leaf up to the root (RFC 9162 §2.1.3.1 order).
///
/// JSON: `{"leaf_index": "5", "tree_size": "9", "path": ["<64 hex>", ...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Index of the leaf.
    #[serde(with = "wire::dec")]
    pub leaf_index: u64,
    /// Size of the tree the proof is for.
    #[serde(with = "wire::dec")]
    pub tree_size: u64,
    /// Sibling hashes, leaf level first.
    #[serde(with = "wire::hashes")]
    pub path: Vec<Hash>,
}

/// Proof that the tree of `new_size` leaves extends the tree of `old_size` leaves (RFC 9162
/// §2.1.4.1 order).
///
/// `old_size == new_size`: the path is empty and the two roots must be equal. `old_size == 0`:
/// the path is empty, the old root must be the empty tree's root, and any new root is
/// consistent (every tree extends the empty tree).
///
/// JSON: `{"old_size": "4", "new_size": "9", "path": ["<64 hex>", ...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    #[serde(with = "wire::dec")]
    pub old_size: u64,
    /// Size of the newer tree.
    #[serde(with = "wire::dec")]
    pub new_size: u64,
    /// Subtree hashes, deepest first.
    #[serde(with = "wire::hashes")]
    pub path: Vec<Hash>,
}

/// Leaves `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u64,
    len: u64,
}

/// The largest power of two strictly below `len` (`len >= 2`): RFC 6962's split point.
fn split(len: u64) -> u64 {
    debug_assert!(len >= 2);
    1 << (63 - (len - 1).leading_zeros())
}

/// The subtrees whose roots form the inclusion path of `index` in a tree of `size` leaves,
/// leaf level first. Requires `index < size`.
fn inclusion_spans(index: u64, size: u64) -> Vec<Span> {
    let mut spans = Vec::with_capacity(64);
    let (mut start, mut len) = (0u64, size);
    while len > 1 {
        let k = split(len);
        if index - start < k {
            spans.push(Span {
                start: start + k,
                len: len - k,
            });
            len = k;
        } else {
            spans.push(Span { start, len: k });
            start += k;
            len -= k;
        }
    }
    spans.reverse();
    spans
}

/// The subtrees whose roots form the consistency path from `old` to `new` leaves, deepest
/// first. Requires `0 < old < new`.
fn consistency_spans(old: u64, new: u64) -> Vec<Span> {
    let mut spans = Vec::with_capacity(64);
    let (mut start, mut m, mut n, mut whole) = (0u64, old, new, true);
    loop {
        if m == n {
            if !whole {
                spans.push(Span { start, len: n });
            }
            break;
        }
        let k = split(n);
        if m <= k {
            spans.push(Span {
                start: start + k,
                len: n - k,
            });
            n = k;
        } else {
            spans.push(Span { start, len: k });
            start += k;
            m -= k;
            n -= k;
            whole = false;
        }
    }
    spans.reverse();
    spans
}

/// Root of the subtree over `span`, from stored nodes where the source has them.
fn span_root<S: TreeSource + ?Sized>(src: &S, span: Span) -> Result<Hash, S::Error> {
    if span.len == 1 {
        return src.leaf_hash(span.start);
    }
    if span.len.is_power_of_two() && span.start.is_multiple_of(span.len) {
        // trailing_zeros of a u64 is at most 63.
        let level = span.len.trailing_zeros() as u8;
        if let Some(hash) = src.node(level, span.start >> level)? {
            return Ok(hash);
        }
    }
    let k = split(span.len);
    let left = span_root(
        src,
        Span {
            start: span.start,
            len: k,
        },
    )?;
    let right = span_root(
        src,
        Span {
            start: span.start + k,
            len: span.len - k,
        },
    )?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves of `src` (the empty root for 0).
pub fn root_at<S: TreeSource + ?Sized>(src: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    span_root(
        src,
        Span {
            start: 0,
            len: size,
        },
    )
}

/// The frontier of the first `size` leaves of `src`: the roots of the perfect subtrees its
/// binary decomposition names, largest first (what [`crate::Frontier`] keeps). A consumer that
/// pushes the following leaves onto it computes every later root itself.
pub fn frontier_at<S: TreeSource + ?Sized>(
    src: &S,
    size: u64,
) -> Result<crate::Frontier, S::Error> {
    let mut nodes = Vec::with_capacity(size.count_ones() as usize);
    let mut start = 0u64;
    for level in (0..64).rev() {
        let len = 1u64 << level;
        if size & len != 0 {
            nodes.push(span_root(src, Span { start, len })?);
            start += len;
        }
    }
    Ok(crate::Frontier { size, nodes })
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves of `src`.
///
/// The caller bounds `size` by what `src` holds; a leaf `src` lacks is its error.
pub fn inclusion_proof<S: TreeSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<InclusionProof, S::Error> {
    if size == 0 {
        return Err(ProofError::EmptyTree.into());
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let path = inclusion_spans(index, size)
        .into_iter()
        .map(|span| span_root(src, span))
        .collect::<Result<_, _>>()?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        path,
    })
}

/// The consistency proof from the first `old` leaves of `src` to the first `new`.
pub fn consistency_proof<S: TreeSource + ?Sized>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<ConsistencyProof, S::Error> {
    if old > new {
        return Err(ProofError::OldSizeExceedsNew { old, new }.into());
    }
    let path = if old == 0 || old == new {
        Vec::new()
    } else {
        consistency_spans(old, new)
            .into_iter()
            .map(|span| span_root(src, span))
            .collect::<Result<_, _>>()?
    };
    Ok(ConsistencyProof {
        old_size: old,
        new_size: new,
        path,
    })
}

impl InclusionProof {
    /// Check that `leaf` is at `leaf_index` in the tree of `tree_size` leaves whose root is
    /// `root`. Every path element is used: a path with one element too many or too few fails.
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), ProofError> {
        if self.root_from(leaf)? != *root {
            return Err(ProofError::RootMismatch);
        }
        Ok(())
    }

    /// The root this proof leads to from `leaf` (RFC 9162 §2.1.3.2).
    pub fn root_from(&self, leaf: &Hash) -> Result<Hash, ProofError> {
        let (index, size) = (self.leaf_index, self.tree_size);
        if size == 0 {
            return Err(ProofError::EmptyTree);
        }
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let expected = inclusion_spans(index, size).len();
        let wrong_length = ProofError::WrongPathLength {
            expected,
            actual: self.path.len(),
        };
        if self.path.len() != expected {
            return Err(wrong_length);
        }
        let (mut f, mut s) = (index, size - 1);
        let mut r = *leaf;
        for p in &self.path {
            if s == 0 {
                return Err(wrong_length);
            }
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            f >>= 1;
            s >>= 1;
        }
        if s != 0 {
            return Err(wrong_length);
        }
        Ok(r)
    }
}

impl ConsistencyProof {
    /// Check that the tree of `new_size` leaves with root `new_root` extends the tree of
    /// `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2). Every path element is used.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        let (old, new) = (self.old_size, self.new_size);
        if old > new {
            return Err(ProofError::OldSizeExceedsNew { old, new });
        }
        let expected = if old == 0 || old == new {
            0
        } else {
            consistency_spans(old, new).len()
        };
        let wrong_length = ProofError::WrongPathLength {
            expected,
            actual: self.path.len(),
        };
        if self.path.len() != expected {
            return Err(wrong_length);
        }
        if old == 0 {
            if *old_root != empty_root() {
                return Err(ProofError::OldRootMismatch);
            }
            if new == 0 && *new_root != empty_root() {
                return Err(ProofError::NewRootMismatch);
            }
            return Ok(());
        }
        if old == new {
            return if old_root == new_root {
                Ok(())
            } else {
                Err(ProofError::NewRootMismatch)
            };
        }
        let mut path = self.path.iter();
        // A power-of-two old tree is itself a subtree of the new one: its root starts the walk.
        let first = if old.is_power_of_two() {
            *old_root
        } else {
            *path.next().ok_or(wrong_length)?
        };
        let (mut f, mut s) = (old - 1, new - 1);
        while f & 1 == 1 {
            f >>= 1;
            s >>= 1;
        }
        let (mut fr, mut sr) = (first, first);
        for c in path {
            if s == 0 {
                return Err(wrong_length);
            }
            if f & 1 == 1 || f == s {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                sr = node_hash(&sr, c);
            }
            f >>= 1;
            s >>= 1;
        }
        if s != 0 {
            return Err(wrong_length);
        }
        if fr != *old_root {
            return Err(ProofError::OldRootMismatch);
        }
        if sr != *new_root {
            return Err(ProofError::NewRootMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root_of};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn split_is_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (u64::MAX, 1 << 63),
        ] {
            assert_eq!(split(n), k, "n = {n}");
        }
    }

    #[test]
    fn every_proof_in_small_trees_verifies() {
        let all = leaves(40);
        for size in 1..=40u64 {
            let tree = &all[..size as usize];
            let root = root_of(tree);
            assert_eq!(root_at(tree, size).unwrap(), root);
            for index in 0..size {
                let p = inclusion_proof(tree, index, size).unwrap();
                p.verify(&tree[index as usize], &root).unwrap();
            }
            for old in 0..=size {
                let p = consistency_proof(tree, old, size).unwrap();
                p.verify(&root_of(&tree[..old as usize]), &root).unwrap();
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let all = leaves(5);
        assert_eq!(inclusion_proof(&all[..], 0, 0), Err(ProofError::EmptyTree));
        assert_eq!(
            inclusion_proof(&all[..], 5, 5),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            consistency_proof(&all[..], 4, 3),
            Err(ProofError::OldSizeExceedsNew { old: 4, new: 3 })
        );
        assert!(inclusion_proof(&all[..], 0, 9).is_err());
    }
}
