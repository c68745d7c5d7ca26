//! The ron-ledger node: ingress and prevalidation on every node, forwarding to the leader, the
//! leader's sequencer/committer, openraft over HTTP/2, and the local dev cluster.

pub mod api;
pub mod auth;
pub mod checkpoints;
pub mod config;
pub mod dev;
pub mod error;
pub mod metrics;
pub mod network;
pub mod node;
pub mod peer;
pub mod prevalidate;
pub mod proofs;
pub mod revocations;
pub mod rpc;
pub mod seam;
pub mod seccomp;
pub mod sequencer;
pub mod serve;
pub mod tls;
pub mod uds;

pub use config::Config;
pub use node::{Node, RunningNode};
