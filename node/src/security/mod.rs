//! Who may do what, and how the node protects itself: [`capabilities`] (macaroon verification
//! and authorization of writes and admin calls), [`tls`] (TLS 1.3/mTLS material and rustls
//! configurations) and [`pki`] (the development PKI), [`files`] (owner-only secret files),
//! [`uds`] (the Unix socket listener with its uid allow-list) and [`seccomp`] (the syscall
//! filter). None of these modules reads or writes ledger state.

pub mod capabilities;
pub mod files;
pub mod pki;
pub mod seccomp;
pub mod tls;
pub mod uds;
