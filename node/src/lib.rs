//! The ron-ledger node: ingress and prevalidation on every node, forwarding to the leader, the
//! leader's sequencer/committer, openraft over HTTP/2, and the local dev cluster.
//!
//! Modules in the order a write meets them: [`serve`] (connections, TLS, limits), [`http`] (the
//! client API), [`security`] (capabilities, TLS material, Unix socket, seccomp), [`pipeline`]
//! (prevalidation, the sequencer), [`raft`] (peer RPCs and forwarding), then raft-store's
//! RocksDB write. [`node`] is the state the handlers share, [`start`] wires it all up.

pub mod checkpoints;
pub mod cluster_version;
pub mod config;
pub mod dev;
pub mod divergence;
pub mod error;
pub mod http;
pub mod metrics;
pub mod node;
pub mod pipeline;
pub mod probe;
pub mod raft;
pub mod safe_mode;
pub mod seam;
pub mod security;
pub mod serve;
pub mod start;
pub mod version;

pub use config::Config;
pub use node::Node;
pub use start::RunningNode;
