//! The write pipeline between ingress and Raft: [`prevalidate`] splits a request into events
//! that fail statically (answered at once on the receiving node) and events to sequence, and
//! merges the leader's reply back in request order; [`sequencer`] is the leader's group-commit
//! queue into openraft. Neither reads a request's bytes nor writes ledger state.

pub mod prevalidate;
pub mod sequencer;
