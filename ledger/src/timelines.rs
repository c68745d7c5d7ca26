//! Per-key timelines: for each key, `(timestamp, value)` in timestamp order. Cluster time only
//! grows, so apply's commits append to the end of each timeline; a seek is a binary search in one
//! key's timeline. The in-memory state keeps the history index, the secondary indexes and the
//! balance history this way: one hash lookup per written entry, instead of one ordered insert
//! over every entry ever written. Listing every entry in key order (snapshots, the state digest)
//! sorts the keys first.

use crate::types::Order;
use std::collections::HashMap;
use std::hash::Hash;

/// Timelines by key (keys are values clients chose, so the hash is seeded at random per map).
#[derive(Clone, Debug)]
pub(crate) struct Timelines<K, V>(HashMap<K, Vec<(u64, V)>, foldhash::fast::RandomState>);

impl<K, V> Default for Timelines<K, V> {
    fn default() -> Self {
        Self(HashMap::default())
    }
}

impl<K: Ord + Hash + Copy, V: Copy> Timelines<K, V> {
    /// Record `value` at `timestamp` under `key`, replacing what was there at that timestamp.
    pub(crate) fn insert(&mut self, key: K, timestamp: u64, value: V) {
        let entries = self.0.entry(key).or_default();
        match entries.last() {
            Some((last, _)) if *last >= timestamp => {
                // Not newer than the last entry: never from apply (a snapshot restore may
                // arrive in any order); kept correct anyway.
                let at = entries.partition_point(|(t, _)| *t < timestamp);
                if entries.get(at).is_some_and(|(t, _)| *t == timestamp) {
                    entries[at].1 = value;
                } else {
                    entries.insert(at, (timestamp, value));
                }
            }
            _ => entries.push((timestamp, value)),
        }
    }

    /// One key's timeline, oldest first.
    pub(crate) fn of(&self, key: &K) -> &[(u64, V)] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Every key (in no particular order).
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.0.keys()
    }

    /// The first entry of `key` at or after `timestamp` (`Asc`), or the last at or before it
    /// (`Desc`).
    pub(crate) fn seek(&self, key: &K, timestamp: u64, order: Order) -> Option<(u64, V)> {
        let entries = self.of(key);
        match order {
            Order::Asc => entries.get(entries.partition_point(|(t, _)| *t < timestamp)),
            Order::Desc => entries
                .partition_point(|(t, _)| *t <= timestamp)
                .checked_sub(1)
                .and_then(|i| entries.get(i)),
        }
        .copied()
    }

    /// Every entry, in `(key, timestamp)` order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, u64, V)> + '_ {
        let mut keys: Vec<&K> = self.0.keys().collect();
        keys.sort_unstable();
        keys.into_iter()
            .flat_map(|k| self.of(k).iter().map(move |(t, v)| (*k, *t, *v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_inserts_keep_timestamp_order_and_replace_equal_timestamps() {
        let mut t = Timelines::<u8, u32>::default();
        t.insert(1, 10, 100);
        t.insert(1, 30, 300);
        t.insert(1, 20, 200);
        t.insert(1, 30, 301);
        t.insert(0, 5, 50);
        assert_eq!(t.of(&1), &[(10, 100), (20, 200), (30, 301)]);
        let all: Vec<_> = t.iter().collect();
        assert_eq!(all, [(0, 5, 50), (1, 10, 100), (1, 20, 200), (1, 30, 301)]);
    }

    #[test]
    fn seeks_find_the_nearest_entry_in_either_direction_and_nothing_past_the_ends() {
        let mut t = Timelines::<u8, u32>::default();
        for (ts, v) in [(10, 1), (20, 2), (30, 3)] {
            t.insert(7, ts, v);
        }
        assert_eq!(t.seek(&7, 15, Order::Asc), Some((20, 2)));
        assert_eq!(t.seek(&7, 20, Order::Asc), Some((20, 2)));
        assert_eq!(t.seek(&7, 31, Order::Asc), None);
        assert_eq!(t.seek(&7, 15, Order::Desc), Some((10, 1)));
        assert_eq!(t.seek(&7, 30, Order::Desc), Some((30, 3)));
        assert_eq!(t.seek(&7, 9, Order::Desc), None);
        assert_eq!(t.seek(&8, 0, Order::Asc), None);
    }
}
