//! The SDK's typed errors: [`Error`], how every call that does not succeed says why (refused,
//! unavailable, invalid input, unreadable answer, failed verification).

use crate::verify::VerifyError;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server refused the request (a 4xx other than 429); never retried.
    #[error("rejected ({status} {reason}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Reason code (see docs/API.md).
        reason: String,
        /// Server's message.
        message: String,
    },
    /// Retries exhausted (attempts or time) on transient failures. For writes the outcome may
    /// be unknown: calling again with the same ids is safe.
    #[error("unavailable after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Bad configuration or input on the client side.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The server answered something this client cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server's answer did not verify against the trusted keys and the last accepted
    /// checkpoint: it is wrong, whatever the server's status said. Never retried.
    #[error("verification failed: {0}")]
    Verification(#[from] VerifyError),
}
