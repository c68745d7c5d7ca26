//! Capability tokens on the client side: minting from a root-key file (operators), attenuating a
//! token offline (any holder), inspecting one without showing its MAC, and revoking one through
//! the cluster's admin API. See `docs/CAPABILITIES.md`.

use crate::{Client, Error};
use ledger::capability::{Caveat, Inspection, KeyRing, Token};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use zeroize::Zeroizing;

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
pub fn mint(
    ring: &KeyRing,
    kid: Option<&str>,
    audience: &str,
    now_secs: u64,
    ttl_secs: u64,
    caveats: Vec<Caveat>,
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
    let id: [u8; 16] = rand::random();
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

#[derive(Deserialize)]
struct RevocationPage {
    revocations: Vec<RevocationEntry>,
}

impl Client {
    /// Put a token on the cluster's deny-list (an admin operation committed through Raft; needs
    /// an admin capability and, over TLS, a client certificate). Every node refuses the token
    /// once it has applied the entry.
    pub async fn revoke(&self, token_id: &str, kid: &str, reason: &str) -> Result<(), Error> {
        self.clone_without_batcher()
            .admin(
                "/v1/admin/revocations",
                serde_json::json!({"token_id": token_id, "kid": kid, "reason": reason}),
            )
            .await
    }

    /// The deny-list, in token-id order, starting after `after`.
    pub async fn revocations(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RevocationEntry>, Error> {
        let mut path = format!("/v1/admin/revocations?limit={limit}");
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        let page: Option<RevocationPage> = self
            .clone_without_batcher()
            .get_opt(&path, crate::Consistency::Linearizable)
            .await?;
        page.map(|p| p.revocations)
            .ok_or_else(|| Error::Protocol("the node has no revocation endpoint".into()))
    }
}
