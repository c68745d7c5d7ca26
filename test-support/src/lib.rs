//! Helpers shared by ron-ledger's tests (`tests/`, `node/tests`, `client/tests`) and the
//! simulation (`sim`): one copy of each.
//!
//! - [`events`]: account and transfer builders, typed and as JSON request bodies.
//! - [`ports`]: loopback ports that were free a moment ago.
//! - [`clock`]: wall-clock seconds.
//! - [`tokens`]: key rings and capability tokens minted from them.
//! - [`files`]: files written with exact permission bits.
//! - [`wait`]: polling a condition until a deadline.
//! - [`https`]: reqwest clients for a dev PKI.
//! - [`paths`]: the running tests' package and workspace directories, read at run time.
//! - [`process`]: a finished child process as exit code, stdout and stderr.
//! - [`cluster`]: the multi-process harness (real `ron-ledger` processes on loopback).
//! - [`netns`]: nodes in network namespaces joined by veth links, and the faults made between
//!   them (cuts, one-way partitions, loss, delay); for the partition tests.
//!
//! This crate must never depend on `node`: node's own tests use it, and a dependency cycle
//! would give them two copies of node's types.

pub mod clock;
pub mod cluster;
pub mod events;
pub mod files;
pub mod https;
pub mod netns;
pub mod paths;
pub mod ports;
pub mod process;
pub mod tokens;
pub mod wait;
