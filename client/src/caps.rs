//! Capability tokens on the client side: the [`Capability`] a client sends with its requests,
//! minting from a root-key file (operators), attenuating a token offline (any holder), and
//! inspecting one without showing its MAC. Revoking one goes through the cluster's admin API
//! ([`Client::revoke`](crate::Client::revoke), which lists [`RevocationEntry`]s too). See
//! `docs/CAPABILITIES.md`.

use ledger::capability::{Caveat, Inspection, KeyRing, Token};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use zeroize::Zeroizing;

/// A capability token (`rlcap1.…`). Its `Debug` never shows the token, and its memory is wiped
/// when dropped.
#[derive(Clone)]
pub struct Capability(Zeroizing<String>);

impl Capability {
    /// Wrap token text (surrounding whitespace removed).
    pub fn new(token: impl Into<String>) -> Self {
        let mut text = Zeroizing::new(token.into());
        trim_in_place(&mut text);
        Self(text)
    }

    /// The `Authorization` header value.
    pub(crate) fn header(&self) -> String {
        format!("Bearer {}", self.0.as_str())
    }
}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capability(<redacted>)")
    }
}

/// Why a capability operation failed locally.
#[derive(Debug, thiserror::Error)]
pub enum CapToolError {
    /// The key file is missing, unreadable, readable by others, or malformed.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The token or a caveat is invalid.
    #[error("{0}")]
    Capability(#[from] ledger::capability::CapError),
    /// The key ring has no such KID, or no key that may mint.
    #[error("{0}")]
    NoKey(String),
}

/// Remove surrounding whitespace from token text without copying it (a copy would outlive the
/// zeroizing buffer that holds the original).
pub fn trim_in_place(text: &mut String) {
    let end = text.trim_end().len();
    text.truncate(end);
    let start = text.len() - text.trim_start().len();
    text.drain(..start);
}

/// Read a capability root-key ring; refuses a file others can read (mode must be 0600).
pub fn load_key_ring(path: &Path) -> Result<KeyRing, CapToolError> {
    let key_err = |reason: String| CapToolError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| key_err(e.to_string()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(key_err(format!(
            "mode {:o}: it must be readable only by its owner (chmod 600)",
            meta.mode() & 0o777
        )));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| key_err(e.to_string()))?);
    KeyRing::from_json(&text).map_err(|e| key_err(e.to_string()))
}

/// Mint a token with `kid` (or the ring's newest active key), valid from `now_secs` for
/// `ttl_secs`, for `audience` (the cluster id), with `caveats` added.
///
/// With `holder`, the token's id names that holder (`ledger::capability::holder_token_id`):
/// dual control for reversals needs tokens of two different holders.
#[allow(clippy::too_many_arguments)]
pub fn mint(
    ring: &KeyRing,
    kid: Option<&str>,
    audience: &str,
    now_secs: u64,
    ttl_secs: u64,
    caveats: Vec<Caveat>,
    holder: Option<&str>,
) -> Result<Token, CapToolError> {
    let key = match kid {
        Some(k) => ring
            .get(k)
            .ok_or_else(|| CapToolError::NoKey(format!("no key with KID {k:?} in the key file")))?,
        None => ring.minting_key().ok_or_else(|| {
            CapToolError::NoKey("the key file has no active (non-retired) key".into())
        })?,
    };
    let mut all = vec![
        Caveat::ExpiresAt(now_secs.saturating_add(ttl_secs)),
        Caveat::Audience(audience.to_string()),
    ];
    all.extend(caveats);
    let id: [u8; 16] = match holder {
        Some(h) => ledger::capability::holder_token_id(h, rand::random()),
        None => rand::random(),
    };
    Ok(Token::mint(key, id, now_secs, all)?)
}

/// Add caveats to a token, offline.
pub fn attenuate(token: &str, caveats: Vec<Caveat>) -> Result<Token, CapToolError> {
    Ok(Token::decode(token)?.attenuate(caveats)?)
}

/// What a token says, without its MAC.
pub fn inspect(token: &str) -> Result<Inspection, CapToolError> {
    Ok(Token::decode(token)?.inspect())
}

/// One entry of the cluster's revocation list.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevocationEntry {
    /// The revoked token's id (32 hex digits).
    pub token_id: String,
    /// The KID the token was minted with.
    pub kid: String,
    /// Why it was revoked.
    pub reason: String,
    /// Cluster time of the revocation (ns, decimal).
    pub revoked_at: String,
    /// Log index at which it was applied (decimal).
    pub log_index: String,
}
